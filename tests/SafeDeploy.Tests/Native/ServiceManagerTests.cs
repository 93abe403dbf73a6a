using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Platform;
using SafeDeploy.Engine.Services;
using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.NativeShim;

public class ServiceManagerTests
{
    [Fact]
    public async Task ProcessManager_StartsDetached_WithThePreloadOfTheSandbox_AndStopConfirmsItGone()
    {
        using var box = new ShimSandbox();
        box.InstallLibrary(ShimFixtures.Good);
        var manager = box.Manager();

        var start = await manager.StartAsync(NullReporter.Instance, default);
        int pid = box.Track(start.Pid);
        Assert.False(start.WasRunning);
        Assert.True(ProcessLiveness.IsAlive(pid));
        Assert.Equal(pid, SessionOf(pid)); // its own session: it survives the deployer and its terminal
        // No descriptor of the deployer (its pipes) stays open in the service: only stdio (log, /dev/null) and its own socket.
        var fds = Directory.GetFiles($"/proc/{pid}/fd").Select(f => new FileInfo(f).LinkTarget ?? "").ToList();
        Assert.DoesNotContain(fds, t => t.StartsWith("pipe:"));
        Assert.Contains(fds, t => t == box.LogFile);
        Assert.Equal(pid, (await manager.GetStatusAsync(default)).Pid);

        var health = await HealthProbe.RunAsync(new HealthProbeOptions { Url = box.HealthUrl, BodyPattern = "shim=1", Timeout = TimeSpan.FromSeconds(10) });
        Assert.True(health.Healthy, health.Describe());
        Assert.True(LoadedLibraries.Check(pid, box.Library).Loaded);

        var again = await manager.StartAsync(NullReporter.Instance, default);
        Assert.True(again.WasRunning);
        Assert.Equal(pid, again.Pid);

        var stop = await manager.StopAsync(NullReporter.Instance, default);
        Assert.True(stop.WasRunning);
        Assert.False(stop.Escalated);
        Assert.False(ProcessLiveness.IsAlive(pid));
        Assert.False((await manager.GetStatusAsync(default)).Running);
        Assert.False((await manager.StopAsync(NullReporter.Instance, default)).WasRunning);
    }

    [Fact]
    public async Task ProcessManager_StopThatHangs_IsEscalatedToSigkill()
    {
        using var box = new ShimSandbox();
        var manager = box.Manager(ignoreTerm: true, stopTimeout: TimeSpan.FromMilliseconds(500), usePreload: false);
        int pid = box.Track((await manager.StartAsync(NullReporter.Instance, default)).Pid);
        var warnings = new RecordingReporter();
        var stop = await manager.StopAsync(warnings, default);
        Assert.True(stop.Escalated);
        Assert.False(ProcessLiveness.IsAlive(pid));
        Assert.Contains(warnings.Warnings, w => w.Contains("SIGKILL"));
    }

    [Fact]
    public async Task ProcessManager_AServiceThatDiesAtOnce_IsAStartFailure()
    {
        using var box = new ShimSandbox();
        var manager = new ProcessServiceManager(new ProcessServiceOptions
        {
            Command = ["/bin/sh", "-c", "echo cannot bind >&2; exit 3"], PidFile = box.PidFile, LogFile = box.LogFile,
        });
        var e = await Assert.ThrowsAsync<SafeDeployException>(() => manager.StartAsync(NullReporter.Instance, default));
        Assert.Equal("ServiceStartFailed", e.ErrorId);
        Assert.Contains("cannot bind", e.Message);
    }

    [Fact]
    public async Task ProcessManager_APidFileNamingAnotherProgram_IsNotTheService()
    {
        using var box = new ShimSandbox();
        Directory.CreateDirectory(Path.GetDirectoryName(box.PidFile)!);
        File.WriteAllText(box.PidFile, Environment.ProcessId + "\n"); // a reused pid: alive, but not our service
        var manager = box.Manager();
        Assert.False((await manager.GetStatusAsync(default)).Running);
        Assert.False((await manager.StopAsync(NullReporter.Instance, default)).WasRunning);
    }

