using System.Management.Automation;
using SafeDeploy.Engine.Actions;
using SafeDeploy.Engine.Deployment;
using SafeDeploy.Engine.Fleet;
using SafeDeploy.Internal;

namespace SafeDeploy.Cmdlets;

/// <summary>Rolls the latest run still standing of a deployment back to the generation before it (or finishes a rollback that failed part-way).</summary>
/// <remarks>With -Inventory or -HostName: on each selected host (under its inventory root), through ssh or a PowerShell remoting session.</remarks>
[Cmdlet(VerbsCommon.Undo, "SafeDeploy", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium, DefaultParameterSetName = LocalSet)]
[OutputType(typeof(DeployResult), ParameterSetName = [LocalSet])]
[OutputType(typeof(HostDeployResult), ParameterSetName = [InventorySet, HostNameSet])]
public sealed class UndoSafeDeployCommand : FleetMaintenanceCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(DeploymentNameCompleter))]
    public string Name { get; set; } = "";

    [Parameter(ValueFromPipelineByPropertyName = true, ParameterSetName = LocalSet)] [ValidateNotNullOrEmpty] [ArgumentCompleter(typeof(RunIdCompleter))] public string? Id { get; set; }

    /// <summary>Undo the latest run deployed under this sandbox root (Invoke-SafeDeploy -Root); without it, the latest run of any root.</summary>
    [Parameter(ParameterSetName = LocalSet)] [ValidateNotNullOrEmpty] public string? Root { get; set; }

    [Parameter(ParameterSetName = LocalSet)] [ValidateNotNullOrEmpty] public string? StateDirectory { get; set; }

    [Parameter(ParameterSetName = LocalSet)] [ValidateRange(0, int.MaxValue)] public int? LockTimeoutSec { get; set; }

    [Parameter(ParameterSetName = LocalSet)] public SwitchParameter UnlessConfirmed { get; set; }

    protected override void ProcessRecord()
    {
        if (IsFleet) { ProcessFleet(HostOperation.Undo, Name, "Roll back the latest run standing"); return; }
        try
        {
            var engine = new DeploymentEngine(DeployRunner.State(StateDirectory is null ? null : ResolvePath(StateDirectory), DirectReporter));
            if (!ShouldProcess(Name, Id is null ? "Roll back the latest successful deployment" : $"Roll back run {Id}")) return;
            var result = DeployRunner.Run(this, Cancellation, (reporter, invoker) =>
                engine.Undo(Name, Id, reporter, invoker, LockTimeoutSec is { } s ? TimeSpan.FromSeconds(s) : null, Cancellation, UnlessConfirmed,
                    Root is null ? null : DeploymentRoot.From(ResolvePath(Root))));
            WriteObject(result);
            if (result.ToError() is { } error) WriteError(ErrorMapper.ToRecord(error, Name));
        }
        catch (OperationCanceledException) when (Cancellation.IsCancellationRequested) { throw new PipelineStoppedException(); }
        catch (Exception e) when (IsReportable(e)) { FailUnlessNotFound(e, Name); }
    }
}
