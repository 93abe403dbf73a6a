namespace SafeDeploy.Engine.Deployment;

/// <summary>What happened to one phase (the journal's phase-end records hold the name).</summary>
public enum PhaseStatus
{
    /// <summary>Started and not finished yet (only while the scheduler runs; never in a result).</summary>
    Running,
    /// <summary>Every action of the phase finished.</summary>
    Succeeded,
    /// <summary>An action failed.</summary>
    Failed,
    /// <summary>The phase ran past its timeout and was stopped.</summary>
    TimedOut,
    /// <summary>The run was cancelled (Ctrl+C) while the phase ran.</summary>
    Cancelled,
    /// <summary>Never started: a phase it depends on did not succeed, or the run stopped first.</summary>
    Skipped,
    /// <summary>Succeeded, then undone by the run's rollback (or by Undo-SafeDeploy).</summary>
    RolledBack,
    /// <summary>Undoing the phase failed: what it changed may be left in part.</summary>
    RollbackFailed,
}

/// <summary>The outcome of a run: a <see cref="DeployResult"/>'s and a <see cref="DeployHistoryEntry"/>'s status (the journal's end record holds the name).</summary>
public enum DeployStatus
{
    /// <summary>Every phase succeeded: the run made a new generation.</summary>
    Succeeded,
    /// <summary>The run failed with nothing to roll back.</summary>
    Failed,
    /// <summary>The run failed and what it changed was undone: the previous generation stands.</summary>
    RolledBack,
    /// <summary>The run failed and undoing it failed too: the machine may be half-changed.</summary>
    RollbackFailed,
    /// <summary>Undo-SafeDeploy (or a try-mode deadline) undid the run as asked.</summary>
    Undone,
    /// <summary>History only: the run's process is still at work.</summary>
    Running,
    /// <summary>History only: the run's process died mid-way; the next run rolls it back.</summary>
    Incomplete,
    /// <summary>History only: the journal ended with a status this version does not know (or none).</summary>
    Unknown,
}

/// <summary>What happened to one phase.</summary>
public sealed record PhaseResult
{
    public required string Name { get; init; }
    public required PhaseStatus Status { get; init; }
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
    public required DeployStatus Status { get; init; }
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
    public bool Succeeded => Status == DeployStatus.Succeeded;

    /// <summary>The error a run that did not succeed reports (null when it did, or was undone as asked).</summary>
    public Errors.SafeDeployException? ToError()
    {
        if (Status is DeployStatus.Succeeded or DeployStatus.Undone) return null;
        var id = Status switch { DeployStatus.RolledBack => "DeploymentRolledBack", DeployStatus.RollbackFailed => "RollbackFailed", _ => "DeploymentFailed" };
        var message = Status switch
        {
            DeployStatus.RolledBack => $"Deployment '{Name}' failed and was rolled back to generation {Generation}: {Error}",
            DeployStatus.RollbackFailed => $"Deployment '{Name}' failed and its rollback failed too; the machine may be half-changed: {Error}",
            _ => $"Deployment '{Name}' failed: {Error}",
        };
        return new Errors.SafeDeployException(id, Errors.ErrorKind.InvalidResult, Name, message, Status == DeployStatus.RollbackFailed
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
    public required DeployStatus Status { get; init; }
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
