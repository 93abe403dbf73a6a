using System.Management.Automation;
using SafeDeploy.Engine.Deployment;
using SafeDeploy.Internal;

namespace SafeDeploy.Cmdlets;

/// <summary>Keeps a try-mode deployment: its watchdog then leaves it in place.</summary>
[Cmdlet(VerbsLifecycle.Confirm, "SafeDeploy", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
[OutputType(typeof(DeployHistoryEntry))]
public sealed class ConfirmSafeDeployCommand : SafeDeployCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(DeploymentNameCompleter))]
    public string Name { get; set; } = "";

    [Parameter] [ValidateNotNullOrEmpty] public string? StateDirectory { get; set; }

    protected override void ProcessRecord()
    {
        try
        {
            var store = new DeploymentStore(DeployRunner.State(StateDirectory is null ? null : ResolvePath(StateDirectory), DirectReporter));
            if (!ShouldProcess(Name, "Confirm the try-mode deployment (its watchdog will not roll it back)")) return;
            WriteObject(RunEngine((reporter, token) => TryMode.Confirm(store, Name, reporter, token)));
        }
        catch (Exception e) when (IsReportable(e)) { FailUnlessNotFound(e, Name); }
    }
}
