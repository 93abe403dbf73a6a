using System.Diagnostics;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Microsoft.Win32.SafeHandles;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Locking;

/// <summary>How to take a lock.</summary>
public sealed record LockOptions
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
    /// <summary>What the lock is for, shown to waiters.</summary>
    public string? Purpose { get; init; }
    public IOperationReporter Reporter { get; init; } = NullReporter.Instance;
}

/// <summary>
/// A flock(2) lock on a file: the one lock type of SafeDeploy. It is released by Dispose or, whatever happens,
/// by the kernel when the process dies; there is never anything stale to break, and the lock file is never deleted.
/// Compatible with flock(1) and with .NET's FileShare.None, which take the same kind of lock.
/// </summary>
public sealed class FileLock : IDisposable
{
    internal const string RecordMarker = "{\"safedeployLockHolder\"";

    SafeFileHandle? handle;

    FileLock(string path, SafeFileHandle handle, bool shared, TimeSpan waited, LockHolder? waitedFor)
    {
        Path = path;
        this.handle = handle;
        Shared = shared;
        WaitTime = waited;
        WaitedFor = waitedFor;
    }

    public string Path { get; }
    public bool Shared { get; }
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
        while (true)
        {
            var fd = OpenLockFile(path, options);
            int rc = Native.Flock(fd, (options.Shared ? Native.LOCK_SH : Native.LOCK_EX) | Native.LOCK_NB);
            if (rc == Native.EWOULDBLOCK) { fd.Dispose(); return null; }
            if (rc != 0) { fd.Dispose(); throw FlockFailed(path, rc); }
            if (options.VerifyPathIdentity && !StillNamesPath(fd, path)) { fd.Dispose(); continue; }
            return Finish(path, fd, options, TimeSpan.Zero, null);
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
        try
        {
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var fd = OpenLockFile(path, options);
                int op = options.Shared ? Native.LOCK_SH : Native.LOCK_EX;
                int rc = Native.Flock(fd, op | Native.LOCK_NB);
                if (rc == Native.EWOULDBLOCK)
                {
                    firstHolder ??= LockInspector.Inspect(path);
                    reported = true;
                    rc = WaitBlocking(path, fd, op, options, clock, activityId, ref firstHolder, cancellationToken);
                }
                if (rc != 0) { fd.Dispose(); throw FlockFailed(path, rc); }
                if (options.VerifyPathIdentity && !StillNamesPath(fd, path))
                {
                    fd.Dispose();
                    continue;
                }
                return Finish(path, fd, options, clock.Elapsed, firstHolder);
            }
        }
        finally
        {
            if (reported)
                options.Reporter.Progress(new ProgressUpdate(activityId, $"Waiting for lock {path}", "acquired", Completed: true));
        }
    }

    /// <summary>
    /// Compiles what a waiter runs the moment the lock comes, so that the first run's compilation does not sit between
    /// the release and the waiter's return. Call it from a background task while waiting.
    /// </summary>
    public static void PrepareWakeUp()
    {
        foreach (var method in WakeUpPath.Value) RuntimeHelpers.PrepareMethod(method.MethodHandle);
    }

    static readonly Lazy<MethodBase[]> WakeUpPath = new(() =>
    [
        typeof(FileLock).GetMethod(nameof(Finish), BindingFlags.NonPublic | BindingFlags.Static)!,
        typeof(FileLock).GetConstructors(BindingFlags.NonPublic | BindingFlags.Instance).Single(),
        typeof(FileLock).GetMethod(nameof(Dispose))!,
        typeof(FileLock).GetProperty(nameof(WaitTime))!.GetMethod!,
        typeof(FileLock).GetProperty(nameof(WaitedFor))!.GetMethod!,
        typeof(LockOptions).GetProperty(nameof(LockOptions.VerifyPathIdentity))!.GetMethod!,
        typeof(LockOptions).GetProperty(nameof(LockOptions.RecordHolder))!.GetMethod!,
        typeof(LockOptions).GetProperty(nameof(LockOptions.Timeout))!.GetMethod!,
    ]);

    // A wait shorter than this shows no progress at all (no flicker on a terminal for a quick hand-off); a longer one
    // shows "waiting for <holder>" from then on, which also runs the progress path once before the lock comes.
    static readonly TimeSpan FirstProgressAfter = TimeSpan.FromMilliseconds(200);
    static readonly TimeSpan ProgressEvery = TimeSpan.FromSeconds(1);

    // Blocks in flock(2) on a dedicated thread so that the kernel wakes us the instant the holder lets go. A timeout or
    // cancellation abandons that thread: it keeps the descriptor, and releases and closes it if the lock ever comes.
    static int WaitBlocking(string path, SafeFileHandle fd, int op, LockOptions options, Stopwatch clock, int activityId,
        ref LockHolder? holder, CancellationToken cancellationToken)
    {
        var gate = new object();
        bool abandoned = false;
        int result = -1;
        // No spinning: the lock is known to be held, and on a busy machine a spin (sched_yield) takes the core that the
        // holder, or this process's own wake-up work, needs.
        using var done = new ManualResetEventSlim(false, spinCount: 0);
        var waiter = new Thread(() =>
        {
            int rc = Native.Flock(fd, op);
            lock (gate)
            {
                if (abandoned) { fd.Dispose(); return; }
                result = rc;
            }
            try { done.Set(); } catch (ObjectDisposedException) { }
        }) { IsBackground = true, Name = "SafeDeploy lock waiter" };
        waiter.Start();

        options.Reporter.Verbose($"Waiting for lock '{path}', held by {holder?.Describe() ?? "another process"}.");
        var lastReport = TimeSpan.Zero;
        while (true)
        {
            var step = lastReport == TimeSpan.Zero ? FirstProgressAfter : ProgressEvery;
            var remaining = options.Timeout is { } t ? t - clock.Elapsed : step;
            var slice = remaining < step ? remaining : step;
            bool signalled = slice > TimeSpan.Zero && WaitOne(done, slice, cancellationToken);
            if (signalled) return result;

            bool cancelled = cancellationToken.IsCancellationRequested;
            bool timedOut = options.Timeout is { } limit && clock.Elapsed >= limit;
            if (cancelled || timedOut)
            {
                lock (gate)
                {
                    if (result != -1) return result;
                    abandoned = true;
                }
                if (cancelled) throw new OperationCanceledException(cancellationToken);
                var now = LockInspector.Inspect(path);
                throw new SafeDeployException("LockTimeout", ErrorKind.ResourceBusy, path,
                    $"Timed out after {options.Timeout!.Value.TotalSeconds:0.###} s waiting for lock '{path}', held by {(now.IsHeld ? now.Describe() : holder?.Describe() ?? "another process")}.",
                    "Wait for that process to finish, or raise -TimeoutSec. SafeDeploy never breaks a lock that a live process holds; it is released the moment its holder exits.");
            }
            if (lastReport == TimeSpan.Zero || clock.Elapsed - lastReport >= ProgressEvery)
            {
                lastReport = clock.Elapsed;
                var current = LockInspector.Inspect(path);
                if (current.IsHeld) holder = current;
                options.Reporter.Progress(new ProgressUpdate(activityId, $"Waiting for lock {path}",
                    $"waiting for {(holder?.Describe() ?? "another process")} ({clock.Elapsed.TotalSeconds:0} s)"));
            }
        }
    }

    static bool WaitOne(ManualResetEventSlim done, TimeSpan slice, CancellationToken token)
    {
        try { return done.Wait(slice, token); }
        catch (OperationCanceledException) { return done.IsSet; }
    }

    static FileLock Finish(string path, SafeFileHandle fd, LockOptions options, TimeSpan waited, LockHolder? waitedFor)
    {
        var held = new FileLock(path, fd, options.Shared, waited, waitedFor);
        if (options.RecordHolder && !options.Shared) held.RecordHolder(options.Purpose);
        return held;
    }

    void RecordHolder(string? purpose)
    {
        var fd = Handle;
        var head = new byte[RecordMarker.Length];
        int n = RandomAccess.Read(fd, head, 0);
        bool ours = n == 0 || Encoding.UTF8.GetString(head, 0, n) == RecordMarker;
        if (!ours) return; // a file with other content: never overwrite it
        var me = ProcessInfo.Current;
        var record = new LockHolderRecord(1, me.Pid, ProcessInfo.HostName, me.StartTime, ProcessInfo.BootId,
            me.CommandLine, DateTimeOffset.UtcNow, purpose);
        var bytes = JsonSerializer.SerializeToUtf8Bytes(record, LockJson.Default.LockHolderRecord);
        try
        {
            RandomAccess.Write(fd, bytes, 0);
            Native.Truncate(fd, bytes.Length);
        }
        catch (IOException) { } // a read-only lock file still locks; the record is a courtesy
        catch (UnauthorizedAccessException) { }
    }

    static SafeFileHandle OpenLockFile(string path, LockOptions options)
    {
        int create = options.Create ? Native.O_CREAT : 0;
        try { return Native.Open(path, Native.O_RDWR | Native.O_NOCTTY | create, 0x1A4); }
        catch (IOException e) when (e.HResult == Native.EACCES || e.HResult == 21 /* EISDIR */ || e.HResult == 30 /* EROFS */)
        {
            try { return Native.Open(path, Native.O_RDONLY | Native.O_NOCTTY); }
            catch (IOException inner) { throw OpenFailed(path, inner); }
        }
        catch (IOException e) { throw OpenFailed(path, e); }
    }

    static SafeDeployException OpenFailed(string path, IOException e) => e.HResult switch
    {
        Native.ENOENT or Native.ENOTDIR => new SafeDeployException("LockPathNotFound", ErrorKind.ObjectNotFound, path,
            $"Cannot open lock file '{path}': {e.Message}", "Create the directory that holds the lock file, or use a named lock (-Name), which lives in the state directory.", e),
        Native.EACCES or Native.EPERM => new SafeDeployException("LockAccessDenied", ErrorKind.PermissionDenied, path,
            $"Cannot open lock file '{path}': {e.Message}", "Run as a user who may read that file, or choose a lock file you own.", e),
        _ => new SafeDeployException("LockOpenFailed", ErrorKind.ResourceUnavailable, path, $"Cannot open lock file '{path}': {e.Message}", null, e),
    };

    static SafeDeployException FlockFailed(string path, int errno) => new("LockFailed", ErrorKind.ResourceUnavailable, path,
        $"flock on '{path}' failed with errno {errno}.", "The filesystem may not support flock; see Test-LockSupport.");

    static bool StillNamesPath(SafeFileHandle fd, string path)
    {
        var mine = Native.Fstat(fd);
        var now = Native.Stat(path);
        return now is not null && now.Inode == mine.Inode && now.DevMajor == mine.DevMajor && now.DevMinor == mine.DevMinor;
    }

    /// <summary>Releases the lock (the file stays).</summary>
    public void Dispose()
    {
        var h = Interlocked.Exchange(ref handle, null);
        if (h is null) return;
        Native.Flock(h, Native.LOCK_UN);
        h.Dispose();
    }
}
