using System.Management.Automation;
using SafeDeploy.Engine.Deployment;
using SafeDeploy.Internal;

namespace SafeDeploy.Cmdlets;

/// <summary>Past deployment runs, read from their journals: status, generation, timings.</summary>
[Cmdlet(VerbsCommon.Get, "SafeDeployHistory")]
[OutputType(typeof(DeployHistoryEntry))]
public sealed partial class GetSafeDeployHistoryCommand : SafeDeployCmdlet
{
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string[]? Name { get; set; }

    [Parameter] [ValidateNotNullOrEmpty] public string? StateDirectory { get; set; }

    protected override void ProcessRecord()
    {
        if (Rollout) { ProcessRollouts(); return; }
        TryEngine(() =>
        {
            var store = new DeploymentStore(DeployRunner.State(StateDirectory is null ? null : ResolvePath(StateDirectory), DirectReporter));
            if (Name is null) { foreach (var h in store.History()) WriteObject(h); return; }
            foreach (var n in Name)
            {
                var entries = store.History(n);
                if (entries.Count == 0)
                    WriteError(ErrorMapper.ToRecord(new Engine.Errors.SafeDeployException("DeploymentNotFound", Engine.Errors.ErrorKind.ObjectNotFound, n,
                        $"No deployment named '{n}' has a journal in '{store.State.StateDir}'.", "Check the name (Get-SafeDeployHistory lists all) and -StateDirectory."), n));
                foreach (var h in entries) WriteObject(h);
            }
        }, StateDirectory ?? "history");
    }
}
