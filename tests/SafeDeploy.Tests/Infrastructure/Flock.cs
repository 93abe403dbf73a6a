using System.Diagnostics;
using SafeDeploy.Engine.Locking;

namespace SafeDeploy.Tests.Infrastructure;

/// <summary>The real flock(1) program holding a lock, for interoperability tests.</summary>
public sealed class FlockHolder : IDisposable
{
    readonly Process process;

    /// <summary>Runs `flock -o FILE sleep SECONDS` (flock itself holds the lock, not its child) and waits until the kernel shows it held.</summary>
    public FlockHolder(string file, double seconds)
    {
        process = Process.Start(new ProcessStartInfo("flock", ["-o", file, "sleep", seconds.ToString(System.Globalization.CultureInfo.InvariantCulture)]))!;
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!LockInspector.Inspect(file).IsHeld)
        {
            if (DateTime.UtcNow > deadline || process.HasExited) throw new InvalidOperationException("flock(1) did not take the lock");
            Thread.Sleep(5);
        }
    }

    public int Pid => process.Id;
    public bool HasExited => process.HasExited;
    public void WaitForExit() => process.WaitForExit();

    public void Dispose()
    {
        try { if (!process.HasExited) process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
        process.Dispose();
    }

    /// <summary>`flock -n -E 75 FILE true`: 75 when someone else holds the lock, 0 when it was free.</summary>
    public static int TryOnce(string file)
    {
        using var p = Process.Start(new ProcessStartInfo("flock", ["-n", "-E", "75", file, "true"]))!;
        p.WaitForExit();
        return p.ExitCode;
    }

    /// <summary>Waits (up to a generous deadline, for liveness only) until the lock is free.</summary>
    public static bool WaitUntilFree(string file, TimeSpan deadline)
    {
        var end = DateTime.UtcNow + deadline;
        while (DateTime.UtcNow < end) { if (!LockInspector.Inspect(file).IsHeld) return true; Thread.Sleep(10); }
        return false;
    }
}
