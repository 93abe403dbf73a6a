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
    [ArgumentCompleter(typeof(DeploymentNameCompleter))]
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
                if (entries.Count == 0) WriteError(ErrorMapper.ToRecord(Engine.Errors.ErrorCatalog.DeploymentNotFound(n, store.State.StateDir), n));
                foreach (var h in entries) WriteObject(h);
            }
        }, StateDirectory ?? "history");
    }
}