    [Fact]
    public async Task LoadedCheck_TellsTheMappedFileFromAReplacedCopy()
    {
        using var box = new ShimSandbox();
        box.InstallLibrary(ShimFixtures.Good);
        int pid = box.Track((await box.Manager().StartAsync(NullReporter.Instance, default)).Pid);
        Assert.True(LoadedLibraries.Check(pid, box.Library).Loaded);

        // Replace the file by rename (as an install does): the service still maps the old, now deleted, inode.
        File.Copy(ShimFixtures.GoodV2, box.Library + ".new");
        File.Move(box.Library + ".new", box.Library, overwrite: true);
        var after = LoadedLibraries.Check(pid, box.Library);
        Assert.False(after.Loaded);
        Assert.True(after.MapsDeletedCopy);
        Assert.False(LoadedLibraries.Check(Environment.ProcessId, box.Library).Loaded);
    }

    [Fact]
    public async Task Health_ReportsStatusBodyMismatchAndRefusedConnections_AfterRetrying()
    {
        using var box = new ShimSandbox();
        box.InstallLibrary(ShimFixtures.Unhealthy);
        var refused = await HealthProbe.RunAsync(new HealthProbeOptions { Url = box.HealthUrl, Timeout = TimeSpan.FromMilliseconds(600), Interval = TimeSpan.FromMilliseconds(100) });
        Assert.False(refused.Healthy);
        Assert.True(refused.Attempts > 1);
        Assert.Null(refused.LastStatus);

        box.Track((await box.Manager().StartAsync(NullReporter.Instance, default)).Pid);
        var unhealthy = await HealthProbe.RunAsync(new HealthProbeOptions { Url = box.HealthUrl, Timeout = TimeSpan.FromMilliseconds(600), Interval = TimeSpan.FromMilliseconds(100) });
        Assert.False(unhealthy.Healthy);
        Assert.Equal(503, unhealthy.LastStatus);
        Assert.Contains("uname failed", unhealthy.LastError);

        var mismatch = await HealthProbe.RunAsync(new HealthProbeOptions { Url = box.HealthUrl, ExpectStatus = 503, BodyPattern = "shim=1\\b", Timeout = TimeSpan.FromMilliseconds(300) });
        Assert.False(mismatch.Healthy);
        Assert.Contains("does not match", mismatch.LastError);

        var command = await HealthProbe.RunAsync(new HealthProbeOptions { Command = ["/bin/sh", "-c", "exit 0"] });
        Assert.True(command.Healthy);
        var failing = await HealthProbe.RunAsync(new HealthProbeOptions { Command = ["/bin/sh", "-c", "exit 4"], Timeout = TimeSpan.FromMilliseconds(200) });
        Assert.False(failing.Healthy);
        Assert.Contains("exited with 4", failing.LastError);
    }

    [Fact]
    public async Task CommandManager_ConfirmsThroughStatus_AndEscalatesAHangingStop()
    {
        using var dir = new TempDir("svc");
        var state = dir["running"];
        string[] Sh(string s) => ["/bin/sh", "-c", s];
        var manager = new CommandServiceManager(new CommandServiceOptions
        {
            Start = Sh($"touch '{state}'"), Stop = Sh("sleep 5"), Status = Sh($"test -f '{state}'"), Kill = Sh($"rm -f '{state}'"),
            StopTimeout = TimeSpan.FromMilliseconds(400),
        });
        Assert.False((await manager.StartAsync(NullReporter.Instance, default)).WasRunning);
        Assert.True(File.Exists(state));
        var stop = await manager.StopAsync(NullReporter.Instance, default);
        Assert.True(stop.Escalated);
        Assert.False(File.Exists(state));

        var noKill = new CommandServiceManager(new CommandServiceOptions
        {
            Start = Sh($"touch '{state}'"), Stop = Sh("true"), Status = Sh($"test -f '{state}'"), StopTimeout = TimeSpan.FromMilliseconds(300),
        });
        await noKill.StartAsync(NullReporter.Instance, default);
        var e = await Assert.ThrowsAsync<SafeDeployException>(() => noKill.StopAsync(NullReporter.Instance, default));
        Assert.Equal("ServiceStopFailed", e.ErrorId);
        Assert.Equal(ErrorKind.OperationTimeout, e.Kind);
    }

