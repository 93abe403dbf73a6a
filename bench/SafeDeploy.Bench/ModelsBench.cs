using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using SafeDeploy.Engine.Locking;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Bench;

/// <summary>
/// Get-ModelLocked over loopback: a 1 GiB model from a Kestrel server in this process, fetched by the safedeploy host
/// (a separate process, so its peak memory is its own) vs curl -o and curl | sha256sum; then 8 processes fetching
/// one model, timed from the file landing to the last waiter returning.
/// </summary>
public sealed class ModelsBench : IBenchmark
{
    public string Name => "models";
    const int Runs = 3;
    const int SwarmRuns = 9; // a few seconds each; the tail of one run is what varies

    public void Run(Report report)
    {
        var work = Path.Combine(Path.GetTempPath(), "sdbench-models-" + Environment.ProcessId);
        Directory.CreateDirectory(work);
        try { RunIn(work, report); }
        finally { try { Directory.Delete(work, true); } catch (IOException) { } }
    }

    static void RunIn(string work, Report report)
    {
        var big = Generate(1 << 30, 1);
        var small = Generate(64 << 20, 2);
        var served = new Dictionary<string, byte[]> { ["big.bin"] = big, ["small.bin"] = small, ["swarm.bin"] = Generate(256 << 20, 3) };
        long throttle = 0;
        using var server = StartServer(served, () => Interlocked.Read(ref throttle));
        string Url(string n) => $"{server.BaseUrl}/{n}";
        // The throughput runs fetch from a sendfile(2) server reading a file in the page cache, so that the server is
        // not the bottleneck being measured; the swarm below needs the Kestrel server's throttle.
        var bigFile = Path.Combine(work, "big.bin");
        File.WriteAllBytes(bigFile, big);
        using var fast = new SendFileServer(new() { ["big.bin"] = bigFile });
        string FastUrl(string n) => $"{fast.BaseUrl}/{n}";
        string bigSha = Hex(SHA256.HashData(big)), smallSha = Hex(SHA256.HashData(small));

        report.Line($"Load average at start: {File.ReadAllText("/proc/loadavg").Trim()} (other work on this machine makes absolute figures noisy).");
        report.Line($"safedeploy host: {Paths.FastHostKind}. Every timed run starts after a `sync`, so none pays for the previous run's dirty pages.");
        report.Heading("1 GiB over loopback (median of 3 runs)");
        var rows = new List<string[]>();
        double gib = 1 << 30;

        var sd = new List<double>();
        var sdMem = new List<long>();
        for (int i = 0; i < Runs; i++)
        {
            var cache = Path.Combine(work, "cache-" + i);
            Shell("sync");
            var (secs, hwm) = HostFetch(FastUrl("big.bin"), bigSha, cache);
            sd.Add(secs); sdMem.Add(hwm);
            Directory.Delete(cache, true);
        }
        double sdMed = Stats.Median(sd);
        rows.Add(["SafeDeploy engine (Get-ModelLocked: stream + SHA-256 + fsync + verify + rename)", $"{sdMed:0.00} s", $"{gib / sdMed / 1e9:0.00} GB/s", $"{Stats.Median(sdMem.Select(x => (double)x)) / 1024:0} MiB (host VmHWM)"]);

        double curlO = Stats.Median(Enumerable.Range(0, Runs).Select(_ => { File.Delete($"{work}/curl.bin"); Shell("sync"); return Shell($"curl -s -o {work}/curl.bin {FastUrl("big.bin")}"); }));
        rows.Add(["curl -o (no hash, no fsync)", $"{curlO:0.00} s", $"{gib / curlO / 1e9:0.00} GB/s", "-"]);
        double curlSync = Stats.Median(Enumerable.Range(0, Runs).Select(_ => { File.Delete($"{work}/curl.bin"); Shell("sync"); return Shell($"curl -s -o {work}/curl.bin {FastUrl("big.bin")} && sync {work}/curl.bin"); }));
        rows.Add(["curl -o && sync FILE (durable, no hash)", $"{curlSync:0.00} s", $"{gib / curlSync / 1e9:0.00} GB/s", "-"]);
        double curlSha = Stats.Median(Enumerable.Range(0, Runs).Select(_ => { Shell("sync"); return Shell($"curl -s {FastUrl("big.bin")} | sha256sum >/dev/null"); }));
        rows.Add(["curl | sha256sum (hash, nothing stored)", $"{curlSha:0.00} s", $"{gib / curlSha / 1e9:0.00} GB/s", "-"]);
        double floor = Stats.Median(Enumerable.Range(0, Runs).Select(_ => { File.Delete($"{work}/dd.bin"); Shell("sync"); return Shell($"dd if={bigFile} of={work}/dd.bin bs=1M conv=fsync status=none"); }));
        File.Delete($"{work}/dd.bin");
        rows.Add(["dd conv=fsync from the page cache (no network, no hash): the durable-write floor", $"{floor:0.00} s", $"{gib / floor / 1e9:0.00} GB/s", "-"]);
        report.Table(["Method", "Time", "Throughput", "Peak memory"], rows);
        report.Line($"SafeDeploy vs curl | sha256sum: {curlSha / sdMed:0.00}x the throughput (target >= 2x); vs curl -o: {curlO / sdMed:0.00}x (target >= 0.9x); vs curl -o && sync: {curlSync / sdMed:0.00}x; time over the durable-write floor: {sdMed / floor:0.00}x.");
        report.Line("");

        report.Heading("Peak memory is independent of the model size");
        var (_, idle) = HostFetch(null, null, Path.Combine(work, "idle"));
        var (_, smallHwm) = HostFetch(Url("small.bin"), smallSha, Path.Combine(work, "cache-small"));
        report.Table(["safedeploy host doing", "VmHWM"],
        [
            ["nothing (module imported, Get-ModelCache)", $"{idle / 1024} MiB"],
            ["Get-ModelLocked of 64 MiB", $"{smallHwm / 1024} MiB"],
            ["Get-ModelLocked of 1 GiB", $"{Stats.Median(sdMem.Select(x => (double)x)) / 1024:0} MiB"],
        ]);

        report.Heading("8 processes fetching one 256 MiB model: from the file landing to the last waiter returning");
        var landing = new List<double>();
        var all = new List<string[]>();
        for (int i = 0; i < SwarmRuns; i++)
        {
            Interlocked.Exchange(ref throttle, 128L << 20); // ~2 s of transfer: every waiter is queued on the lock when it lands
            var (lastMs, detail) = Swarm(8, Url("swarm.bin"), Path.Combine(work, "swarm-" + i), work);
            Interlocked.Exchange(ref throttle, 0);
            landing.Add(lastMs);
            all.Add([$"run {i + 1}", Stats.Ms(lastMs), detail]);
        }
        report.Table(["Run", "Landing -> last waiter returned", "Per waiter (ms after landing)"], all);
        report.Line($"Median of {SwarmRuns} runs: {Stats.Ms(Stats.Median(landing))} (target < 50 ms); slowest run: {Stats.Ms(landing.Max())}; " +
                    $"{landing.Count(x => x < 50)} of {SwarmRuns} runs under 50 ms. The landing is the ctime the rename gave the final file; each waiter's " +
                    "time is taken in its script right after Get-ModelLocked returned (that expression is run once before, so its own first-call cost is not counted).");

        WakeUpFloor(report, Url("swarm.bin"), Path.Combine(work, "swarm-0"));
    }

