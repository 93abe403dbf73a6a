using System.Diagnostics;
using System.Globalization;
using SafeDeploy.Engine.Files;
using SafeDeploy.Engine.Locking;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Bench;

/// <summary>
/// The foundation's figures (issue 3): lock acquire+release uncontended, handoff latency to a process already waiting,
/// Edit-LockedFile edits per second with 8 processes, and the host's cold start — each beside flock(1) where it applies.
/// </summary>
public sealed class FoundationBench : IBenchmark
{
    public string Name => "foundation";

    const int Runs = 5;
    static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public void Run(Report report)
    {
        var work = Directory.CreateTempSubdirectory("sd-bench-foundation-").FullName;
        try
        {
            report.Line($"- load average at start: {LoadAverage()} (other work shares these {Environment.ProcessorCount} cores; " +
                        "CPU time, where given, is steadier than wall time under such load)");
            report.Line($"- this process's nice value: {Nice()} (children inherit it; a negative value shields the figures from the neighbours' load)");
            report.Line($"- lock files in `{work}` on {Sh("stat", "-f", "-c", "%T", work).Trim()}; host: `{Paths.Host}` (Release build)");
            report.Line($"- flock(1): {Sh("flock", "--version").Trim()}");
            // FOUNDATION_BENCH_ONLY=2,4 runs only those sections (while working on one); a full run writes them all.
            var only = Environment.GetEnvironmentVariable("FOUNDATION_BENCH_ONLY")?.Split(',');
            bool Want(string section) => only is null || only.Contains(section);
            if (Want("1")) Uncontended(report, work);
            if (Want("2")) Handoff(report, work);
            if (Want("3")) EditSwarm(report, work);
            if (Want("4")) ColdStart(report, work);
            report.Line($"\n- load average at end: {LoadAverage()}");
        }
        finally { Directory.Delete(work, recursive: true); }
    }

    // ---- 1. acquire + release, nobody else around -------------------------------------------------------------------

    static void Uncontended(Report report, string work)
    {
        report.Heading("1. Lock acquire + release, uncontended");
        var path = Path.Combine(work, "uncontended.lock");
        const int n = 2000, shellN = 200;
        var rows = new List<string[]>();

        rows.Add(Row("kernel floor: flock(2) LOCK_EX + LOCK_UN on one open fd", $"{n} x {Runs}", PerOp(n, () =>
        {
            using var fd = Native.Open(path, Native.O_RDWR | Native.O_CREAT);
            var c = Stopwatch.StartNew();
            for (int i = 0; i < n; i++) { Native.Flock(fd, Native.LOCK_EX); Native.Flock(fd, Native.LOCK_UN); }
            return c.Elapsed;
        })));
        rows.Add(Row("engine `FileLock.Acquire` + `Dispose` (open, flock, write holder record, unlock, close)", $"{n} x {Runs}", PerOp(n, () =>
        {
            var c = Stopwatch.StartNew();
            for (int i = 0; i < n; i++) FileLock.Acquire(path).Dispose();
            return c.Elapsed;
        })));
        rows.Add(Row("engine `FileLock.Acquire` + `Dispose`, `RecordHolder = false`", $"{n} x {Runs}", PerOp(n, () =>
        {
            var options = new LockOptions { RecordHolder = false };
            var c = Stopwatch.StartNew();
            for (int i = 0; i < n; i++) FileLock.Acquire(path, options).Dispose();
            return c.Elapsed;
        })));
        rows.Add(Row("`flock FILE true` in a bash loop (starts flock and true: two process starts per operation)", $"{shellN} x {Runs}",
            PerOp(shellN, () => Bash($"for ((i=0;i<{shellN};i++)); do flock {Q(path)} true; done"))));
        rows.Add(Row("`exec {fd}>FILE; flock $fd; flock -u $fd` in one bash (no open per operation, still two starts of flock(1))", $"{shellN} x {Runs}",
            PerOp(shellN, () => Bash($"exec {{fd}}>{Q(path)}; for ((i=0;i<{shellN};i++)); do flock $fd; flock -u $fd; done"))));
        report.Table(["what", "iterations", "median per acquire+release", "min of runs"], rows);
        report.Line("flock(1) has no in-shell form: every `flock` in a script is a fork+exec of /usr/bin/flock, which is what a shell " +
                    "script pays per lock operation. The engine figure includes opening and closing the lock file and writing the " +
                    "holder record (pid, start time, boot id, command line) that `Get-LockHolder` shows to waiters.");

        static string[] Row(string what, string iterations, (double Median, double Min) r) => [what, iterations, Stats.Ms(r.Median), Stats.Ms(r.Min)];
    }

