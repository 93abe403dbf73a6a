using System.Management.Automation;
using SafeDeploy.Engine.Fleet;
using SafeDeploy.Internal;

namespace SafeDeploy.Cmdlets;

/// <summary>Invoke-SafeDeploy across hosts: -Inventory and/or -HostName roll the manifest out in waves over ssh.</summary>
[OutputType(typeof(HostDeployResult), ParameterSetName = [InventorySet, HostNameSet])]
public sealed partial class InvokeSafeDeployCommand
{
    [Parameter(ParameterSetName = InventorySet)] [Parameter(ParameterSetName = HostNameSet)]
    [ValidateNotNullOrEmpty] public string[]? BatchSize { get; set; }

    [Parameter(ParameterSetName = InventorySet)] [Parameter(ParameterSetName = HostNameSet)]
    [ValidateNotNullOrEmpty] public string? MaxFailed { get; set; }

    [Parameter(ParameterSetName = InventorySet)] [Parameter(ParameterSetName = HostNameSet)]
    public FailureAction OnFailure { get; set; } = FailureAction.RollBack;

    void ProcessFleet()
    {
        var path = ResolvePath(Manifest);
        try
        {
            var state = DeployRunner.State(StateDirectory is null ? null : ResolvePath(StateDirectory), DirectReporter);
            var inventory = Inventory is null ? null : ResolvePath(Inventory);
            var options = new RolloutOptions
            {
                ManifestPath = path, InventoryPath = inventory, Hosts = FleetSelection.Select(inventory, Group, HostName),
                Variables = DeployRunner.Variables(Variables), BatchSize = BatchSize, MaxFailed = MaxFailed,
                OnFailure = OnFailure.To<Engine.Fleet.FailureAction>(), ThrottleLimit = ThrottleLimit, TrySeconds = TrySeconds,
                Runtime = FleetRuntime(HostExecutable, state),
            };
            var rollout = new FleetRollout(state);
            if (!ShouldProcess(path, rollout.Plan(options))) return;
            var results = RunEngine((reporter, emit, token) => rollout.Run(options with { Reporter = reporter }, emit, token));
            if (FleetRollout.Failure(results) is { } failure) WriteError(ErrorMapper.ToRecord(failure, path));
        }
        catch (OperationCanceledException) when (Cancellation.IsCancellationRequested) { throw new PipelineStoppedException(); }
        catch (Exception e) when (IsReportable(e)) { Fail(e, path); }
    }
}
