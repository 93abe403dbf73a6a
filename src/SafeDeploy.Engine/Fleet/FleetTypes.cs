namespace SafeDeploy.Engine.Fleet;

/// <summary>One host of a rollout, as the inventory (or -HostName) describes it.</summary>
internal sealed record FleetHost
{
    /// <summary>The inventory's name for the host (what results and the journal call it).</summary>
    public required string Name { get; init; }
    /// <summary>What ssh connects to (default: the name; the user's ~/.ssh/config may map it further).</summary>
    public required string Address { get; init; }
    public int? Port { get; init; }
    public string? User { get; init; }
    public string? IdentityFile { get; init; }
    /// <summary>`ssh -o` options, e.g. "UserKnownHostsFile=/path".</summary>
    public IReadOnlyList<string> SshOptions { get; init; } = Array.Empty<string>();
    /// <summary>Variables for this host; they override the manifest's and -Variables.</summary>
    public IReadOnlyDictionary<string, string> Variables { get; init; } = new Dictionary<string, string>();
    /// <summary>The host's -Root (null: the host's real file system).</summary>
    public string? Root { get; init; }
    /// <summary>The host's -StateDirectory base (null: SafeDeploy's default state directory of the ssh user).</summary>
    public string? StateDirectory { get; init; }
}

/// <summary>A parsed inventory: hosts in file order and named groups of them.</summary>
internal sealed record FleetInventory
{
    public required string File { get; init; }
    public required IReadOnlyList<FleetHost> Hosts { get; init; }
    public required IReadOnlyDictionary<string, IReadOnlyList<string>> Groups { get; init; }
}

/// <summary>What to do when the failure budget is spent.</summary>
internal enum FailureAction { RollBack, Stop, Continue }

/// <summary>A host's state in a rollout, or after Confirm/Undo across hosts (the rollout journal holds the name).</summary>
public enum HostStatus
{
    /// <summary>Deployed (or confirmed) on the host.</summary>
    Succeeded,
    /// <summary>The host's deployment failed; its own engine rolled back what it had changed.</summary>
    Failed,
    /// <summary>Deployed, then undone: the rollout rolled it back, or Undo-SafeDeploy undid it.</summary>
    RolledBack,
    /// <summary>Undoing the host's run failed (or the host could not be reached to undo it): it may be half-changed.</summary>
    RollbackFailed,
    /// <summary>The host could not be reached or staged; nothing was changed there.</summary>
    Unreachable,
    /// <summary>Nothing was started on the host (the rollout stopped first, or it had nothing to confirm or undo).</summary>
    NotStarted,
    /// <summary>A rollout journal holds a status this version does not know (written by a newer version).</summary>
    Unknown,
}

/// <summary>One host's outcome in a rollout; the last object for a host is its final state.</summary>
public sealed record HostDeployResult
{
    public required string HostName { get; init; }
    /// <summary>Succeeded, Failed, RolledBack, RollbackFailed, Unreachable or NotStarted.</summary>
    public required HostStatus Status { get; init; }
    /// <summary>The wave the host belongs to (1 is the canary).</summary>
    public int Batch { get; init; }
    /// <summary>The host's generation of the deployment after this step.</summary>
    public int Generation { get; init; }
    public TimeSpan Duration { get; init; }
    public string? Error { get; init; }
    /// <summary>The deployment's name (the manifest's `name`).</summary>
    public required string Name { get; init; }
    /// <summary>The host's own run id (its journal), when it ran.</summary>
    public string? Id { get; init; }
    /// <summary>The rollout this result belongs to (its controller journal).</summary>
    public required string Rollout { get; init; }
    /// <summary>Try mode: the host rolls back at this time unless confirmed.</summary>
    public DateTimeOffset? RollbackAt { get; init; }
    /// <summary>True when this result was read back from the journal of an interrupted rollout, not produced now.</summary>
    public bool Resumed { get; init; }
    public bool Succeeded => Status == HostStatus.Succeeded;
}

/// <summary>How a rollout ended (its journal's end record holds the name).</summary>
public enum RolloutStatus
{
    /// <summary>Every host succeeded.</summary>
    Succeeded,
    /// <summary>Some hosts failed (within the failure budget, or past it with -OnFailure Continue).</summary>
    Failed,
    /// <summary>The failure budget was spent and the hosts deployed were rolled back.</summary>
    RolledBack,
    /// <summary>The failure budget was spent and the rollout stopped, leaving deployed hosts as they are.</summary>
    Stopped,
    /// <summary>Its controller died before the end; the same command resumes it.</summary>
    Incomplete,
    /// <summary>The journal ended with a status this version does not know (written by a newer version).</summary>
    Unknown,
}

/// <summary>One rollout, read from the controller's journal (Get-SafeDeployHistory -Rollout).</summary>
public sealed record RolloutHistoryEntry
{
    public required string Id { get; init; }
    public required string Name { get; init; }
    /// <summary>Succeeded, Failed, RolledBack, Stopped, or Incomplete (its controller died; the same command resumes it).</summary>
    public required RolloutStatus Status { get; init; }
    public DateTimeOffset Started { get; init; }
    public DateTimeOffset? Ended { get; init; }
    public string? Manifest { get; init; }
    public string? Inventory { get; init; }
    /// <summary>Each host's last recorded state.</summary>
    public IReadOnlyList<HostDeployResult> Hosts { get; init; } = Array.Empty<HostDeployResult>();
    public required string JournalPath { get; init; }
}
