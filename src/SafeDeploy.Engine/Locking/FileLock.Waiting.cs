using System.Diagnostics;
using System.Reflection;
using System.Runtime.CompilerServices;
using Microsoft.Win32.SafeHandles;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Locking;

// Waiting for a lock someone holds: flock(2) blocking on its own thread, so the kernel hands the lock over the moment it is
// released, with progress, -TimeoutSec and Ctrl+C on the caller's thread; and the wake-up path compiled while waiting.
internal sealed partial class FileLock
{
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
}
