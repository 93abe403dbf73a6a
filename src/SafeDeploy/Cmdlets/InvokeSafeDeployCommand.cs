using System.Collections;
using System.Management.Automation;
using SafeDeploy.Engine.Deployment;
using SafeDeploy.Internal;

namespace SafeDeploy.Cmdlets;

/// <summary>Runs a deployment manifest: parallel phases under resource locks, journaled, rolled back on failure.</summary>
[Cmdlet(VerbsLifecycle.Invoke, "SafeDeploy", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium, DefaultParameterSetName = LocalSet)]
[OutputType(typeof(DeployResult))]
public sealed partial class InvokeSafeDeployCommand : FleetCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Path", "FullName")]
    [ValidateNotNullOrEmpty]
    public string Manifest { get; set; } = "";

    [Parameter] [ValidateNotNullOrEmpty] public string? Root { get; set; }

    [Parameter] public Hashtable? Variables { get; set; }

    [Parameter] [ValidateNotNullOrEmpty] [ArgumentCompleter(typeof(PhaseNameCompleter))] public string[]? Phase { get; set; }

    [Parameter] [ValidateRange(1, 256)] public int ThrottleLimit { get; set; } = 5;

    [Parameter] [ValidateNotNullOrEmpty] public string? StateDirectory { get; set; }

    [Parameter] [ValidateRange(0, int.MaxValue)] public int? LockTimeoutSec { get; set; }

    [Parameter] [ValidateRange(1, 86400)] public int? TrySeconds { get; set; }

    protected override void ProcessRecord() => DeployHere();

    /// <summary>The single-host path: plan once, show the plan (-WhatIf/-Confirm), run exactly that plan, write the result.</summary>
    void DeployHere()
    {
        if (IsFleet) { ProcessFleet(); return; }
        var path = ResolvePath(Manifest);
        try
        {
            var stateBase = StateDirectory is null ? null : ResolvePath(StateDirectory);
            var engine = new DeploymentEngine(DeployRunner.State(stateBase, DirectReporter));
            var plan = engine.Plan(new DeployOptions
            {
                ManifestPath = path, Variables = DeployRunner.Variables(Variables), Root = Root is null ? null : ResolvePath(Root), Phases = Phase,
                ThrottleLimit = ThrottleLimit, LockTimeout = LockTimeoutSec is { } s ? TimeSpan.FromSeconds(s) : null, TrySeconds = TrySeconds,
                Watchdog = TrySeconds is null ? null : WatchdogHost.Locate(MyInvocation.MyCommand.Module?.ModuleBase, MyInvocation.MyCommand.Module?.Path, stateBase),
            });
            if (!ShouldProcess(plan.Name, plan.Describe())) return;
            var result = DeployRunner.Run(this, Cancellation, (reporter, invoker) => engine.Invoke(plan, reporter, invoker, Cancellation));
            if (Cancellation.IsCancellationRequested) throw new PipelineStoppedException();
            WriteResult(result);
        }
        catch (OperationCanceledException) when (Cancellation.IsCancellationRequested) { throw new PipelineStoppedException(); }
        catch (Exception e) when (IsReportable(e)) { FailUnlessNotFound(e, path); }
    }

    /// <summary>The result object, and the run's error when it did not succeed.</summary>
    internal void WriteResult(DeployResult result)
    {
        WriteObject(result);
        if (result.ToError() is { } error) WriteError(ErrorMapper.ToRecord(error, result.Name));
    }
}
