using System.Collections;
using System.Management.Automation;
using SafeDeploy.Engine.JobStatus;
using SafeDeploy.Internal;

namespace SafeDeploy.Cmdlets;

/// <summary>Records a job's status in the dashboard repository's clone and pushes it; never loses an update (it queues instead).</summary>
[Cmdlet(VerbsData.Sync, "JobStatus", DefaultParameterSetName = OutboxSet, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(JobStatusResult))]
public sealed class SyncJobStatusCommand : SafeDeployCmdlet
{
    const string UpdateSet = "Update";
    const string OutboxSet = "Outbox";

    [Parameter(Mandatory = true, ParameterSetName = UpdateSet)]
    [Parameter(Mandatory = true, ParameterSetName = OutboxSet)]
    [ValidateNotNullOrEmpty]
    public string Repository { get; set; } = "";

    [Parameter(Mandatory = true, Position = 0, ParameterSetName = UpdateSet, ValueFromPipelineByPropertyName = true)]
    [Alias("Name")]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(JobNameCompleter))]
    public string JobName { get; set; } = "";

    // A string, not an enum: a DeployResult's or HostDeployResult's Status (an engine enum: Succeeded, RolledBack, Failed,
    // RollbackFailed, Unreachable, NotStarted) binds here by property name too, as its name, and is mapped to
    // completed/failed/cancelled by the engine.
    [Parameter(Mandatory = true, ParameterSetName = UpdateSet, ValueFromPipelineByPropertyName = true)]
    [ValidateSet("queued", "running", "completed", "failed", "cancelled", "Succeeded", "RolledBack", "RollbackFailed", "Unreachable", "NotStarted", IgnoreCase = true)]
    public string Status { get; set; } = "";

    // A rollout's results (HostDeployResult) bind their HostName: each host keeps a status of its own.
    [Parameter(ParameterSetName = UpdateSet, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string? HostName { get; set; }

    [Parameter(ParameterSetName = UpdateSet, ValueFromPipelineByPropertyName = true)] [ValidateRange(0, 100)] public int? Progress { get; set; }

    [Parameter(ParameterSetName = UpdateSet, ValueFromPipelineByPropertyName = true)] public string? Message { get; set; }

    [Parameter(ParameterSetName = UpdateSet)] public Hashtable? Data { get; set; }

    [Parameter] [ValidateNotNullOrEmpty] public string StatusDirectory { get; set; } = "data/status";

    [Parameter] [ValidateNotNullOrEmpty] public string Remote { get; set; } = "origin";

    [Parameter] [ValidateNotNullOrEmpty] public string? Branch { get; set; }

    [Parameter(ParameterSetName = UpdateSet)] public SwitchParameter NoPush { get; set; }

    [Parameter] public SwitchParameter NoVerify { get; set; }

    [Parameter] [ValidateRange(0, 86400)] public int LockTimeoutSec { get; set; } = 30;

    protected override void ProcessRecord()
    {
        var repo = ResolvePath(Repository);
        var options = new JobStatusOptions
        {
            Repository = repo, StatusDirectory = StatusDirectory, Remote = Remote, Branch = Branch, NoPush = NoPush, NoVerify = NoVerify,
            LockTimeout = TimeSpan.FromSeconds(LockTimeoutSec),
        };
        if (ParameterSetName == OutboxSet)
        {
            if (!ShouldProcess(repo, $"Push the job statuses waiting in the outbox to {Remote}")) return;
            try { foreach (var r in RunEngine((reporter, token) => JobStatusSync.Flush(options with { Reporter = reporter }, token))) WriteObject(r); }
            catch (Exception e) when (IsReportable(e)) { WriteError(ErrorMapper.ToRecord(e, repo)); }
            return;
        }
        var job = JobStatusNames.ForHost(JobName, HostName);
        if (!ShouldProcess($"{job} in {repo}", $"Record status '{Status}'{(NoPush ? "" : $" and push it to {Remote}")}")) return;
        var update = new JobStatusUpdate
        {
            JobName = job, Status = Status, Progress = Progress, Message = Message,
            Data = Data is null ? null : ((IDictionary)Unwrap(Data)!).Cast<DictionaryEntry>().ToDictionary(e => e.Key.ToString()!, e => e.Value),
        };
        if (HostName is not null) update = update with { Host = HostName };
        try { WriteObject(RunEngine((reporter, token) => JobStatusSync.Sync(update, options with { Reporter = reporter }, token))); }
        catch (Exception e) when (IsReportable(e)) { WriteError(ErrorMapper.ToRecord(e, job)); }
    }
}
