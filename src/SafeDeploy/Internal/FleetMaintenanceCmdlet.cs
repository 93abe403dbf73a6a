using System.Management.Automation;
using SafeDeploy.Engine.Fleet;
using SafeDeploy.Engine.StateDirectories;

namespace SafeDeploy.Internal;

/// <summary>
/// The fleet side of Confirm-SafeDeploy and Undo-SafeDeploy: -Inventory, -Group and -HostName select hosts as on
/// Invoke-SafeDeploy, and the operation runs on each of them through the rollout's transport, one HostDeployResult per host.
/// </summary>
public abstract class FleetMaintenanceCmdlet : SafeDeployCmdlet
{
    protected const string LocalSet = "Local", InventorySet = "Inventory", HostNameSet = "HostName";

    [Parameter(Mandatory = true, ParameterSetName = InventorySet)] [ValidateNotNullOrEmpty] public string? Inventory { get; set; }

    [Parameter(ParameterSetName = InventorySet)] [ValidateNotNullOrEmpty] public string[]? Group { get; set; }

    [Parameter(ParameterSetName = InventorySet)]
    [Parameter(Mandatory = true, ParameterSetName = HostNameSet)]
    [ValidateNotNullOrEmpty] public string[]? HostName { get; set; }

    [Parameter(ParameterSetName = InventorySet)] [Parameter(ParameterSetName = HostNameSet)]
    [ValidateRange(1, 256)] public int ThrottleLimit { get; set; } = 5;

    [Parameter(ParameterSetName = InventorySet)] [Parameter(ParameterSetName = HostNameSet)]
    [ValidateNotNullOrEmpty] public string? HostExecutable { get; set; }

    protected bool IsFleet => ParameterSetName != LocalSet;

    /// <summary>Runs <paramref name="op"/> on every selected host the user agrees to (ShouldProcess per host), writing each host's result.</summary>
    protected void ProcessFleet(HostOperation op, string name, string action)
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