    /// <summary>
    /// Seven waiters on the cached entry's lock, released together by this process: how long until the last one has
    /// its answer, for Get-ModelLocked hosts and for the same wait done by flock(1). It shows the floor that waking seven
    /// processes on this machine sets under the swarm's figure.
    /// </summary>
    static void WakeUpFloor(Report report, string url, string cache)
    {
        report.Heading("Waking 7 waiters: from the lock's release to the last waiter's answer, against flock(1)");
        var lockPath = Directory.GetFiles(cache, ".entry.lock", SearchOption.AllDirectories).Single();
        var kinds = new (string Name, Func<ProcessStartInfo> Start, Func<string, long> UnixNs)[]
        {
            ("safedeploy host: Get-ModelLocked of the cached model", () =>
            {
                var psi = new ProcessStartInfo(Paths.FastHost);
                psi.ArgumentList.Add("-Command");
                psi.ArgumentList.Add($"$null = [DateTime]::UtcNow.Ticks; $null = Get-ModelLocked '{url}' -CacheDirectory '{cache}'; [DateTime]::UtcNow.Ticks");
                return psi;
            }, o => (long.Parse(o, CultureInfo.InvariantCulture) - DateTime.UnixEpoch.Ticks) * 100),
            ("`flock -s LOCK date +%s%N` (flock(1), then one exec)", () => new ProcessStartInfo("flock", ["-s", lockPath, "date", "+%s%N"]),
                o => long.Parse(o, CultureInfo.InvariantCulture)),
            ("`exec 9<LOCK; flock -s 9; echo $EPOCHREALTIME` (bash, flock(1), no exec after)", () =>
                new ProcessStartInfo("bash", ["-c", $"exec 9<'{lockPath}'; flock -s 9; echo \"${{EPOCHREALTIME/./}}\""]),
                o => long.Parse(o, CultureInfo.InvariantCulture) * 1000),
        };
        const int waiters = 7, runs = 9;
        var rows = new List<string[]>();
        foreach (var (name, start, unixNs) in kinds)
        {
            var last = new List<double>();
            for (int r = 0; r < runs; r++)
            {
                var held = FileLock.Acquire(lockPath);
                var procs = new List<(Process P, Task<string> Out)>();
                try
                {
                    for (int i = 0; i < waiters; i++)
                    {
                        var psi = start();
                        psi.RedirectStandardOutput = true;
                        psi.RedirectStandardError = true;
                        var p = Process.Start(psi)!;
                        _ = p.StandardError.ReadToEndAsync();
                        procs.Add((p, p.StandardOutput.ReadToEndAsync()));
                    }
                    var inode = Native.Stat(lockPath)!.Inode;
                    var deadline = Stopwatch.StartNew();
                    while (FoundationBench.BlockedWaiters(inode) < waiters)
                    {
                        if (deadline.Elapsed > TimeSpan.FromMinutes(1)) throw new TimeoutException($"{name}: the waiters never all blocked");
                        Thread.Sleep(5);
                    }
                    Thread.Sleep(1000); // as in the swarm, every waiter has waited a while when the lock comes
                }
                finally
                {
                    long released = (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) * 100;
                    held.Dispose();
                    foreach (var (p, _) in procs) { p.WaitForExit(); p.Dispose(); }
                    if (procs.Count == waiters)
                        last.Add(procs.Max(w => unixNs(w.Out.Result.Trim().Split('\n').Last().Trim()) - released) / 1e6);
                }
            }
            last.Sort();
            rows.Add([name, Stats.Ms(Stats.Median(last)), Stats.Ms(last.Max()), string.Join(", ", last.Select(x => x.ToString("0.0", CultureInfo.InvariantCulture)))]);
        }
        report.Table(["7 waiters, each", "median (9 runs)", "slowest", "all runs (ms, sorted)"], rows);
        report.Line("The release is the time this process takes just before it unlocks. Every waiter prints the wall-clock time at which it " +
                    "has its answer; for the hosts that is right after Get-ModelLocked returned the cached entry (checked, its use recorded). " +
                    "flock(1) waiters only wake: the first row's exec of `date` is what any script pays to act on the lock.");
    }

