using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace SafeDeploy.Bench;

/// <summary>One benchmark area; found by reflection, so adding one needs no registration.</summary>
public interface IBenchmark
{
    /// <summary>Short name: the command-line argument and the results file name (bench/results/NAME.md).</summary>
    string Name { get; }
    void Run(Report report);
}

/// <summary>Collects the figures of one benchmark and writes them, with the machine and date, to its results file.</summary>
public sealed class Report(string name)
{
    readonly StringBuilder body = new();

    public void Heading(string text) => body.Append("\n## ").AppendLine(text).AppendLine();
    public void Line(string text) { body.AppendLine(text); Console.WriteLine(text); }
    public void Table(string[] header, IEnumerable<string[]> rows)
    {
        Line("| " + string.Join(" | ", header) + " |");
        Line("|" + string.Concat(header.Select(_ => "---|")));
        foreach (var r in rows) Line("| " + string.Join(" | ", r) + " |");
        Line("");
    }

    public string Write()
    {
        var dir = Path.Combine(Paths.Root, "bench", "results");
        Directory.CreateDirectory(dir);
        var file = Path.Combine(dir, name + ".md");
        var head = $"# Benchmark: {name}\n\n- date: {DateTimeOffset.UtcNow:yyyy-MM-dd HH:mm} UTC\n- machine: {Environment.ProcessorCount} cores, {Machine.CpuModel()}, {Machine.MemoryGiB()} GiB, {Environment.OSVersion}, .NET {Environment.Version}\n- command: `dotnet run -c Release --project bench/SafeDeploy.Bench -- {name}`\n";
        File.WriteAllText(file, head + body);
        return file;
    }
}

public static class Stats
{
    public static double Median(IEnumerable<double> values)
    {
        var v = values.OrderBy(x => x).ToArray();
        return v.Length == 0 ? double.NaN : v.Length % 2 == 1 ? v[v.Length / 2] : (v[v.Length / 2 - 1] + v[v.Length / 2]) / 2;
    }

    public static string Ms(double ms) => ms.ToString(ms < 10 ? "0.000" : "0.0", CultureInfo.InvariantCulture) + " ms";

    public static TimeSpan Time(Action a) { var c = Stopwatch.StartNew(); a(); return c.Elapsed; }
}

public static class Machine
{
    public static string CpuModel() =>
        File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name"))?.Split(':', 2)[1].Trim() ?? "unknown CPU";

    public static long MemoryGiB() =>
        long.Parse(File.ReadLines("/proc/meminfo").First().Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024 / 1024;
}

public static class Paths
{
    public static readonly string Root = FindRoot();
    /// <summary>The host's build output: PowerShell is JIT-compiled at every start.</summary>
    public static string Host => Path.Combine(Root, "src", "SafeDeploy.Host", "bin", "Release", "net10.0", "safedeploy");

    /// <summary>
    /// The host as README.md tells cron lines and batch jobs to run it: published with ReadyToRun into out/safedeploy
    /// (once per benchmark run; it finds this checkout's module). SAFEDEPLOY_BENCH_HOST=build uses <see cref="Host"/>.
    /// </summary>
    public static string FastHost => Environment.GetEnvironmentVariable("SAFEDEPLOY_BENCH_HOST") == "build"
        ? Host
        : PublishReadyToRunHost(out var log) ?? throw new InvalidOperationException("dotnet publish of the host failed: " + log);

    public static string FastHostKind => Environment.GetEnvironmentVariable("SAFEDEPLOY_BENCH_HOST") == "build"
        ? "build output (src/SafeDeploy.Host/bin/Release; SAFEDEPLOY_BENCH_HOST=build)"
        : "ReadyToRun publish (out/safedeploy, README.md's 'A faster host')";

    static string? publishedHost;

    /// <summary>Publishes the host with ReadyToRun into out/safedeploy (the README's fast-host command), once per run.</summary>
    public static string? PublishReadyToRunHost(out string log)
    {
        log = "";
        if (publishedHost is not null) return publishedHost;
        var dir = Path.Combine(Root, "out", "safedeploy");
        var psi = new ProcessStartInfo("dotnet", ["publish", Path.Combine(Root, "src", "SafeDeploy.Host"), "-c", "Release", "-r", "linux-x64",
            "-p:PublishReadyToRun=true", "--self-contained", "false", "-o", dir, "--nologo", "-v", "q"]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        log = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        log += err.Result;
        var exe = Path.Combine(dir, "safedeploy");
        return publishedHost = p.ExitCode == 0 && File.Exists(exe) ? exe : null;
    }

    static string FindRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "SafeDeploy.psd1"))) return d.FullName;
        throw new InvalidOperationException("run from the checkout");
    }
}
