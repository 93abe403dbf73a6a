using System.Management.Automation;
using SafeDeploy.Engine.Deployment;
using SafeDeploy.Engine.Fleet;
using SafeDeploy.Internal;

namespace SafeDeploy.Cmdlets;

/// <summary>Keeps a try-mode deployment: its watchdog then leaves it in place.</summary>
/// <remarks>With -Inventory or -HostName: on each selected host, through ssh (a PowerShell remoting session where the host has pwsh).</remarks>
[Cmdlet(VerbsLifecycle.Confirm, "SafeDeploy", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low, DefaultParameterSetName = LocalSet)]
[OutputType(typeof(DeployHistoryEntry), ParameterSetName = [LocalSet])]
[OutputType(typeof(HostDeployResult), ParameterSetName = [InventorySet, HostNameSet])]
public sealed class ConfirmSafeDeployCommand : FleetMaintenanceCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(DeploymentNameCompleter))]
    public string Name { get; set; } = "";

    [Parameter(ParameterSetName = LocalSet)] [ValidateNotNullOrEmpty] public string? StateDirectory { get; set; }

    protected override void ProcessRecord()
    {
        if (IsFleet) { ProcessFleet(HostOperation.Confirm, Name, "Confirm the try-mode deployment"); return; }
        try
        {
            var store = new DeploymentStore(DeployRunner.State(StateDirectory is null ? null : ResolvePath(StateDirectory), DirectReporter));
            if (!ShouldProcess(Name, "Confirm the try-mode deployment (its watchdog will not roll it back)")) return;
            WriteObject(RunEngine((reporter, token) => TryMode.Confirm(store, Name, reporter, token)));
        }
        catch (Exception e) when (IsReportable(e)) { FailUnlessNotFound(e, Name); }
    }
}