    static byte[] Generate(int length, int seed)
    {
        var b = GC.AllocateUninitializedArray<byte>(length);
        new Random(seed).NextBytes(b);
        return b;
    }

    static string Hex(byte[] h) => Convert.ToHexString(h).ToLowerInvariant();

    /// <summary>Runs the host: fetch (or, with no URL, only list an empty cache); returns the fetch's own seconds and the process's VmHWM in KiB.</summary>
    static (double Seconds, long HwmKiB) HostFetch(string? url, string? sha, string cache)
    {
        var fetch = url is null
            ? $"$null = Get-ModelCache -CacheDirectory '{cache}'"
            : $"$null = Get-ModelLocked '{url}' -Sha256 {sha} -CacheDirectory '{cache}'";
        var script = $$"""
            $sw = [Diagnostics.Stopwatch]::StartNew()
            {{fetch}}
            $t = $sw.Elapsed.TotalSeconds
            $hwm = ([IO.File]::ReadAllLines('/proc/self/status') | Where-Object { $_ -like 'VmHWM:*' }) -replace '[^0-9]', ''
            "BENCH|$t|$hwm"
            """;
        var (code, stdout) = RunHost(script);
        var line = stdout.Split('\n').FirstOrDefault(l => l.StartsWith("BENCH|")) ?? throw new InvalidOperationException($"host failed ({code}): {stdout}");
        var f = line.Trim().Split('|');
        return (double.Parse(f[1], CultureInfo.InvariantCulture), long.Parse(f[2], CultureInfo.InvariantCulture));
    }

    static (int, string) RunHost(string script)
    {
        var psi = new ProcessStartInfo(Paths.FastHost) { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add("-Command");
        psi.ArgumentList.Add(script);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, stdout + err.Result);
    }

