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
    public static string Host => Path.Combine(Root, "src", "SafeDeploy.Host", "bin", "Release", "net10.0", "safedeploy");

    static string FindRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "SafeDeploy.psd1"))) return d.FullName;
        throw new InvalidOperationException("run from the checkout");
    }
}
