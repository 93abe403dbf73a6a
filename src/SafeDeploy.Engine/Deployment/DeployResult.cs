namespace SafeDeploy.Engine.Deployment;

/// <summary>What happened to one phase.</summary>
public sealed record PhaseResult
{
    public required string Name { get; init; }
    /// <summary>Succeeded, Failed, TimedOut, Cancelled, Skipped (never started), RolledBack (succeeded, then undone), RollbackFailed.</summary>
    public required string Status { get; init; }
    public DateTimeOffset? Started { get; init; }
    public TimeSpan Duration { get; init; }
    /// <summary>What the phase printed (its log), for -Verbose and post-mortems.</summary>
    public string Output { get; init; } = "";
    public string? Error { get; init; }
    /// <summary>The phase's log file.</summary>
    public string? LogPath { get; init; }
}

/// <summary>The outcome of Invoke-SafeDeploy or Undo-SafeDeploy.</summary>
public sealed record DeployResult
{
    public required string Name { get; init; }
    /// <summary>The run's id (names its journal).</summary>
    public required string Id { get; init; }
    /// <summary>Succeeded, RolledBack, Failed (failed with nothing to roll back), RollbackFailed; Undone for Undo-SafeDeploy.</summary>
    public required string Status { get; init; }
    public IReadOnlyList<PhaseResult> Phases { get; init; } = Array.Empty<PhaseResult>();
    public TimeSpan Duration { get; init; }
    /// <summary>The generation the deployment is at after this run (the new one on success, the previous one after a rollback).</summary>
    public int Generation { get; init; }
    public DateTimeOffset Started { get; init; }
    /// <summary>Why the run failed (the first failing phase's error).</summary>
    public string? Error { get; init; }
    /// <summary>Runs whose process died mid-way and that this run rolled back before starting.</summary>
    public IReadOnlyList<string> RecoveredRuns { get; init; } = Array.Empty<string>();
    public string? JournalPath { get; init; }
    /// <summary>The folder holding each phase's log (and undo log).</summary>
    public string? LogDirectory { get; init; }
    /// <summary>Try mode: the deployment is rolled back at this time unless Confirm-SafeDeploy is run.</summary>
    public DateTimeOffset? RollbackAt { get; init; }
    public bool Succeeded => Status == "Succeeded";

    /// <summary>The error a run that did not succeed reports (null when it did, or was undone as asked).</summary>
    public Errors.SafeDeployException? ToError()
    {
        if (Status is "Succeeded" or "Undone") return null;
        var id = Status switch { "RolledBack" => "DeploymentRolledBack", "RollbackFailed" => "RollbackFailed", _ => "DeploymentFailed" };
        var message = Status switch
        {
            "RolledBack" => $"Deployment '{Name}' failed and was rolled back to generation {Generation}: {Error}",
            "RollbackFailed" => $"Deployment '{Name}' failed and its rollback failed too; the machine may be half-changed: {Error}",
            _ => $"Deployment '{Name}' failed: {Error}",
        };
        return new Errors.SafeDeployException(id, Errors.ErrorKind.InvalidResult, Name, message, Status == "RollbackFailed"
            ? $"Read the journal ({JournalPath}) and the phases' undo logs, repair by hand, then deploy again."
            : "See the failing phase's Error and Output in the result (or its log), fix the cause and deploy again.");
    }
}

/// <summary>One past run, read from its journal.</summary>
public sealed record DeployHistoryEntry
{
    public required string Name { get; init; }
    public required string Id { get; init; }
    /// <summary>Succeeded, RolledBack, Failed, RollbackFailed, Undone, Running, or Incomplete (its process died; the next run rolls it back).</summary>
    public required string Status { get; init; }
    /// <summary>The generation the run made (0 for a run rolled back or failed: it never stood).</summary>
    public int Generation { get; init; }
    public DateTimeOffset Started { get; init; }
    public DateTimeOffset? Ended { get; init; }
    public TimeSpan? Duration => Ended - Started;
    public int Pid { get; init; }
    public IReadOnlyList<string> Phases { get; init; } = Array.Empty<string>();
    public string? ManifestFile { get; init; }
    public string? Root { get; init; }
    public required string JournalPath { get; init; }
    public string? Error { get; init; }
    /// <summary>Try mode: pending confirmation until this time.</summary>
    public DateTimeOffset? RollbackAt { get; init; }
    public bool Confirmed { get; init; }
}
