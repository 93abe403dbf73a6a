using System.Diagnostics;
using System.Globalization;

namespace SafeDeploy.Bench;

/// <summary>
/// Start-up of `safedeploy -Command 1` as the build produces it (the host the README's main job runs), the single-file
/// package, and `pwsh -NoProfile -c 1`, taken in turn (A B C A B C ...) so that a drifting machine load hits all alike.
/// </summary>
public sealed class StartupBench : IBenchmark
{
    public string Name => "startup";
    const int Rounds = 7;

    public void Run(Report report)
    {
        var pwsh = Environment.GetEnvironmentVariable("SAFEDEPLOY_PWSH") is { Length: > 0 } p ? p
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".dotnet", "tools", "pwsh");
        var single = Path.Combine(Paths.Root, "out", "safedeploy", "linux-x64", "safedeploy");
        var cases = new List<(string What, string Program, string[] Args)>
        {
            ("host, build output (`src/SafeDeploy.Host/bin/Release/net10.0/safedeploy -Command 1`, ReadyToRun)", Paths.Host, ["-Command", "1"]),
            ("host, build output, `-NoModule -Command 1` (engine alone)", Paths.Host, ["-NoModule", "-Command", "1"]),
            ("pwsh 7.6.9 (dotnet tool), `pwsh -NoProfile -c 1`", pwsh, ["-NoProfile", "-c", "1"]),
        };
        if (File.Exists(single)) cases.Add(("single file (`out/safedeploy/linux-x64/safedeploy -Command 1`, self-contained)", single, ["-Command", "1"]));
        var load = File.ReadAllText("/proc/loadavg").Split(' ')[..3];
        report.Line($"- load average before: {string.Join(' ', load)} (a shared 2-core machine: other engineers' builds and tests ran meanwhile)");
        foreach (var c in cases) TimeOnce(c.Program, c.Args); // warm the page cache and the single file's extraction
        var wall = cases.Select(_ => new List<double>()).ToList();
        var cpu = cases.Select(_ => new List<double>()).ToList();
        for (int round = 0; round < Rounds; round++)
            for (int i = 0; i < cases.Count; i++)
            {
                var (w, c) = TimeOnce(cases[i].Program, cases[i].Args);
                wall[i].Add(w); cpu[i].Add(c);
            }
        var loadAfter = File.ReadAllText("/proc/loadavg").Split(' ')[..3];
        report.Line($"- load average after: {string.Join(' ', loadAfter)}; {Rounds} rounds, the commands in turn, medians");
        report.Line("");
        int pw = cases.FindIndex(c => c.Program == pwsh);
        report.Table(["command", "wall (median)", "wall min-max", "CPU user+sys (median)", "wall / pwsh"],
            cases.Select((c, i) => new[]
            {
                c.What, Stats.Ms(Stats.Median(wall[i])), $"{Stats.Ms(wall[i].Min())} - {Stats.Ms(wall[i].Max())}", Stats.Ms(Stats.Median(cpu[i])),
                (Stats.Median(wall[i]) / Stats.Median(wall[pw])).ToString("0.00", CultureInfo.InvariantCulture),
            }));
        if (File.Exists(single)) report.Line($"- single file size: {new FileInfo(single).Length / 1024.0 / 1024.0:0.0} MiB");
    }

    static (double WallMs, double CpuMs) TimeOnce(string program, string[] args)
    {
        var rusage = Path.GetTempFileName();
        try
        {
            var psi = new ProcessStartInfo("/usr/bin/time") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in (string[])["-f", "%U %S", "-o", rusage, program, .. args]) psi.ArgumentList.Add(a);
            psi.Environment["POWERSHELL_TELEMETRY_OPTOUT"] = "1";
            psi.Environment["POWERSHELL_UPDATECHECK"] = "Off";
            var clock = Stopwatch.StartNew();
            using var p = Process.Start(psi)!;
            var output = p.StandardOutput.ReadToEnd();
            p.StandardError.ReadToEnd();
            if (!p.WaitForExit(TimeSpan.FromMinutes(2))) { p.Kill(); throw new TimeoutException(program); }
            var wall = clock.Elapsed.TotalMilliseconds;
            if (p.ExitCode != 0 || output.Trim() != "1") throw new InvalidOperationException($"{program} failed: exit {p.ExitCode}, {output}");
            var cpu = File.ReadAllText(rusage).Trim().Split(' ').Sum(s => double.Parse(s, CultureInfo.InvariantCulture)) * 1000;
            return (wall, cpu);
        }
        finally { File.Delete(rusage); }
    }
}
