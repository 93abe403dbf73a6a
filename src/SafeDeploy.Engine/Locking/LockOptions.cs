using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Locking;

/// <summary>How to take a lock.</summary>
internal sealed record LockOptions
{
    /// <summary>A shared (reader) lock instead of an exclusive one.</summary>
    public bool Shared { get; init; }
    /// <summary>Give up after this long; null waits until cancelled.</summary>
    public TimeSpan? Timeout { get; init; }
    /// <summary>Write who holds the lock into the lock file (only into an empty file or one holding an earlier record).</summary>
    public bool RecordHolder { get; init; } = true;
    /// <summary>
    /// After acquiring, check that the path still names the locked inode, and retry if it was replaced.
    /// Needed when the locked file is itself rewritten by rename (Edit-LockedFile locks the file it edits).
    /// </summary>
    public bool VerifyPathIdentity { get; init; }
    /// <summary>Create the lock file when missing (otherwise a missing file is an error).</summary>
    public bool Create { get; init; } = true;
    /// <summary>Mode of a lock file this call creates (an existing file keeps its mode).</summary>
    public uint CreateMode { get; init; } = 0x180; // 0600: a shared model cache asks for group access
    /// <summary>Put the holder's command line into its record; off where it may carry a secret (a URL with a token).</summary>
    public bool RecordCommandLine { get; init; } = true;
    /// <summary>What the lock is for, shown to waiters.</summary>
    public string? Purpose { get; init; }
    public IOperationReporter Reporter { get; init; } = NullReporter.Instance;
    /// <summary>
    /// The directory already opened that holds the lock file (in a -Root jail): the file is opened, and checked after the
    /// lock, by its name in this descriptor, never by resolving the path again; the path then only names it in messages.
    /// </summary>
    public SafeDirectory? Directory { get; init; }
}