    [Fact]
    public void Systemd_BuildsSystemctlArgumentLists()
    {
        var m = new SystemdServiceManager(new SystemdServiceOptions { Unit = "model-server.service", StopTimeout = TimeSpan.FromSeconds(7) });
        Assert.Equal(["stop", "model-server.service"], m.StopCommand().Arguments);
        Assert.Equal(TimeSpan.FromSeconds(7), m.StopCommand().Timeout);
        Assert.Equal(["start", "model-server.service"], m.StartCommand().Arguments);
        Assert.Equal(["is-active", "--quiet", "model-server.service"], m.IsActiveCommand().Arguments);
        Assert.Equal(["kill", "--signal=SIGKILL", "model-server.service"], m.KillCommand().Arguments);
        Assert.Equal(["show", "--property=MainPID", "--value", "model-server.service"], m.MainPidCommand().Arguments);
        Assert.Equal("systemctl", m.StopCommand().Program);
        var user = new SystemdServiceManager(new SystemdServiceOptions { Unit = "x.service", User = true });
        Assert.Equal(["--user", "stop", "x.service"], user.StopCommand().Arguments);
    }

    [Fact]
    public async Task Systemd_AStopThatHangs_IsEscalatedToSystemctlKill_AgainstAStandInSystemctl()
    {
        // A stand-in systemctl (never the real one: tests touch no real unit) whose stop hangs and whose kill works.
        using var dir = new TempDir("systemd");
        var state = dir["active"];
        var calls = dir["calls"];
        File.WriteAllText(state, "");
        var fake = dir.Write("systemctl", $"""
            #!/bin/sh
            echo "$*" >> '{calls}'
            case "$1" in
              is-active) test -f '{state}' ;;
              show) echo 4242 ;;
              stop) sleep 5 ;;
              kill) rm -f '{state}' ;;
              start) touch '{state}' ;;
            esac
            """);
        File.SetUnixFileMode(fake, (UnixFileMode)0x1ED);
        var m = new SystemdServiceManager(new SystemdServiceOptions { Unit = "sample.service", Systemctl = fake, StopTimeout = TimeSpan.FromMilliseconds(400) });
        var stop = await m.StopAsync(NullReporter.Instance, default);
        Assert.True(stop.WasRunning);
        Assert.True(stop.Escalated);
        Assert.Equal(4242, stop.Pid);
        var start = await m.StartAsync(NullReporter.Instance, default);
        Assert.False(start.WasRunning);
        var log = File.ReadAllLines(calls);
        Assert.Contains("stop sample.service", log);
        Assert.Contains("kill --signal=SIGKILL sample.service", log);
        Assert.Contains("start sample.service", log);
    }

    static void AsNobody(params string[] command) =>
        Programs.Run("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "--", .. command]);

    /// <summary>Another instance of the same service program, started by someone else (not through SafeDeploy's launcher).</summary>
    static System.Diagnostics.Process Victim(ShimSandbox box) =>
        System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo(ShimFixtures.Service, [ShimSandbox.FreePort().ToString()]) { RedirectStandardOutput = true })!;

    [Fact]
    public async Task ProcessManager_APidFileSomeoneElseWrote_NeverGetsAnotherProcessKilled()
    {
        using var box = new ShimSandbox();
        using var victim = Victim(box);
        box.Track(victim.Id);
        try
        {
            // A root-owned pid file naming a process of the very same program that SafeDeploy did not start (a stale file,
            // or one edited by hand): its pid is no proof, so stop leaves it alone.
            Directory.CreateDirectory(Path.GetDirectoryName(box.PidFile)!);
            File.WriteAllText(box.PidFile, victim.Id + "\n");
            var manager = box.Manager(usePreload: false);
            Assert.False((await manager.GetStatusAsync(default)).Running);
            Assert.False((await manager.StopAsync(NullReporter.Instance, default)).WasRunning);
            Assert.True(ProcessLiveness.IsAlive(victim.Id));

            // Another user's pid file in a directory they own: refused outright.
            File.Delete(box.PidFile);
            Programs.Run("chown", ["65534:65534", Path.GetDirectoryName(box.PidFile)!]);
            AsNobody("sh", "-c", $"echo {victim.Id} > '{box.PidFile}'");
            var e = await Assert.ThrowsAsync<SafeDeployException>(() => manager.StopAsync(NullReporter.Instance, default));
            Assert.Equal("UntrustedFile", e.ErrorId);
            Assert.True(ProcessLiveness.IsAlive(victim.Id));
        }
        finally { victim.Kill(); victim.WaitForExit(10_000); }
    }

