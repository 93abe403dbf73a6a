using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using SafeDeploy.Tests.Fleet;

namespace SafeDeploy.Bench;

/// <summary>
/// The same change (copy a library, add its ld.so.preload line, run a command) to the same 8 loopback sshd hosts in
/// waves of 1, 50%, 100%: SafeDeploy (journal, rollback, staging by hash) against ansible-playbook (no facts, pipelining),
/// alternating, median of 3, each timed from process start to exit.
/// </summary>
public sealed partial class FleetBench : IBenchmark
{
    public string Name => "fleet";
    const int Runs = 3, HostCount = 8;

    public void Run(Report report)
    {
        using var fleet = new SshFleet(HostCount, firstAddress: 40);
        var dir = fleet.Dir.Path;
        var host = Paths.FastHost;
        // The hosts get what the README gives hosts without pwsh: the package's one file, with its native step beside it.
        var packaged = Path.Combine(Paths.Root, "out", "safedeploy", "linux-x64", "safedeploy");
        if (!File.Exists(packaged) || !File.Exists(packaged + "-step"))
            throw new InvalidOperationException($"No package at {packaged} (with safedeploy-step beside it): run `pwsh build.ps1 -Task Package -Runtime linux-x64` first.");
        Build(dir);
        File.WriteAllText(Path.Combine(dir, "deploy.yaml"), """
            name: benchshim
            phases:
              - name: lib
                install: { source: libbench.so, target: /opt/bench/lib/libbench.so, mode: "0644" }
              - name: preload
                dependsOn: [lib]
                preload: { library: /opt/bench/lib/libbench.so, file: /etc/ld.so.preload }
              - name: use
                dependsOn: [preload]
                run: cat "$SAFEDEPLOY_ROOT/etc/ld.so.preload"
            """);
        var inventory = fleet.Inventory();
        WriteAnsible(fleet, dir);
        var sd = new List<double>();
        var ans = new List<double>();
        var remote = new List<double>();
        var engine = new List<double>();
        var before = new List<double>();
        var waveTimes = new List<double>[3] { new(), new(), new() };
        var after = new List<double>();
        (double Total, List<(long At, string Line)> Lines) SafeDeploy() => RunTimed(host, ["-Verbose", "-Command",
            $"Invoke-SafeDeploy -Manifest '{dir}/deploy.yaml' -Inventory '{inventory}' -StateDirectory '{dir}/controller' -BatchSize 1,50%,100% -ThrottleLimit 8 -HostExecutable '{packaged}' -Confirm:$false | Out-Null"]);
        string Ansible() => Run("ansible-playbook", ["-i", Path.Combine(dir, "inventory.ini"), Path.Combine(dir, "play.yml")],
            new() { ["ANSIBLE_CONFIG"] = Path.Combine(dir, "ansible.cfg"), ["ANSIBLE_HOME"] = Path.Combine(dir, "ansible-home") }, out _);

        var load = File.ReadAllText("/proc/loadavg").Split(' ')[..3];
        Reset(fleet);
        var cold = SafeDeploy().Total; // uploads the runtime to every host
        Reset(fleet);
        var ansibleCold = Stats.Time(() => Ansible()).TotalMilliseconds;
        // The waves of 1, 50%, 100% over 8 hosts in inventory order: h1; h2-h5; h6-h8.
        int WaveOf(int host) => host == 1 ? 0 : host <= 5 ? 1 : 2;
        for (int i = 0; i < Runs; i++)
        {
            Reset(fleet);
            var (total, lines) = SafeDeploy();
            sd.Add(total);
            var ends = new long[3];
            long first = long.MaxValue;
            foreach (var (at, line) in lines)
            {
                if (FirstCallLine().Match(line) is { Success: true } f) first = Math.Min(first, at - long.Parse(f.Groups[1].Value, CultureInfo.InvariantCulture));
                if (RemoteLine().Match(line) is { Success: true } m)
                {
                    remote.Add(double.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture));
                    engine.Add(double.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture));
                    var w = WaveOf(int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture));
                    ends[w] = Math.Max(ends[w], at);
                }
            }
            // For a closer look: the last run's verbose lines, each with its time since the controller started.
            if (Environment.GetEnvironmentVariable("SAFEDEPLOY_BENCH_LINES") is { Length: > 0 } keep)
                File.WriteAllLines(keep, lines.Select(l => $"{l.At,6} {l.Line}"));
            before.Add(first);
            waveTimes[0].Add(ends[0] - first);
            waveTimes[1].Add(ends[1] - ends[0]);
            waveTimes[2].Add(ends[2] - ends[1]);
            after.Add(total - ends[2]);
            Reset(fleet);
            ans.Add(Stats.Time(() => Ansible()).TotalMilliseconds);
        }
        var loadAfter = File.ReadAllText("/proc/loadavg").Split(' ')[..3];
        var sshConnect = Enumerable.Range(0, 5).Select(i => Stats.Time(() => Run("ssh", SshArgs(fleet, fleet.Hosts[i % HostCount], "true"), null, out _)).TotalMilliseconds).ToList();
        var startup = Enumerable.Range(0, 3).Select(i => Stats.Time(() => Run(host, ["-Command", "1"], null, out _)).TotalMilliseconds).ToList();

        report.Heading($"{HostCount} hosts, waves of 1, 50%, 100% (1 + 4 + 3 hosts), median of {Runs}");
        report.Line($"Load average before: {string.Join(" ", load)}; after: {string.Join(" ", loadAfter)} ({Environment.ProcessorCount} cores, shared).");
        report.Line($"SafeDeploy: the ReadyToRun safedeploy host as controller; on each host the package's one-file safedeploy and its native safedeploy-step (uploaded once per version, hash-checked), which runs the step; ansible-core {AnsibleVersion()}.");
        report.Line("");
        double s = Stats.Median(sd), a = Stats.Median(ans);
        report.Table(["Tool", "Median", "Runs", "First run"],
        [
            ["SafeDeploy (Invoke-SafeDeploy -Inventory)", Stats.Ms(s), string.Join(", ", sd.Select(Stats.Ms)), Stats.Ms(cold) + " (uploads module + host)"],
            ["ansible-playbook (no facts, pipelining)", Stats.Ms(a), string.Join(", ", ans.Select(Stats.Ms)), Stats.Ms(ansibleCold)],
        ]);
        report.Line($"Speed-up: {a / s:0.00}x (goal: 3x).");
        report.Heading("Where SafeDeploy's time goes (medians of the timed runs)");
        report.Table(["Part", "Median"],
        [
            ["controller, until the canary starts (start-up, Import-Module, inventory, journal, bundles' sums)", Stats.Ms(Stats.Median(before))],
            ["  of which the host process's start-up (`safedeploy -Command 1` alone)", Stats.Ms(Stats.Median(startup))],
            ["wave 1, the canary (1 host: connection, probe and deployment in one ssh call)", Stats.Ms(Stats.Median(waveTimes[0]))],
            ["wave 2 (4 hosts at once)", Stats.Ms(Stats.Median(waveTimes[1]))],
            ["wave 3 (3 hosts at once)", Stats.Ms(Stats.Median(waveTimes[2]))],
            ["controller after the last host (journal end, exit)", Stats.Ms(Stats.Median(after))],
            ["per host: its ssh call (probe + the native step, over the shared connection)", Stats.Ms(Stats.Median(remote))],
            ["per host: the deployment itself (journal, 3 phases)", Stats.Ms(Stats.Median(engine))],
            ["per host: the rest (ssh session, probe, the step's start)", Stats.Ms(Stats.Median(remote.Zip(engine, (r, e) => r - e)))],
            ["a fresh ssh connection (`ssh host true`, for comparison)", Stats.Ms(Stats.Median(sshConnect))],
        ]);
    }

    [GeneratedRegex(@"^VERBOSE: Host 'h\d+': (?:staged|found staged, and deployed in the same ssh call,) in (\d+) ms")] private static partial Regex FirstCallLine();
    [GeneratedRegex(@"^VERBOSE: Host 'h(\d+)': Succeeded.*remote run (\d+) ms(?: \([^)]*\))?, of which the deployment (\d+) ms")] private static partial Regex RemoteLine();

    static void Reset(SshFleet fleet)
    {
        foreach (var h in fleet.Hosts)
        {
            var opt = Path.Combine(h.Root, "opt");
            if (Directory.Exists(opt)) Directory.Delete(opt, true);
            Directory.CreateDirectory(Path.Combine(h.Root, "etc"));
            File.Delete(Path.Combine(h.Root, "etc", "ld.so.preload"));
        }
    }

    static void Build(string dir)
    {
        File.WriteAllText(Path.Combine(dir, "bench.c"), "int bench_shim_version(void) { return 1; }\n");
        Run("gcc", ["-shared", "-fPIC", "-o", Path.Combine(dir, "libbench.so"), Path.Combine(dir, "bench.c")], null, out _);
    }

    static void WriteAnsible(SshFleet fleet, string dir)
    {
        var ssh = $"-o UserKnownHostsFile={fleet.KnownHosts} -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes";
        File.WriteAllText(Path.Combine(dir, "inventory.ini"), "[fleet]\n" + string.Concat(fleet.Hosts.Select(h =>
            $"{h.Name} ansible_host={h.Address} ansible_port={h.Port} root={h.Root}\n")) + $"""
            [fleet:vars]
            ansible_user={Environment.UserName}
            ansible_ssh_private_key_file={fleet.ClientKey}
            ansible_ssh_common_args='{ssh}'
            ansible_python_interpreter=/usr/bin/python3

            """);
        File.WriteAllText(Path.Combine(dir, "ansible.cfg"), $"""
            [defaults]
            gathering = explicit
            forks = 8
            local_tmp = {dir}/ansible-local
            retry_files_enabled = False
            [ssh_connection]
            pipelining = True
            control_path_dir = {dir}/cp

            """);
        File.WriteAllText(Path.Combine(dir, "play.yml"), $$$"""
            - hosts: fleet
              gather_facts: false
              serial: [1, "50%", "100%"]
              tasks:
                - name: library folder
                  file: { path: "{{ root }}/opt/bench/lib", state: directory, mode: "0755" }
                - name: copy the library
                  copy: { src: "{{{dir}}}/libbench.so", dest: "{{ root }}/opt/bench/lib/libbench.so", mode: "0644" }
                - name: preload it
                  lineinfile: { path: "{{ root }}/etc/ld.so.preload", line: /opt/bench/lib/libbench.so, create: true }
                - name: run a command
                  command: cat {{ root }}/etc/ld.so.preload

            """);
    }

    static IEnumerable<string> SshArgs(SshFleet fleet, TestHost h, string command) =>
        ["-o", "BatchMode=yes", "-o", $"UserKnownHostsFile={fleet.KnownHosts}", "-o", "StrictHostKeyChecking=yes", "-i", fleet.ClientKey,
         "-p", h.Port.ToString(CultureInfo.InvariantCulture), $"{Environment.UserName}@{h.Address}", command];

    /// <summary>Runs a command to its end; its time from start to exit, and each line of its standard error with the time it came.</summary>
    static (double Total, List<(long At, string Line)> Lines) RunTimed(string program, IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo(program, args) { RedirectStandardOutput = true, RedirectStandardError = true };
        var lines = new List<(long, string)>();
        var clock = Stopwatch.StartNew();
        using var p = Process.Start(psi)!;
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (lines) lines.Add((clock.ElapsedMilliseconds, e.Data)); };
        p.BeginErrorReadLine();
        var output = p.StandardOutput.ReadToEndAsync();
        if (!p.WaitForExit(600_000)) { p.Kill(true); throw new TimeoutException(program + " did not finish in 10 minutes"); }
        var total = clock.Elapsed.TotalMilliseconds;
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{program} exited with {p.ExitCode}:\n{output.Result}\n{string.Join("\n", lines.Select(l => l.Item2))}");
        lock (lines) return (total, lines.ToList());
    }

    static string AnsibleVersion() => Run("ansible-playbook", ["--version"], null, out _).Split('\n')[0];

    static string Run(string program, IEnumerable<string> args, Dictionary<string, string>? env, out string stderr)
    {
        var psi = new ProcessStartInfo(program, args) { RedirectStandardOutput = true, RedirectStandardError = true };
        if (env is not null) foreach (var (k, v) in env) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var output = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(600_000)) { p.Kill(true); throw new TimeoutException(program + " did not finish in 10 minutes"); }
        stderr = err.GetAwaiter().GetResult();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{program} exited with {p.ExitCode}:\n{output}\n{stderr}");
        return output;
    }
}
