using System.Diagnostics;
using Microsoft.Win32.SafeHandles;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Locking;

/// <summary>
/// A flock(2) lock on a file: the one lock type of SafeDeploy. It is released by Dispose or, whatever happens,
/// by the kernel when the process dies; there is never anything stale to break, and the lock file is never deleted.
/// Compatible with flock(1) and with .NET's FileShare.None, which take the same kind of lock.
/// </summary>
internal sealed partial class FileLock : IDisposable
{
    internal const string RecordMarker = "{\"safedeployLockHolder\"";

    SafeFileHandle? handle;
    readonly bool mayRecord;

    FileLock(string path, LockFileHandle file, bool shared, TimeSpan waited, LockHolder? waitedFor)
    {
        Path = path;
        handle = file.Fd;
        mayRecord = file.MayRecord;
        Created = file.Created;
        Shared = shared;
        WaitTime = waited;
        WaitedFor = waitedFor;
    }

    public string Path { get; }
    public bool Shared { get; }
    /// <summary>True when this call created the lock file (so it is ours to remove while we hold it).</summary>
    public bool Created { get; }
    /// <summary>How long the caller waited for the lock.</summary>
    public TimeSpan WaitTime { get; }
    /// <summary>Who held the lock when the caller started waiting, or null when it was free.</summary>
    public LockHolder? WaitedFor { get; }
    /// <summary>The locked descriptor: read and write the file through it (a second open would meet .NET's own flock).</summary>
    public SafeFileHandle Handle => handle ?? throw new ObjectDisposedException(nameof(FileLock));

    /// <summary>Takes the lock without waiting; null when someone else holds it.</summary>
    public static FileLock? TryAcquire(string path, LockOptions? options = null)
    {
        options ??= new LockOptions();
        int swaps = 0;
        while (true)
        {
            var file = OpenLockFile(path, options);
            var fd = file.Fd;
            int rc = Native.Flock(fd, (options.Shared ? Native.LOCK_SH : Native.LOCK_EX) | Native.LOCK_NB);
            if (rc == Native.EWOULDBLOCK) { fd.Dispose(); return null; }
            if (rc != 0) { fd.Dispose(); throw FlockFailed(path, rc); }
            if (options.VerifyPathIdentity && !StillNamesPath(fd, path, options)) { fd.Dispose(); CheckSwaps(path, ++swaps); continue; }
            return Finish(path, file, options, TimeSpan.Zero, null);
        }
    }

    /// <summary>
    /// Takes the lock, waiting as long as <see cref="LockOptions.Timeout"/> allows. A process already waiting is
    /// handed the lock by the kernel the moment it is released (no polling).
    /// </summary>
    public static FileLock Acquire(string path, LockOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new LockOptions();
        var clock = Stopwatch.StartNew();
        LockHolder? firstHolder = null;
        int activityId = ProgressIds.Next();
        bool reported = false;
        int swaps = 0;
        try
        {
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var file = OpenLockFile(path, options);
                var fd = file.Fd;
                int op = options.Shared ? Native.LOCK_SH : Native.LOCK_EX;
                int rc = Native.Flock(fd, op | Native.LOCK_NB);
                if (rc == Native.EWOULDBLOCK)
                {
                    firstHolder ??= LockInspector.Inspect(path);
                    reported = true;
                    rc = WaitBlocking(path, fd, op, options, clock, activityId, ref firstHolder, cancellationToken);
                }
                if (rc != 0) { fd.Dispose(); throw FlockFailed(path, rc); }
                if (options.VerifyPathIdentity && !StillNamesPath(fd, path, options))
                {
                    fd.Dispose();
                    CheckSwaps(path, ++swaps);
                    continue;
                }
                return Finish(path, file, options, clock.Elapsed, firstHolder);
            }
        }
        finally
        {
            if (reported)
                options.Reporter.Progress(new ProgressUpdate(activityId, $"Waiting for lock {path}", "acquired", Completed: true));
        }
    }

    static FileLock Finish(string path, LockFileHandle file, LockOptions options, TimeSpan waited, LockHolder? waitedFor)
    {
        var held = new FileLock(path, file, options.Shared, waited, waitedFor);
        if (options.RecordHolder && !options.Shared) held.RecordHolder(options.Purpose, options.RecordCommandLine);
        return held;
    }

    static SafeDeployException FlockFailed(string path, int errno) => new("LockFailed", ErrorKind.ResourceUnavailable, path,
        $"flock on '{path}' failed with errno {errno}.", "The filesystem may not support flock; see Test-LockSupport.");

    /// <summary>Releases the lock (the file stays).</summary>
    public void Dispose()
    {
        var h = Interlocked.Exchange(ref handle, null);
        if (h is null) return;
        Native.Flock(h, Native.LOCK_UN);
        h.Dispose();
    }
}
