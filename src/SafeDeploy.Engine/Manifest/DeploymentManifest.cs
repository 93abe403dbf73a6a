using SafeDeploy.Engine.Actions;

namespace SafeDeploy.Engine.Manifest;

/// <summary>One phase of a deployment: its place in the graph, its locks and limits, and its one action.</summary>
internal sealed record PhaseDefinition
{
    public required string Name { get; init; }
    public IReadOnlyList<string> DependsOn { get; init; } = Array.Empty<string>();
    /// <summary>Named locks held while the phase runs.</summary>
    public IReadOnlyList<string> Resources { get; init; } = Array.Empty<string>();
    /// <summary>The phase is cancelled (and fails) after this long; null: no limit.</summary>
    public TimeSpan? Timeout { get; init; }
    /// <summary>A failure of this phase is recorded but does not fail the deployment.</summary>
    public bool ContinueOnError { get; init; }
    /// <summary>Paths declared under `writes:` (for race warnings).</summary>
    public IReadOnlyList<string> DeclaredWrites { get; init; } = Array.Empty<string>();
    public required IDeployAction Action { get; init; }
    public int Line { get; init; }
    public int Column { get; init; }

    /// <summary>Declared writes and the action's own targets.</summary>
    public IReadOnlyList<string> Writes => DeclaredWrites.Concat(Action.Writes).Distinct(StringComparer.Ordinal).ToList();
}

/// <summary>A parsed, valid manifest: its variables expanded, its phases checked.</summary>
internal sealed record DeploymentManifest
{
    public required string Name { get; init; }
    /// <summary>The deployment-wide lock name (default: the name).</summary>
    public required string Lock { get; init; }
    public string? Description { get; init; }
    public required IReadOnlyDictionary<string, string> Variables { get; init; }
    public required IReadOnlyList<PhaseDefinition> Phases { get; init; }
    /// <summary>The top-level <c>environment:</c> and <c>inheritEnvironment:</c> (null: neither given).</summary>
    public Platform.EnvironmentSpec? Environment { get; init; }
    /// <summary>The manifest file (full path).</summary>
    public required string File { get; init; }
    /// <summary>The manifest text, kept in the journal so that a rollback can rebuild the actions.</summary>
    public required string Text { get; init; }
    /// <summary>Warnings found while parsing (race warnings).</summary>
    public IReadOnlyList<ManifestProblem> Warnings { get; init; } = Array.Empty<ManifestProblem>();

    public PhaseDefinition Phase(string name) => Phases.First(p => p.Name == name);

    /// <summary>Phases in waves: each wave's phases depend only on earlier waves (what -WhatIf prints).</summary>
    public IReadOnlyList<IReadOnlyList<PhaseDefinition>> Waves() => ManifestGraph.Waves(Phases);
}