    static (double Median, double Min) PerOp(int n, Func<TimeSpan> run)
    {
        run(); // warm-up (JIT, page cache)
        var perOp = Enumerable.Range(0, Runs).Select(_ => run().TotalMilliseconds / n).ToList();
        return (Stats.Median(perOp), perOp.Min());
    }

    // ---- 2. handoff to a process already blocked in flock -----------------------------------------------------------

    static void Handoff(Report report, string work)
    {
        report.Heading("2. Handoff latency to a process already waiting (target: median <= 2 ms)");
        var lockPath = Path.Combine(work, "handoff.lock");
        var warmPath = Path.Combine(work, "warm.lock");
        File.WriteAllText(lockPath, "");
        const int n = 25, hostN = 21;
        var self = Environment.ProcessPath ?? throw new InvalidOperationException("no process path");
        var rows = new List<string[]>();

        var engine = HandoffSeries(lockPath, n, monotonic: true, () => (self, [LockWaiterArg, lockPath, warmPath]));
        rows.Add(Row("engine-only helper process (`FileLock.Acquire`, then `Stopwatch.GetTimestamp()`)", engine));
        rows.Add(Row("the same, warm-up contended", HandoffSeries(lockPath, n, monotonic: true, () => (self, [LockWaiterArg, lockPath, warmPath]), warmPath)));
        var hostScript = $"$sb = {{ [Diagnostics.Stopwatch]::GetTimestamp() }}; $null = Invoke-WithLock -Path '{warmPath}' $sb; Invoke-WithLock -Path '{lockPath}' $sb";
        var host = HandoffSeries(lockPath, hostN, monotonic: true, () => (Paths.Host, ["-NoProfile", "-Command", hostScript]));
        rows.Add(Row("host (build output, JIT): `safedeploy -Command \"Invoke-WithLock -Path FILE { [Diagnostics.Stopwatch]::GetTimestamp() }\"`", host));
        rows.Add(Row("the same, warm-up contended", HandoffSeries(lockPath, hostN, monotonic: true, () => (Paths.Host, ["-NoProfile", "-Command", hostScript]), warmPath)));
        var r2r = Paths.PublishReadyToRunHost(out _);
        if (r2r is not null)
        {
            rows.Add(Row("the same through the ReadyToRun host (`out/safedeploy`, section 4)",
                HandoffSeries(lockPath, hostN, monotonic: true, () => (r2r, ["-NoProfile", "-Command", hostScript]))));
            rows.Add(Row("ReadyToRun host, warm-up contended",
                HandoffSeries(lockPath, hostN, monotonic: true, () => (r2r, ["-NoProfile", "-Command", hostScript]), warmPath)));
        }
        var flock = HandoffSeries(lockPath, n, monotonic: false, () => ("flock", [lockPath, "date", "+%s%N"]));
        rows.Add(Row("`flock FILE date +%s%N` (includes fork+exec of date after the lock is taken)", flock));
        report.Table(["waiter (a separate OS process, blocked in flock(2) before the release)", "n", "median", "min", "max"], rows);
        report.Line("Method: this process holds the lock with `FileLock`; it starts the waiter, polls /proc/locks until the waiter's " +
                    "blocked request (`->`) appears, waits 50 ms more, takes the time and releases. The waiter takes the time the moment it " +
                    "holds the lock. Engine and host waiters use `Stopwatch.GetTimestamp()` (CLOCK_MONOTONIC, the same clock in every " +
                    "process); flock(1)'s waiter uses `date +%s%N` against this process's `DateTime.UtcNow` (CLOCK_REALTIME). Both waiters " +
                    "warm up first on another lock file — uncontended, or (\"warm-up contended\") blocked on that file by this process " +
                    "and released, so that the code after a contended acquire has run once. The difference between the two shows what a " +
                    "process pays the first time it waits for a lock (code run for the first time: the wait thread, the progress record " +
                    "completing, the verbose message, PowerShell's progress path).");

        static string[] Row(string what, List<double> ms) =>
            [what, ms.Count.ToString(Inv), Stats.Ms(Stats.Median(ms)), Stats.Ms(ms.Min()), Stats.Ms(ms.Max())];
    }