    static double Shell(string command)
    {
        var psi = new ProcessStartInfo("bash", ["-c", "set -o pipefail; " + command]) { RedirectStandardError = true };
        var clock = Stopwatch.StartNew();
        using var p = Process.Start(psi)!;
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{command} failed: {p.StandardError.ReadToEnd()}");
        return clock.Elapsed.TotalSeconds;
    }

    /// <summary>N host processes released together; returns ms from the downloader's return to the last waiter's return.</summary>
    static (double LastMs, string Detail) Swarm(int n, string url, string cache, string work)
    {
        var barrier = Path.Combine(work, "barrier-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(barrier);
        var procs = new List<Process>();
        var outputs = new List<Task<string>>();
        for (int i = 0; i < n; i++)
        {
            var script = $$"""
                $null = [DateTime]::UtcNow.Ticks
                [IO.File]::WriteAllText('{{barrier}}/ready.{{i}}', ''); while (-not [IO.File]::Exists('{{barrier}}/go')) { [Threading.Thread]::Sleep(1) }
                $m = Get-ModelLocked '{{url}}' -CacheDirectory '{{cache}}'
                $returned = [DateTime]::UtcNow.Ticks
                "SWARM|$returned|$($m.Source)|$($m.LockWait.TotalMilliseconds)"
                """;
            var psi = new ProcessStartInfo(Paths.FastHost) { RedirectStandardOutput = true, RedirectStandardError = true };
            psi.ArgumentList.Add("-Command");
            psi.ArgumentList.Add(script);
            var p = Process.Start(psi)!;
            procs.Add(p);
            outputs.Add(p.StandardOutput.ReadToEndAsync());
            _ = p.StandardError.ReadToEndAsync(); // progress bars of a non-terminal host
        }
        while (Directory.GetFiles(barrier, "ready.*").Length < n) Thread.Sleep(5);
        File.WriteAllText(Path.Combine(barrier, "go"), "");
        foreach (var p in procs) { p.WaitForExit(); p.Dispose(); }
        var lines = outputs.Select(o => o.Result.Split('\n').Single(l => l.StartsWith("SWARM|")).Trim().Split('|')).ToList();
        var downloader = lines.Single(l => l[2] == "Downloaded");
        // The landing is the rename of the verified file into place, which sets the file's ctime (ns resolution).
        var file = Directory.GetFiles(cache, "swarm.bin", SearchOption.AllDirectories).Single();
        var stat = Process.Start(new ProcessStartInfo("stat", ["--format=%.9Z", file]) { RedirectStandardOutput = true })!;
        var ctime = decimal.Parse(stat.StandardOutput.ReadToEnd().Trim(), CultureInfo.InvariantCulture);
        stat.WaitForExit();
        long landed = DateTime.UnixEpoch.Ticks + (long)(ctime * 10_000_000m);
        var after = lines.Where(l => l != downloader).Select(l => (long.Parse(l[1], CultureInfo.InvariantCulture) - landed) / 1e4).OrderBy(x => x).ToList();
        return (after.Max(), string.Join(", ", after.Select(x => x.ToString("0.0", CultureInfo.InvariantCulture))));
    }

    sealed class Server(WebApplication app, string baseUrl) : IDisposable
    {
        public string BaseUrl { get; } = baseUrl;
        public void Dispose()
        {
            using var cts = new CancellationTokenSource(2000);
            app.StopAsync(cts.Token).GetAwaiter().GetResult();
        }
    }

    static Server StartServer(Dictionary<string, byte[]> files, Func<long> throttle)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(o => o.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        app.Run(async ctx =>
        {
            if (!files.TryGetValue(ctx.Request.Path.Value!.TrimStart('/'), out var content)) { ctx.Response.StatusCode = 404; return; }
            ctx.Response.Headers.ETag = $"\"{content.Length}\"";
            ctx.Response.Headers.AcceptRanges = "bytes";
            ctx.Response.ContentLength = content.Length;
            var clock = Stopwatch.StartNew();
            long limit = throttle();
            for (int off = 0; off < content.Length; off += 1 << 20)
            {
                int len = Math.Min(1 << 20, content.Length - off);
                await ctx.Response.Body.WriteAsync(content.AsMemory(off, len), ctx.RequestAborted);
                if (limit > 0)
                {
                    var due = TimeSpan.FromSeconds((off + len) / (double)limit) - clock.Elapsed;
                    if (due > TimeSpan.Zero) await Task.Delay(due, ctx.RequestAborted);
                }
            }
        });
        app.StartAsync().GetAwaiter().GetResult();
        var addr = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First().TrimEnd('/');
        return new Server(app, addr);
    }
}
