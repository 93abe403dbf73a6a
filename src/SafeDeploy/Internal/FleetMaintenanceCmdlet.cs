using System.Management.Automation;
using SafeDeploy.Engine.Fleet;
using SafeDeploy.Engine.StateDirectories;

namespace SafeDeploy.Internal;

/// <summary>
/// A cmdlet that also works across hosts: -Inventory, -Group and -HostName select them (FleetSelection), -HostExecutable
/// names the one-file safedeploy for hosts without pwsh. Invoke-SafeDeploy, Confirm-SafeDeploy and Undo-SafeDeploy
/// declare these once, here, in the same parameter sets.
/// </summary>
public abstract class FleetCmdlet : SafeDeployCmdlet
{
    protected const string LocalSet = "Local", InventorySet = "Inventory", HostNameSet = "HostName";

    [Parameter(Mandatory = true, ParameterSetName = InventorySet)] [ValidateNotNullOrEmpty] public string? Inventory { get; set; }

    [Parameter(ParameterSetName = InventorySet)] [ValidateNotNullOrEmpty] public string[]? Group { get; set; }

    [Parameter(ParameterSetName = InventorySet)]
    [Parameter(Mandatory = true, ParameterSetName = HostNameSet)]
    [ValidateNotNullOrEmpty] public string[]? HostName { get; set; }

    [Parameter(ParameterSetName = InventorySet)] [Parameter(ParameterSetName = HostNameSet)]
    [ValidateNotNullOrEmpty] public string? HostExecutable { get; set; }

    protected bool IsFleet => ParameterSetName != LocalSet;
}

/// <summary>
/// The fleet side of Confirm-SafeDeploy and Undo-SafeDeploy: the hosts selected as on Invoke-SafeDeploy, and the operation
/// run on each of them through the rollout's transport, one HostDeployResult per host.
/// </summary>
public abstract class FleetMaintenanceCmdlet : FleetCmdlet
{
    [Parameter(ParameterSetName = InventorySet)] [Parameter(ParameterSetName = HostNameSet)]
    [ValidateRange(1, 256)] public int ThrottleLimit { get; set; } = 5;

    /// <summary>Runs <paramref name="op"/> on every selected host the user agrees to (ShouldProcess per host), writing each host's result.</summary>
    private protected void ProcessFleet(HostOperation op, string name, string action)
    {
        var target = Inventory ?? string.Join(",", HostName ?? []);
        try
        {
            var inventory = Inventory is null ? null : ResolvePath(Inventory);
            var hosts = FleetSelection.Select(inventory, Group, HostName).Where(h => ShouldProcess($"{h.Name} ({h.Address})", $"{action} '{name}'")).ToList();
            if (hosts.Count == 0) return;
            var options = new FleetOperationOptions
            {
                Name = name, Hosts = hosts, ThrottleLimit = ThrottleLimit, Runtime = FleetRuntime(HostExecutable, StateDirectoryManager.Default(DirectReporter)),
            };
            var results = RunEngine((reporter, emit, token) => FleetMaintenance.Run(options with { Reporter = reporter }, op, emit, token));
            if (FleetMaintenance.Failure(op, name, results) is { } failure) WriteError(ErrorMapper.ToRecord(failure, name));
        }
        catch (OperationCanceledException) when (Cancellation.IsCancellationRequested) { throw new PipelineStoppedException(); }
        catch (Exception e) when (IsReportable(e)) { Fail(e, target); }
    }
}