    const string LockWaiterArg = "--lock-waiter";

    /// <summary>The engine-only waiter process of the handoff benchmark: warm up, wait for the lock, print when it was got.</summary>
    public static int LockWaiter(string[] args)
    {
        FileLock.Acquire(args[2]).Dispose(); // warm-up: JIT of the whole acquire path
        using var held = FileLock.Acquire(args[1]);
        long now = Stopwatch.GetTimestamp();
        Console.WriteLine(now.ToString(Inv));
        return 0;
    }

    public static bool IsLockWaiter(string[] args) => args.Length == 3 && args[0] == LockWaiterArg;

    /// <summary>
    /// Handoff times of <paramref name="n"/> fresh waiter processes. With <paramref name="contendedWarmup"/> (the waiter's warm-up
    /// lock file) this process holds that lock too and lets the waiter block on it first, so the warm-up runs the contended path.
    /// </summary>
    static List<double> HandoffSeries(string lockPath, int n, bool monotonic, Func<(string Program, string[] Args)> waiter, string? contendedWarmup = null)
    {
        var inode = Native.Stat(lockPath)!.Inode;
        var result = new List<double>();
        for (int i = 0; i < n; i++)
        {
            var held = FileLock.Acquire(lockPath, new LockOptions { RecordHolder = false });
            var warm = contendedWarmup is null ? null : FileLock.Acquire(contendedWarmup, new LockOptions { RecordHolder = false });
            var (program, args) = waiter();
            using var p = StartProcess(program, args);
            if (warm is not null)
            {
                WaitUntilBlocked(p, Native.Stat(contendedWarmup!)!.Inode);
                Thread.Sleep(20);
                warm.Dispose();
            }
            WaitUntilBlocked(p, inode);
            Thread.Sleep(50);
            long releasedMono = Stopwatch.GetTimestamp();
            long releasedReal = DateTime.UtcNow.Ticks;
            held.Dispose();
            var output = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            var line = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault();
            if (p.ExitCode != 0 || !long.TryParse(line, Inv, out var got))
                throw new InvalidOperationException($"waiter failed (exit {p.ExitCode}): {output} {p.StandardError.ReadToEnd()}");
            double ms = monotonic
                ? Stopwatch.GetElapsedTime(releasedMono, got).TotalMilliseconds
                : (got - (releasedReal - DateTime.UnixEpoch.Ticks) * 100) / 1e6;
            result.Add(ms);
        }
        return result;
    }

    static void WaitUntilBlocked(Process p, ulong inode)
    {
        var deadline = Stopwatch.StartNew();
        while (!HasBlockedWaiter(inode))
        {
            if (p.HasExited) throw new InvalidOperationException($"waiter exited early: {p.StandardError.ReadToEnd()}");
            if (deadline.Elapsed > TimeSpan.FromMinutes(1)) throw new TimeoutException("waiter never blocked");
            Thread.Sleep(1);
        }
    }

    static bool HasBlockedWaiter(ulong inode) => BlockedWaiters(inode) > 0;

