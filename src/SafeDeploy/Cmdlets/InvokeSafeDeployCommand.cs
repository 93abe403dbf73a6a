using System.Collections;
using System.Management.Automation;
using System.Text;
using SafeDeploy.Engine.Actions;
using SafeDeploy.Engine.Deployment;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Internal;

namespace SafeDeploy.Cmdlets;

/// <summary>Runs a deployment manifest: parallel phases under resource locks, journaled, rolled back on failure.</summary>
[Cmdlet(VerbsLifecycle.Invoke, "SafeDeploy", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium, DefaultParameterSetName = LocalSet)]
[OutputType(typeof(DeployResult))]
public sealed partial class InvokeSafeDeployCommand : SafeDeployCmdlet
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

    protected override void ProcessRecord()
    {
        if (ParameterSetName != LocalSet) { ProcessFleet(); return; }
        var path = ResolvePath(Manifest);
        var root = Root is null ? null : ResolvePath(Root);
        var variables = DeployRunner.Variables(Variables);
        try
        {
            var state = DeployRunner.State(StateDirectory is null ? null : ResolvePath(StateDirectory), DirectReporter);
            var engine = new DeploymentEngine(state);
            var manifest = engine.Parse(path, variables, root).GetOrThrow(path);
            var plan = Plan(manifest, root) + (TrySeconds is { } t ? $"\n  then roll back after {t} s unless Confirm-SafeDeploy -Name {manifest.Name} is run" : "");
            if (!ShouldProcess(manifest.Name, plan)) return;
            var launch = TrySeconds is null ? null : Watchdog(StateDirectory is null ? null : ResolvePath(StateDirectory));
            var result = DeployRunner.Run(this, Cancellation, (reporter, invoker) => engine.Invoke(new DeployOptions
            {
                ManifestPath = path, Variables = variables, Root = root, Phases = Phase, ThrottleLimit = ThrottleLimit,
                LockTimeout = LockTimeoutSec is { } s ? TimeSpan.FromSeconds(s) : null, Reporter = reporter, ScriptInvoker = invoker,
            }, Cancellation));
            if (Cancellation.IsCancellationRequested) throw new PipelineStoppedException();
            foreach (var r in result.RecoveredRuns) WriteWarning($"Rolled back run '{r}' of '{result.Name}', whose process had died, before deploying.");
            if (result.Succeeded && TrySeconds is { } seconds)
            {
                result = result with { RollbackAt = TryMode.Arm(engine.Store, result, seconds, launch!) };
                WriteWarning($"Try mode: '{result.Name}' is rolled back at {result.RollbackAt:u} unless you run Confirm-SafeDeploy -Name {result.Name} before.");
            }
            WriteObject(result);
            if (!result.Succeeded) WriteError(Failure(result));
        }
        catch (OperationCanceledException) when (Cancellation.IsCancellationRequested) { throw new PipelineStoppedException(); }
        catch (Exception e) when (IsReportable(e)) { Fail(e, path); }
    }

    /// <summary>The PowerShell host the watchdog runs in: SAFEDEPLOY_HOST, this process when it is safedeploy or pwsh, else one on PATH.</summary>
    WatchdogLaunch Watchdog(string? stateBase)
    {
        var host = Environment.GetEnvironmentVariable("SAFEDEPLOY_HOST") is { Length: > 0 } h ? h
            : Environment.ProcessPath is { } self && System.IO.Path.GetFileName(self) is "safedeploy" or "pwsh" ? self
            : Engine.Platform.ExternalCommand.Which("safedeploy") ?? Engine.Platform.ExternalCommand.Which("pwsh")
              ?? throw new SafeDeployException("TryModeUnavailable", ErrorKind.NotInstalled, "safedeploy",
                  "Try mode needs a PowerShell host for its watchdog (the safedeploy host or pwsh), and none was found.",
                  "Put safedeploy or pwsh on PATH, or set SAFEDEPLOY_HOST to one.");
        var module = MyInvocation.MyCommand.Module is { } m
            ? (File.Exists(System.IO.Path.Combine(m.ModuleBase, "SafeDeploy.psd1")) ? System.IO.Path.Combine(m.ModuleBase, "SafeDeploy.psd1") : m.Path)
            : "SafeDeploy";
        return new WatchdogLaunch(host, module, stateBase);
    }

    internal static ErrorRecord Failure(DeployResult result)
    {
        var id = result.Status switch { "RolledBack" => "DeploymentRolledBack", "RollbackFailed" => "RollbackFailed", "Undone" => "Undone", _ => "DeploymentFailed" };
        var message = result.Status switch
        {
            "RolledBack" => $"Deployment '{result.Name}' failed and was rolled back to generation {result.Generation}: {result.Error}",
            "RollbackFailed" => $"Deployment '{result.Name}' failed and its rollback failed too; the machine may be half-changed: {result.Error}",
            _ => $"Deployment '{result.Name}' failed: {result.Error}",
        };
        var record = new ErrorRecord(new SafeDeployException(id, ErrorKind.InvalidOperation, result.Name, message), id,
            ErrorCategory.InvalidResult, result.Name);
        record.ErrorDetails = new ErrorDetails(message)
        {
            RecommendedAction = result.Status == "RollbackFailed"
                ? $"Read the journal ({result.JournalPath}) and the phases' undo logs, repair by hand, then deploy again."
                : "See the failing phase's Error and Output in the result (or its log), fix the cause and deploy again.",
        };
        return record;
    }

    /// <summary>The -WhatIf text: phases in waves, each with what it would change.</summary>
    static string Plan(Engine.Manifest.DeploymentManifest manifest, string? root)
    {
        var sb = new StringBuilder($"Deploy '{manifest.Name}' ({manifest.Phases.Count} phases{(root is null ? "" : $", under root {root}")})");
        int wave = 0;
        foreach (var w in manifest.Waves())
        {
            sb.Append($"\n  wave {++wave}:");
            foreach (var p in w)
            {
                sb.Append($"\n    {p.Name}: {p.Action.Describe()}");
                if (p.Writes.Count > 0) sb.Append($"\n      writes: {string.Join(", ", p.Writes.Select(x => SafeMap(root, x)))}");
                if (p.Resources.Count > 0) sb.Append($"\n      holds: {string.Join(", ", p.Resources)}");
            }
        }
        return sb.ToString();
    }

    static string SafeMap(string? root, string path) => System.IO.Path.IsPathRooted(path) ? ActionContext.MapPath(root, path) : path;
}
