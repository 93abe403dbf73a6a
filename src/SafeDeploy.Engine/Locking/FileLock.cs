using System.Diagnostics;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Microsoft.Win32.SafeHandles;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Files;
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

/// <summary>
/// A flock(2) lock on a file: the one lock type of SafeDeploy. It is released by Dispose or, whatever happens,
/// by the kernel when the process dies; there is never anything stale to break, and the lock file is never deleted.
/// Compatible with flock(1) and with .NET's FileShare.None, which take the same kind of lock.
/// </summary>
internal sealed class FileLock : IDisposable
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

    static FileLock Finish(string path, LockFileHandle file, LockOptions options, TimeSpan waited, LockHolder? waitedFor)
    {
        var held = new FileLock(path, file, options.Shared, waited, waitedFor);
        if (options.RecordHolder && !options.Shared) held.RecordHolder(options.Purpose, options.RecordCommandLine);
        return held;
    }

    void RecordHolder(string? purpose, bool withCommandLine)
    {
        if (!mayRecord) return; // a lock file someone else made (or linked elsewhere) is locked, never written
        var fd = Handle;
        var head = new byte[RecordMarker.Length];
        int n = RandomAccess.Read(fd, head, 0);
        bool ours = n == 0 || Encoding.UTF8.GetString(head, 0, n) == RecordMarker;
        if (!ours) return; // a file with other content: never overwrite it
        var me = ProcessInfo.Current;
        var record = new LockHolderRecord(1, me.Pid, ProcessInfo.HostName, me.StartTime, ProcessInfo.BootId,
            withCommandLine ? me.CommandLine : "", DateTimeOffset.UtcNow, purpose);
        var bytes = JsonSerializer.SerializeToUtf8Bytes(record, LockJson.Default.LockHolderRecord);
        try
        {
            RandomAccess.Write(fd, bytes, 0);
            Native.Truncate(fd, bytes.Length, Path); // only the record we own is shortened, never someone's file
        }
        catch (IOException) { } // a read-only lock file still locks; the record is a courtesy
        catch (UnauthorizedAccessException) { }
    }

    /// <summary>The opened lock file: the descriptor, whether this call created it, and whether a holder record may go into it.</summary>
    readonly record struct LockFileHandle(SafeFileHandle Fd, bool Created, bool MayRecord);

    // Opened through SafePath: the last component is never followed, a FIFO or device is refused, a new file is 0600
    // and never truncated. A record is written only into a file we created, or own with no other name (nlink 1).
    static LockFileHandle OpenLockFile(string path, LockOptions options)
    {
        try
        {
            string name = System.IO.Path.GetFileName(path);
            using var opened = options.Directory is null ? SafePath.OpenParent(path, out name) : null;
            var dir = opened ?? options.Directory!;
            SafeFileHandle? fd;
            bool created;
            bool writable = true;
            try { fd = dir.TryOpenHere(name, SafeOpen.ReadWrite | (options.Create ? SafeOpen.Create : 0), options.CreateMode, out created); }
            catch (SafeDeployException e) when (e.ErrorId == "AccessDenied")
            {
                // A lock file we may only read (or on a read-only filesystem) still locks.
                writable = false;
                fd = dir.TryOpenHere(name, SafeOpen.Read, 0, out created);
            }
            if (fd is null)
                throw new SafeDeployException("LockPathNotFound", ErrorKind.ObjectNotFound, path, $"There is no lock file '{path}'.",
                    "Check the path, or let the lock be created (a named lock, -Name, lives in the state directory).");
            var st = Native.Fstat(fd);
            bool mine = st.Uid == Native.GetEffectiveUserId() && st.Nlink == 1;
            return new LockFileHandle(fd, created, writable && (created || mine));
        }
        catch (SafeDeployException e) when (e.ErrorId == "DirectoryNotFound")
        {
            throw new SafeDeployException("LockPathNotFound", ErrorKind.ObjectNotFound, path, $"Cannot open lock file '{path}': {e.Message}",
                "Create the directory that holds the lock file, or use a named lock (-Name), which lives in the state directory.", e);
        }
        catch (SafeDeployException e) when (e.ErrorId == "AccessDenied")
        {
            throw new SafeDeployException("LockAccessDenied", ErrorKind.PermissionDenied, path, $"Cannot open lock file '{path}': {e.Message}",
                "Run as a user who may read that file, or choose a lock file you own.", e);
        }
    }

    static SafeDeployException FlockFailed(string path, int errno) => new("LockFailed", ErrorKind.ResourceUnavailable, path,
        $"flock on '{path}' failed with errno {errno}.", "The filesystem may not support flock; see Test-LockSupport.");

    /// <summary>
    /// The file locked was no longer the one the path names (replaced while we waited): that happens once or twice when
    /// editors rename over it, never a hundred times running, unless someone keeps swapping the path (or a directory on it).
    /// </summary>
    static void CheckSwaps(string path, int swaps)
    {
        if (swaps >= 100)
            throw new SafeDeployException("LockPathUnstable", ErrorKind.ResourceBusy, path,
                $"The lock file '{path}' was replaced {swaps} times while SafeDeploy took its lock: something keeps swapping it or a directory on its path.",
                "Find what keeps replacing it (a directory another user can write, a racing script), stop it, then run again.");
    }

    static bool StillNamesPath(SafeFileHandle fd, string path, LockOptions options)
    {
        // Followed like the open was (a trusted link in the last place leads to the file we locked); in a given directory, by name.
        var now = options.Directory is { } dir ? Native.StatAt(dir.Handle, System.IO.Path.GetFileName(path), followSymlinks: false) : Native.Stat(path);
        return now is not null && now.SameFileAs(Native.Fstat(fd));
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
