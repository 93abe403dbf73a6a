using System.Diagnostics;
using System.Globalization;
using SafeDeploy.Tests.Infrastructure;

namespace SafeDeploy.Tests.Faults;

/// <summary>One I/O call under the prefix that faultinject counted (and possibly failed).</summary>
public sealed record FaultCall(long Point, int Index, string Syscall, string Path, bool Injected);

/// <summary>The calls seen after one marker: the fault point it set and every counted call up to the next marker.</summary>
public sealed record FaultSegment(long Point, bool Sticky, IReadOnlyList<FaultCall> Calls)
{
    public FaultCall? Injected => Calls.FirstOrDefault(c => c.Injected);
}

/// <summary>What a program run under faultinject did: its outcome and the calls of each marker segment, in order.</summary>
public sealed record FaultRun(ProcessOutcome Outcome, IReadOnlyList<FaultSegment> Segments, string Log);

/// <summary>
/// Syscall-level fault injection for tests (issue 17): a small ptrace + seccomp helper (faultinject.c, built here with
/// gcc once per test run) that fails exactly one chosen I/O call — write, fsync, fdatasync, rename*, mkdir*, chmod*,
/// open*, unlink*, read, ftruncate, fchown ... — counted across all threads and child processes, on paths under a
/// prefix only. The program under test picks each fault point itself by touching a marker path (see <see cref="Marker"/>),
/// so ONE process can sweep many points: touch the marker for point N in a fresh directory, do the operation, repeat.
/// Point 0 only counts, which is how a sweep learns how many calls an operation makes.
/// </summary>
public static class FaultInjector
{
    public const int EIO = 5, ENOSPC = 28;
    static readonly Lazy<string> binary = new(Build);

    /// <summary>The compiled helper (usage: faultinject --prefix DIR [--errno N] [--log FILE] -- PROGRAM ARGS...).</summary>
    public static string Binary => binary.Value;

    /// <summary>
    /// A marker path in <paramref name="dir"/> (which must be under the run's prefix): touching it (File.Exists is enough)
    /// resets the count and fails the <paramref name="point"/>-th counted call after it (0: count only); with
    /// <paramref name="sticky"/> every later call fails too (a disk that stays bad). A marker is never created.
    /// </summary>
    public static string Marker(string dir, long point, bool sticky = false) =>
        System.IO.Path.Combine(dir, $".faultpoint-{point}{(sticky ? "-sticky" : "")}");

    /// <summary>PowerShell for the host: touches the marker (no file is created).</summary>
    public static string MarkerScript(string dir, long point, bool sticky = false) =>
        $"$null = [IO.File]::Exists('{Marker(dir, point, sticky)}'); ";

    /// <summary>Runs `safedeploy -Command script` under the injector; calls under <paramref name="prefix"/> are counted.</summary>
    public static FaultRun RunHost(string prefix, string script, int errno = EIO, TimeSpan? timeout = null,
        IReadOnlyDictionary<string, string?>? env = null) =>
        Run(prefix, RepoPaths.HostExecutable, ["-Command", script], errno, timeout, env);

    /// <summary>Runs any program under the injector.</summary>
    public static FaultRun Run(string prefix, string program, IEnumerable<string> args, int errno = EIO, TimeSpan? timeout = null,
        IReadOnlyDictionary<string, string?>? env = null)
    {
        var log = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"sdt-faultlog-{Guid.NewGuid():N}.log");
        try
        {
            string[] all = ["--prefix", prefix, "--errno", errno.ToString(CultureInfo.InvariantCulture), "--log", log, "--", program, .. args];
            using var p = HostProcess.StartProgram(Binary, all, env);
            var outcome = p.Wait(timeout ?? TimeSpan.FromMinutes(3));
            var text = File.Exists(log) ? File.ReadAllText(log) : "";
            return new FaultRun(outcome, Parse(text), text);
        }
        finally { File.Delete(log); }
    }

    static List<FaultSegment> Parse(string log)
    {
        var segments = new List<FaultSegment>();
        List<FaultCall>? calls = null;
        long point = 0;
        bool sticky = false;
        void Close() { if (calls is not null) segments.Add(new FaultSegment(point, sticky, calls)); }
        foreach (var line in log.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (line.StartsWith("# marker ", StringComparison.Ordinal))
            {
                Close();
                var f = line.Split(' ');
                point = long.Parse(f[2], CultureInfo.InvariantCulture);
                sticky = f[3] == "1";
                calls = [];
                continue;
            }
            if (line.StartsWith('#') || calls is null) continue;
            var parts = line.Split(' ');
            calls.Add(new FaultCall(long.Parse(parts[0], CultureInfo.InvariantCulture), int.Parse(parts[1], CultureInfo.InvariantCulture),
                parts[2], string.Join(' ', parts[3..^1]), parts[^1] == "1"));
        }
        Close();
        return segments;
    }

    static string Build()
    {
        var source = System.IO.Path.Combine(RepoPaths.Root, "tests", "SafeDeploy.Tests", "Faults", "faultinject.c");
        var dir = Directory.CreateTempSubdirectory("sdt-faultinject-").FullName;
        var output = System.IO.Path.Combine(dir, "faultinject");
        using var gcc = Process.Start(new ProcessStartInfo("gcc", ["-O2", "-Wall", "-Werror", "-o", output, source])
            { RedirectStandardError = true, RedirectStandardOutput = true })!;
        var err = gcc.StandardError.ReadToEnd();
        if (!gcc.WaitForExit(120_000)) { gcc.Kill(); throw new TimeoutException("gcc did not finish building faultinject"); }
        if (gcc.ExitCode != 0) throw new InvalidOperationException("gcc failed to build faultinject: " + err);
        return output;
    }
}