    [Fact]
    public async Task ProcessManager_LinksPlantedAtThePidFile_AreNeverWrittenThrough()
    {
        using var box = new ShimSandbox();
        using var outside = new TempDir("victim");
        var victim = outside.Write("shadow", "root:$6$secret:19000::::::\n");
        var before = File.ReadAllBytes(victim);
        var run = Path.GetDirectoryName(box.PidFile)!;
        Directory.CreateDirectory(run);
        Programs.Run("chown", ["65534:65534", run]); // a run directory another user can write (a shared service account's)
        AsNobody("ln", "-s", victim, box.PidFile + ".tmp"); // where the old launcher's `echo $$ >` wrote
        AsNobody("ln", "-s", victim, box.PidFile);
        var manager = box.Manager(usePreload: false);
        var refused = await Assert.ThrowsAsync<SafeDeployException>(() => manager.StartAsync(NullReporter.Instance, default));
        Assert.Equal("SymlinkRefused", refused.ErrorId);
        Assert.Equal(box.PidFile, refused.Target);
        Assert.Equal(before, File.ReadAllBytes(victim));

        File.Delete(box.PidFile); // the admin removes the planted pid file link; the .tmp one stays
        var start = await manager.StartAsync(NullReporter.Instance, default);
        int pid = box.Track(start.Pid);
        Assert.Equal(before, File.ReadAllBytes(victim));
        var st = Native.Stat(box.PidFile, followSymlinks: false)!;
        Assert.True(st.IsRegularFile);
        Assert.Equal(0u, st.Uid);
        Assert.Equal(pid + "\n", File.ReadAllText(box.PidFile));
        Assert.Equal(pid, (await manager.GetStatusAsync(default)).Pid);
        Assert.True((await manager.StopAsync(NullReporter.Instance, default)).WasRunning);
        Assert.Equal(before, File.ReadAllBytes(victim));
    }

