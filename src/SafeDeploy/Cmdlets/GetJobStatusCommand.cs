using System.Management.Automation;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.JobStatus;
using SafeDeploy.Internal;

namespace SafeDeploy.Cmdlets;

/// <summary>Reads job statuses back from a dashboard clone (the remote branch as last fetched, plus updates still queued).</summary>
[Cmdlet(VerbsCommon.Get, "JobStatus")]
[OutputType(typeof(JobStatusRecord))]
public sealed class GetJobStatusCommand : SafeDeployCmdlet
{
    [Parameter(Mandatory = true)] [ValidateNotNullOrEmpty] public string Repository { get; set; } = "";

    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("Name")]
    [SupportsWildcards]
    public string[] JobName { get; set; } = Array.Empty<string>();

    [Parameter] [ValidateNotNullOrEmpty] public string StatusDirectory { get; set; } = "data/status";

    [Parameter] [ValidateNotNullOrEmpty] public string Remote { get; set; } = "origin";

    [Parameter] [ValidateNotNullOrEmpty] public string? Branch { get; set; }

    [Parameter] public SwitchParameter Fetch { get; set; }

    protected override void ProcessRecord()
    {
        var repo = ResolvePath(Repository);
        var options = new JobStatusOptions { Repository = repo, StatusDirectory = StatusDirectory, Remote = Remote, Branch = Branch };
        IReadOnlyList<JobStatusRecord> found;
        try { found = RunEngine((reporter, token) => JobStatusReader.Read(options with { Reporter = reporter }, JobName, Fetch, token)); }
        catch (Exception e) when (IsReportable(e)) { WriteError(ErrorMapper.ToRecord(e, repo)); return; }
        foreach (var r in found) WriteObject(r);
        foreach (var name in JobName.Where(n => !JobStatusReader.HasWildcard(n) && !found.Any(r => r.JobName == n)))
            WriteError(ErrorMapper.ToRecord(ErrorCatalog.JobStatusNotFound(name, repo), name));
    }
}