    /// <summary>How many lock requests on the file with this inode are blocked (the `->` lines of /proc/locks).</summary>
    public static int BlockedWaiters(ulong inode)
    {
        var suffix = ":" + inode.ToString(Inv);
        int n = 0;
        foreach (var line in File.ReadLines("/proc/locks"))
        {
            if (!line.Contains("->")) continue;
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Any(f => f.EndsWith(suffix, StringComparison.Ordinal) && f.Count(c => c == ':') == 2)) n++;
        }
        return n;
    }

    // ---- 3. Edit-LockedFile, 8 processes on one file ----------------------------------------------------------------

    static void EditSwarm(Report report, string work)
    {
        report.Heading("3. Edit-LockedFile edits per second, 8 host processes on one file");
        const int editsEach = 50, runs = 3;
        var rows = new List<string[]>();
        var floorDir = Path.Combine(work, "floor");
        Directory.CreateDirectory(floorDir);
        var floorFile = Path.Combine(floorDir, ".npmrc");
        var writes = Enumerable.Range(0, runs).Select(r => editsEach / Stats.Time(() =>
        {
            for (int j = 1; j <= editsEach; j++) AtomicFile.WriteAllText(floorFile, $"key0={j}\n");
        }).TotalSeconds).ToList();
        var engineEdits = Enumerable.Range(0, runs).Select(r => editsEach / Stats.Time(() =>
        {
            for (int j = 1; j <= editsEach; j++) { int v = j; LockedFileEditor.Edit(floorFile, text => TextEdits.EnsureLine(text, $"key0={v}-{r}", "key0=")); }
        }).TotalSeconds).ToList();
        rows.Add(["floor: `AtomicFile.WriteAllText` in-process, no lock (temp file, fsync, rename, directory fsync)", $"{editsEach}",
            string.Join(", ", writes.Select(x => x.ToString("0", Inv))), Stats.Median(writes).ToString("0", Inv)]);
        rows.Add(["engine `LockedFileEditor.Edit` in-process (lock + the above)", $"{editsEach}",
            string.Join(", ", engineEdits.Select(x => x.ToString("0", Inv))), Stats.Median(engineEdits).ToString("0", Inv)]);
        var one = Enumerable.Range(0, runs).Select(r => EditRun(work, $"single{r}", 1, editsEach)).ToList();
        var eight = Enumerable.Range(0, runs).Select(r => EditRun(work, $"swarm{r}", 8, editsEach)).ToList();
        rows.Add(["1 host process", $"{editsEach}", string.Join(", ", one.Select(x => x.ToString("0", Inv))), Stats.Median(one).ToString("0", Inv)]);
        rows.Add(["8 host processes at once", $"8 x {editsEach}", string.Join(", ", eight.Select(x => x.ToString("0", Inv))), Stats.Median(eight).ToString("0", Inv)]);
        report.Table(["editors", "edits per run", "edits/s of each run", "median edits/s"], rows);
        report.Line("Each process runs `Edit-LockedFile -Path FILE -EnsureLine \"keyI=J\" -Key \"keyI=\"` for J = 1..50 (every edit a real " +
                    "change: lock, read, replace one line, temp file + fsync + rename). The processes start, warm up on a private file, then " +
                    "wait on a barrier file; the rate is all edits over the time from the first process's start to the last one's end " +
                    $"(host start-up not counted). The cmdlet locks twice per edit (a `-WhatIf`-style preview to decide `ShouldProcess`, then the edit). After every run the file held every key with its last value (checked). Filesystem: {Sh("stat", "-f", "-c", "%T", work).Trim()}.");
    }

    static double EditRun(string work, string tag, int processes, int editsEach)
    {
        var dir = Path.Combine(work, tag);
        Directory.CreateDirectory(dir);
        var file = Path.Combine(dir, ".npmrc");
        var go = Path.Combine(dir, "go");
        var procs = new List<Process>();
        try
        {
            for (int i = 0; i < processes; i++)
            {
                var script = $$"""
                    $null = Edit-LockedFile -Path '{{dir}}/warm{{i}}' -EnsureLine 'w=1' -Key 'w='
                    [IO.File]::WriteAllText('{{dir}}/ready{{i}}', '')
                    while (-not [IO.File]::Exists('{{go}}')) { [Threading.Thread]::Sleep(1) }
                    $t0 = [Diagnostics.Stopwatch]::GetTimestamp()
                    for ($j = 1; $j -le {{editsEach}}; $j++) { Edit-LockedFile -Path '{{file}}' -EnsureLine "key{{i}}=$j" -Key 'key{{i}}=' }
                    $t1 = [Diagnostics.Stopwatch]::GetTimestamp()
                    "$t0 $t1"
                    """;
                procs.Add(StartProcess(Paths.Host, ["-Command", script]));
            }
            var wait = Stopwatch.StartNew();
            while (Enumerable.Range(0, processes).Any(i => !File.Exists(Path.Combine(dir, $"ready{i}"))))
            {
                if (procs.Any(p => p.HasExited)) throw new InvalidOperationException("an editor exited before the barrier: " + procs.First(p => p.HasExited).StandardError.ReadToEnd());
                if (wait.Elapsed > TimeSpan.FromMinutes(3)) throw new TimeoutException("editors never got ready");
                Thread.Sleep(5);
            }
            File.WriteAllText(go, "");
            long first = long.MaxValue, last = long.MinValue;
            var errors = procs.Select(p => p.StandardError.ReadToEndAsync()).ToList();
            foreach (var (p, errTask) in procs.Zip(errors))
            {
                var output = p.StandardOutput.ReadToEnd();
                var err = errTask.Result;
                p.WaitForExit();
                var parts = output.Trim().Split(' ');
                if (p.ExitCode != 0 || parts.Length != 2) throw new InvalidOperationException($"editor failed (exit {p.ExitCode}): {output}\n{err}");
                first = Math.Min(first, long.Parse(parts[0], Inv));
                last = Math.Max(last, long.Parse(parts[1], Inv));
            }
            var lines = File.ReadAllLines(file);
            for (int i = 0; i < processes; i++)
                if (lines.Count(l => l.StartsWith($"key{i}=", StringComparison.Ordinal)) != 1 || !lines.Contains($"key{i}={editsEach}"))
                    throw new InvalidOperationException($"lost edit: key{i} wrong in\n{string.Join('\n', lines)}");
            if (lines.Length != processes) throw new InvalidOperationException($"torn file:\n{string.Join('\n', lines)}");
            return processes * editsEach / Stopwatch.GetElapsedTime(first, last).TotalSeconds;
        }
        finally
        {
            foreach (var p in procs) { try { if (!p.HasExited) p.Kill(true); } catch (InvalidOperationException) { } p.Dispose(); }
        }
    }

    // ---- 4. host cold start ------------------------------------------------------------------------------------------

    static void ColdStart(Report report, string work)
    {
        report.Heading("4. Host cold start");
        var r2r = Paths.PublishReadyToRunHost(out var publish) ?? "";
        bool haveR2r = r2r.Length > 0;
        if (!haveR2r) report.Line($"ReadyToRun publish failed:\n```\n{publish.Trim()}\n```\n");

        var none = new Dictionary<string, string>();
        var cases = new List<(string Label, string Program, string[] Args, Dictionary<string, string> Env)>
        {
            ("build output (JIT), `safedeploy -Command 1`", Paths.Host, ["-Command", "1"], none),
            ("build output (JIT), `safedeploy -NoModule -Command 1` (bare engine)", Paths.Host, ["-NoModule", "-Command", "1"], none),
            ("build output (JIT), with PowerShell telemetry on (POWERSHELL_TELEMETRY_OPTOUT=0)", Paths.Host, ["-Command", "1"], new() { ["POWERSHELL_TELEMETRY_OPTOUT"] = "0" }),
        };
        if (haveR2r)
        {
            cases.Add(("ReadyToRun publish, `safedeploy -Command 1`", r2r, ["-Command", "1"], none));
            cases.Add(("ReadyToRun publish, `-NoModule -Command 1` (bare engine)", r2r, ["-NoModule", "-Command", "1"], none));
            cases.Add(("ReadyToRun publish, with PowerShell telemetry on (POWERSHELL_TELEMETRY_OPTOUT=0; the host opts out by default)", r2r, ["-Command", "1"], new() { ["POWERSHELL_TELEMETRY_OPTOUT"] = "0" }));
            cases.Add(("ReadyToRun publish, with DOTNET_TieredPGO=0", r2r, ["-Command", "1"], new() { ["DOTNET_TieredPGO"] = "0" }));
            cases.Add(("ReadyToRun publish, with DOTNET_TieredCompilation=0", r2r, ["-Command", "1"], new() { ["DOTNET_TieredCompilation"] = "0" }));
            cases.Add(("ReadyToRun publish, with DOTNET_ReadyToRun=0 (R2R code ignored)", r2r, ["-Command", "1"], new() { ["DOTNET_ReadyToRun"] = "0" }));
        }
        const int n = 9;
        var results = cases.Select(_ => (Wall: new List<double>(), Cpu: new List<double>())).ToList();
        for (int i = 0; i < n + 1; i++) // interleaved, so that changing load hits every case alike; the first round warms the page cache
            for (int c = 0; c < cases.Count; c++)
            {
                var (wall, cpu) = TimeProcess(cases[c].Program, cases[c].Args, cases[c].Env, work);
                if (i == 0) continue;
                results[c].Wall.Add(wall);
                results[c].Cpu.Add(cpu);
            }
        report.Table(["what", "median wall", "min wall", "median CPU (user+sys)"],
            cases.Select((c, i) => new[] { c.Label, Stats.Ms(Stats.Median(results[i].Wall)), Stats.Ms(results[i].Wall.Min()), Stats.Ms(Stats.Median(results[i].Cpu)) }));
        report.Line($"Reference: a bare `pwsh -NoProfile -c 1` takes about 350 ms on these machines (issue 3; no pwsh is installed here to " +
                    $"measure beside). n = {n} each after one warm-up round, interleaved. Output is redirected, as in cron and in tests.");
        ColdStartNotes(report);
    }

    // What was tried to make the host start faster; the figures of the experiments come from a throw-away instrumented copy of the host.
    static void ColdStartNotes(Report report)
    {
        report.Line("");
        report.Line("### What was tried");
        report.Line("");
        report.Line("- **ReadyToRun publish (applied as the documented fast host).** System.Management.Automation 7.6.9 from NuGet is IL only " +
                    "(its PE header has no ReadyToRun header; pwsh's own copy is precompiled), so the build output JIT-compiles the engine at " +
                    "every start. `dotnet publish src/SafeDeploy.Host -c Release -r linux-x64 -p:PublishReadyToRun=true --self-contained false " +
                    "-o out/safedeploy` precompiles it and the other engine assemblies with crossgen2 (the packs " +
                    "microsoft.netcore.app.crossgen2.linux-x64 and microsoft.netcore.app.runtime.linux-x64 restore from NuGet here). " +
                    "This is the big win in the table above: less than half the CPU time of the build output. The published host finds the " +
                    "module by walking up to the checkout's SafeDeploy.psd1 (or through SAFEDEPLOY_MODULE).");
        report.Line("- **PowerShell telemetry (applied in the host).** Unless POWERSHELL_TELEMETRY_OPTOUT is set, the engine creates its " +
                    "Application Insights client at start (strace: reads ~/.cache/powershell/telemetry.uuid). The host now sets the opt-out " +
                    "in its own process before the engine starts, unless the user set the variable (then theirs wins); the rows with " +
                    "POWERSHELL_TELEMETRY_OPTOUT=0 show what it saves. Child processes inherit the opt-out.");
        report.Line("- **POWERSHELL_UPDATECHECK**: read only by pwsh's console host, not by System.Management.Automation (the string is not " +
                    "in the assembly) — nothing to gain in an embedded host.");
        report.Line("- **Module analysis cache**: used by command discovery over PSModulePath; the host imports SafeDeploy.psd1 by path and " +
                    "`-Command 1` discovers nothing, and strace shows no cache file read or written — nothing to gain.");
        report.Line("- **Leaner InitialSessionState**: `CreateDefault2` (the Core snap-in only) is already the lean choice. In the experiment " +
                    "(ReadyToRun, telemetry off, load 30-70, CPU medians of 11): 556 ms as is, 530 ms with `iss.Formats` cleared, 537 ms with " +
                    "`iss.Types` cleared, 506 ms with no module at all — within noise, and clearing formats or types breaks default output " +
                    "and extended members, so not applied.");
        report.Line("- **`$PSStyle.OutputRendering = 'PlainText'` through the API instead of a second pipeline**: no measurable difference; not applied.");
        report.Line("- **Tiered compilation**: DOTNET_TieredPGO=0 and DOTNET_TieredCompilation=0 are in the table (neither helps; without tiering " +
                    "every method not precompiled is jitted fully optimised); DOTNET_TC_QuickJitForLoops=0 and DOTNET_gcConcurrent=0 made no " +
                    "measurable difference in the experiment. The project keeps its settings (TieredPGO, QuickJitForLoops on).");
        report.Line("- **Where the rest goes** (perf on the ReadyToRun host): mostly the runtime's type loading (libcoreclr, ~46% of samples) and " +
                    "page faults of mapping the assemblies; JIT is ~6% (the module's own IL and generic instantiations). `runspace.Open()` " +
                    "(session state, built-in types and formats, providers, the module import) is about 60% of the wall time; the module " +
                    "import (psd1, five format files, SafeDeploy.dll and its load context) adds some 50-70 ms.");
        report.Line("- **Not tried**: Native AOT (System.Management.Automation is not trimming/AOT compatible); a self-contained composite " +
                    "image (the shared framework is already ReadyToRun); ReadyToRun for the module's own net8.0 assemblies (built by the module " +
                    "project, which loads into any PowerShell 7.4+; a small share of the time).");
    }

    static (double WallMs, double CpuMs) TimeProcess(string program, string[] args, Dictionary<string, string> env, string work)
    {
        var rusage = Path.Combine(work, "rusage");
        var psi = new ProcessStartInfo("/usr/bin/time") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in (string[])["-f", "%U %S", "-o", rusage, program, .. args]) psi.ArgumentList.Add(a);
        foreach (var (k, v) in env) psi.Environment[k] = v;
        var c = Stopwatch.StartNew();
        using var p = Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEnd();
        p.StandardError.ReadToEnd();
        p.WaitForExit();
        var wall = c.Elapsed.TotalMilliseconds;
        if (p.ExitCode != 0 || output.Trim() != "1") throw new InvalidOperationException($"{program} {string.Join(' ', args)} failed: exit {p.ExitCode}, {output}");
        var cpu = File.ReadAllText(rusage).Trim().Split(' ').Sum(s => double.Parse(s, Inv)) * 1000;
        return (wall, cpu);
    }

    // ---- helpers ------------------------------------------------------------------------------------------------------

    static Process StartProcess(string program, string[] args)
    {
        var psi = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["NO_COLOR"] = "1";
        return Process.Start(psi) ?? throw new InvalidOperationException("cannot start " + program);
    }

    static TimeSpan Bash(string script)
    {
        var c = Stopwatch.StartNew();
        using var p = StartProcess("bash", ["-c", script]);
        var err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"bash failed: {err}");
        return c.Elapsed;
    }

    static string Sh(string program, params string[] args)
    {
        using var p = StartProcess(program, args);
        var output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        p.WaitForExit();
        return output;
    }

    static string Q(string s) => "'" + s.Replace("'", "'\\''") + "'";

    static string Nice() => File.ReadAllText("/proc/self/stat").Split(')')[1].Split(' ', StringSplitOptions.RemoveEmptyEntries)[16];

    static string LoadAverage() => string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
}
