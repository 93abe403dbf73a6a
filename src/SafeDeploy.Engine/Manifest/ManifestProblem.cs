namespace SafeDeploy.Engine.Manifest;

/// <summary>How bad a manifest problem is: an Error stops the deployment before anything runs; a Warning does not.</summary>
public enum ProblemSeverity { Error, Warning }

/// <summary>One problem in a manifest, with where it is.</summary>
public sealed record ManifestProblem
{
    public required string File { get; init; }
    public int Line { get; init; }
    public int Column { get; init; }
    public ProblemSeverity Severity { get; init; } = ProblemSeverity.Error;
    /// <summary>Stable code: YamlSyntax, UnknownKey, MissingKey, MissingAction, TwoActions, UnknownAction, UnknownDependency,
    /// DependencyCycle, UndefinedVariable, InvalidValue, DuplicatePhase, RaceWarning.</summary>
    public required string Code { get; init; }
    public required string Message { get; init; }
    /// <summary>The phase it is about, when it is about one.</summary>
    public string? Phase { get; init; }

    /// <summary>"deploy.yaml:12:5: error UnknownKey: ..." as compilers print it.</summary>
    public override string ToString() =>
        $"{File}:{Line}:{Column}: {Severity.ToString().ToLowerInvariant()} {Code}: {Message}";
}