    [Fact]
    public async Task ProcessManager_AFifoAtThePidFile_IsRefused_WithoutHanging()
    {
        using var box = new ShimSandbox();
        Directory.CreateDirectory(Path.GetDirectoryName(box.PidFile)!);
        Programs.Run("mkfifo", [box.PidFile]);
        var manager = box.Manager(usePreload: false);
        var e = await Assert.ThrowsAsync<SafeDeployException>(() => manager.GetStatusAsync(default).WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.Equal("NotARegularFile", e.ErrorId);
        Assert.Equal(box.PidFile, e.Target);
    }

    [Fact]
    public async Task ProcessManager_TheServiceGetsTheDefaultEnvironment_NotTheDeployersSecrets()
    {
        using var box = new ShimSandbox();
        using var scope = new EnvScope(("HF_TOKEN", "hf_service_must_not_see"), ("SSH_AUTH_SOCK", "/tmp/agent.sock"));
        var manager = box.Manager(usePreload: false);
        int pid = box.Track((await manager.StartAsync(NullReporter.Instance, default)).Pid);
        var environ = File.ReadAllText($"/proc/{pid}/environ").Split('\0', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains("PATH=" + ProcessEnvironment.DefaultPath, environ);
        Assert.DoesNotContain(environ, v => v.StartsWith("HF_TOKEN=") || v.StartsWith("SSH_AUTH_SOCK="));
        await manager.StopAsync(NullReporter.Instance, default);
    }

    [Fact]
    public void ProcessServicePhase_GetsTheSpecsVariables_AndACallersSecretOnlyWhenInheritedByName()
    {
        using var box = new ShimSandbox();
        using var scope = new EnvScope(("SSH_AUTH_SOCK", "/tmp/ssh-svc-test/agent.1"), ("HF_TOKEN", "hf_service_must_not_see"));
        var sleep = new[] { "/usr/bin/sleep", "/bin/sleep" }.First(File.Exists);
        var manifest = Path.Combine(box.Path, "deploy.yaml");
        File.WriteAllText(manifest, $$"""
            name: svcenv
            variables: { greeting: hello }
            environment: { TOP_VAR: top }
            phases:
              - name: plain
                service: { action: start, manager: process, command: [{{sleep}}, "600"], pidFile: /run/plain.pid,
                           environment: { SPEC_VAR: "${greeting}" } }
              - name: asked
                dependsOn: [plain]
                service: { action: start, manager: process, command: [{{sleep}}, "601"], pidFile: /run/asked.pid,
                           environment: { SPEC_VAR: asked }, inheritEnvironment: [SSH_AUTH_SOCK] }
            """);
        using var ps = new PsSession();
        var r = ps.Run("Invoke-SafeDeploy -Manifest $m -Root $root -StateDirectory $state",
            ("m", manifest), ("root", box.Root), ("state", Path.Combine(box.Path, "state")));
        Dictionary<string, string> EnvironOf(string pidFile)
        {
            int pid = box.Track(int.Parse(File.ReadAllText(box[pidFile]).Trim()));
            return File.ReadAllText($"/proc/{pid}/environ").Split('\0', StringSplitOptions.RemoveEmptyEntries)
                .Select(v => v.Split('=', 2)).ToDictionary(p => p[0], p => p[1]);
        }
        foreach (var f in new[] { "/run/plain.pid", "/run/asked.pid" }.Where(f => File.Exists(box[f]))) EnvironOf(f); // tracked for cleanup
        Assert.True(r.Output.Count == 1 && r.Status(0) == "Succeeded", r.Describe());

        var plain = EnvironOf("/run/plain.pid");
        Assert.Equal("hello", plain["SPEC_VAR"]);
        Assert.Equal("top", plain["TOP_VAR"]);
        Assert.Equal(ProcessEnvironment.DefaultPath, plain["PATH"]);
        Assert.Equal("plain", plain["SAFEDEPLOY_PHASE"]);
        Assert.DoesNotContain("SSH_AUTH_SOCK", plain.Keys);
        Assert.DoesNotContain("HF_TOKEN", plain.Keys);

        var asked = EnvironOf("/run/asked.pid");
        Assert.Equal("asked", asked["SPEC_VAR"]);
        Assert.Equal("/tmp/ssh-svc-test/agent.1", asked["SSH_AUTH_SOCK"]);
        Assert.DoesNotContain("HF_TOKEN", asked.Keys);
    }

    [Fact]
    public void SystemdServicePhase_WithEnvironmentKeys_IsAManifestError()
    {
        using var dir = new TempDir("svcenv");
        var manifest = dir.Write("deploy.yaml", """
            name: bad
            phases:
              - name: svc
                service: { action: start, manager: systemd, unit: x.service, environment: { A: b } }
              - name: svc2
                service: { action: start, manager: process, command: [/bin/true], pidFile: /run/x.pid, inheritEnvironment: maybe }
            """);
        using var ps = new PsSession();
        var r = ps.Run("Test-SafeDeployManifest $m", ("m", manifest));
        var problems = r.Output.Select(o => o.ToString()!).ToList();
        Assert.Contains(problems, p => p.Contains("deploy.yaml:4:") && p.Contains("'environment' does not apply to the systemd manager"));
        Assert.Contains(problems, p => p.Contains("deploy.yaml:6:") && p.Contains("'inheritEnvironment' must be true, false, or a list"));
    }

    static int SessionOf(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return int.Parse(fields[3]); // state ppid pgrp session
    }
}

sealed class RecordingReporter : IOperationReporter
{
    public List<string> Warnings { get; } = new();
    public List<string> Messages { get; } = new();
    public void Verbose(string message) { lock (Messages) Messages.Add(message); }
    public void Warning(string message) { lock (Warnings) Warnings.Add(message); }
    public void Progress(ProgressUpdate update) { }
}
