using System.Text;
using SafeDeploy.Engine.Actions;
using SafeDeploy.Engine.Manifest;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Deployment;

/// <summary>How to run a deployment: what <see cref="DeploymentEngine.Plan"/> reads.</summary>
internal sealed record DeployOptions
{
    public required string ManifestPath { get; init; }
    public IReadOnlyDictionary<string, string>? Variables { get; init; }
    /// <summary>Sandbox prefix for every absolute path the deployment writes.</summary>
    public string? Root { get; init; }
    /// <summary>Run only these phases (their dependencies outside the selection count as done).</summary>
    public IReadOnlyList<string>? Phases { get; init; }
    public int ThrottleLimit { get; init; } = 5;
    /// <summary>Give up waiting for the deployment lock after this long (null: wait).</summary>
    public TimeSpan? LockTimeout { get; init; }
    /// <summary>Try mode: roll the run back after this many seconds unless Confirm-SafeDeploy confirms it.</summary>
    public int? TrySeconds { get; init; }
    /// <summary>Try mode: how to start the watchdog (see <see cref="WatchdogHost.Locate"/>).</summary>
    public WatchdogLaunch? Watchdog { get; init; }
}

/// <summary>
/// What a deployment will do, read once from its manifest: the parsed manifest, the selected phases in waves, every
/// path each phase changes (resolved under the root) and the try-mode settings. -WhatIf and -Confirm show
/// <see cref="Describe"/>; <see cref="DeploymentEngine.Invoke(DeploymentPlan, IOperationReporter, ScriptInvoker?, CancellationToken)"/>
/// runs exactly this object.
/// </summary>
internal sealed record DeploymentPlan
{
    public required DeploymentManifest Manifest { get; init; }
    public required DeploymentRoot Root { get; init; }
    /// <summary>The phases that run, in manifest order.</summary>
    public required IReadOnlyList<PhaseDefinition> Phases { get; init; }
    /// <summary>Each phase's writes, mapped under the root.</summary>
    public required IReadOnlyDictionary<string, IReadOnlyList<string>> Writes { get; init; }
    public int ThrottleLimit { get; init; } = 5;
    public TimeSpan? LockTimeout { get; init; }
    public int? TrySeconds { get; init; }
    public WatchdogLaunch? Watchdog { get; init; }

    public string Name => Manifest.Name;

    /// <summary>The selected phases in waves: each wave's phases depend only on earlier waves.</summary>
    public IReadOnlyList<IReadOnlyList<PhaseDefinition>> Waves => ManifestGraph.Waves(Phases);

    /// <summary>The plan as text (what -WhatIf prints): phases in waves, what each changes, editFile diffs.</summary>
    public string Describe()
    {
        var sb = new StringBuilder($"Deploy '{Name}' ({Phases.Count} phases{(Root.IsSandbox ? $", under root {Root}" : "")})");
        int wave = 0;
        foreach (var w in Waves)
        {
            sb.Append($"\n  wave {++wave}:");
            foreach (var p in w)
            {
                sb.Append($"\n    {p.Name}: {p.Action.Describe()}");
                if (Writes[p.Name].Count > 0) sb.Append($"\n      writes: {string.Join(", ", Writes[p.Name])}");
                if (p.Resources.Count > 0) sb.Append($"\n      holds: {string.Join(", ", p.Resources)}");
                if (p.Action is IPreviewAction preview && preview.Preview(Root) is { Length: > 0 } diff)
                    sb.Append("\n      ").Append(diff.Replace("\n", "\n      "));
            }
        }
        if (TrySeconds is { } t) sb.Append($"\n  then roll back after {t} s unless Confirm-SafeDeploy -Name {Name} is run");
        return sb.ToString();
    }
}
