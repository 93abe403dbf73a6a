using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.JobStatus;

/// <summary>One status update of one job, as it will be written to &lt;StatusDirectory&gt;/&lt;JobName&gt;.json.</summary>
internal sealed record JobStatusUpdate
{
    public required string JobName { get; init; }
    /// <summary>queued, running, completed, failed or cancelled (see <see cref="JobStatusNames"/>).</summary>
    public required string Status { get; init; }
    public int? Progress { get; init; }
    public string? Message { get; init; }
    /// <summary>Extra data (strings, numbers, booleans, lists and nested dictionaries), written under "data".</summary>
    public IDictionary<string, object?>? Data { get; init; }
    public DateTimeOffset UpdatedAt { get; init; } = DateTimeOffset.UtcNow;
    public string Host { get; init; } = ProcessInfo.HostName;
}

/// <summary>Where and how to sync.</summary>
internal sealed record JobStatusOptions
{
    /// <summary>The clone of the dashboard repository (its work tree or its .git directory).</summary>
    public required string Repository { get; init; }
    /// <summary>Directory inside the repository that holds one JSON file per job.</summary>
    public string StatusDirectory { get; init; } = "data/status";
    /// <summary>Name of a configured remote.</summary>
    public string Remote { get; init; } = "origin";
    /// <summary>Branch on the remote; null means the remote's HEAD branch, else the current branch, else main.</summary>
    public string? Branch { get; init; }
    /// <summary>Keep the update in the outbox without pushing.</summary>
    public bool NoPush { get; init; }
    /// <summary>Push with --no-verify: the clone's pre-push hook does not run (the remote's own hooks always do).</summary>
    public bool NoVerify { get; init; }
    /// <summary>How long to wait for the clone's lock before queueing the update instead.</summary>
    public TimeSpan LockTimeout { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>Pushes tried (each after a fetch and rebuild on the new remote tip) before the update is queued.</summary>
    public int MaxAttempts { get; init; } = 12;
    /// <summary>Timeout for a local git command.</summary>
    public TimeSpan GitTimeout { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>Timeout for a git command that talks to the remote (fetch, push, ls-remote).</summary>
    public TimeSpan NetworkTimeout { get; init; } = TimeSpan.FromSeconds(60);
    public IOperationReporter Reporter { get; init; } = NullReporter.Instance;
}

/// <summary>What became of one job's update.</summary>
public sealed record JobStatusResult
{
    public required string JobName { get; init; }
    public required string Status { get; init; }
    /// <summary>The commit on the remote branch that carries the update (null while queued).</summary>
    public string? Commit { get; init; }
    /// <summary>The remote branch is confirmed to contain the update (or a newer one of the same job).</summary>
    public bool Pushed { get; init; }
    /// <summary>Push attempts this call made (0 when another process pushed the update along with its own).</summary>
    public int Attempts { get; init; }
    /// <summary>The update waits in the clone's outbox; the next call or the cron form pushes it.</summary>
    public bool Queued { get; init; }
    public string Repository { get; init; } = "";
    public string Branch { get; init; } = "";
}

/// <summary>A job's status as read back from the repository.</summary>
public sealed record JobStatusRecord
{
    public required string JobName { get; init; }
    public string? Status { get; init; }
    public int? Progress { get; init; }
    public string? Message { get; init; }
    public DateTimeOffset? UpdatedAt { get; init; }
    public string? Host { get; init; }
    public IReadOnlyDictionary<string, object?>? Data { get; init; }
    /// <summary>True when this update is still in the outbox, not yet on the remote.</summary>
    public bool Pending { get; init; }
    /// <summary>The commit it was read from (null for a pending update).</summary>
    public string? Commit { get; init; }
    public string Path { get; init; } = "";
}

/// <summary>The status words and their validation.</summary>
internal static class JobStatusNames
{
    public static readonly IReadOnlyList<string> All = ["queued", "running", "completed", "failed", "cancelled"];

    /// <summary>
    /// Normalises a status word; a DeployResult's or HostDeployResult's outcome maps to completed (Succeeded), cancelled
    /// (NotStarted: the rollout stopped before the host) or failed (the rest, Unreachable included).
    /// </summary>
    public static string Normalize(string status) => status.Trim().ToLowerInvariant() switch
    {
        "succeeded" => "completed",
        "rolledback" or "rollbackfailed" or "unreachable" => "failed",
        "notstarted" => "cancelled",
        var s when All.Contains(s) => s,
        _ => throw new Errors.SafeDeployException("InvalidJobStatus", Errors.ErrorKind.InvalidArgument, status,
            $"'{status}' is not a job status. Use one of: {string.Join(", ", All)} (or a deployment's outcome: Succeeded, RolledBack, Failed, RollbackFailed, Unreachable, NotStarted).",
            "Pass one of the listed status words."),
    };

    /// <summary>
    /// The job of <paramref name="jobName"/> on <paramref name="hostName"/>: "name.host" (characters a job name cannot hold
    /// become '_'), so the hosts of one rollout each keep their own status file; the name alone without a host.
    /// </summary>
    public static string ForHost(string jobName, string? hostName) => hostName is null ? jobName
        : jobName + "." + new string(hostName.Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' ? c : '_').ToArray()).TrimStart('.');
}
