using SafeDeploy.Engine.Deployment;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Platform;
using SafeDeploy.Engine.Services;
using SafeDeploy.Engine.StateDirectories;
using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.Deployment;

public class TryModeTests
{
    const string Manifest = """
        name: trial
        phases:
          - name: conf
            editFile: { path: /etc/ld.so.preload, ensureLine: /opt/shim/libshim.so }
        """;

    static string Status(Sandbox box)
    {
        using var ps = new PsSession();
        return ps.Run("Get-SafeDeployHistory trial -StateDirectory $s", ("s", box.State)).Output[^1].Status();
    }

    [Fact]
    public void TryMode_WithoutConfirmation_TheWatchdogRollsBack_AfterTheDeployerIsGone()
    {
        using var box = new Sandbox();
        box.WriteInRoot("/etc/ld.so.preload", "/usr/lib/old.so\n");
        var before = box.Snapshot();
        var manifest = box.Write("deploy.yaml", Manifest);
        var deployer = HostProcess.Run($"Invoke-SafeDeploy '{manifest}' -Root '{box.Root}' -StateDirectory '{box.State}' -TrySeconds 2");
        Assert.True(deployer.ExitCode == 0, deployer.ToString());
        Assert.Contains("Confirm-SafeDeploy -Name trial", deployer.StdOut + deployer.StdErr);
        Assert.Equal("/usr/lib/old.so\n/opt/shim/libshim.so\n", File.ReadAllText(box.InRoot("/etc/ld.so.preload")));

        // The deployer has exited; only the detached watchdog can roll back now.
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (Status(box) != "Undone" && DateTime.UtcNow < deadline) Thread.Sleep(250);
        Assert.Equal("Undone", Status(box));
        Assert.Equal(Sandbox.Describe(before), Sandbox.Describe(box.Snapshot()));
        var log = Directory.GetFiles(Path.Combine(box.State, "state", "deployments", "trial"), "watchdog.log", SearchOption.AllDirectories);
        Assert.Contains("rolling back", File.ReadAllText(Assert.Single(log)));
    }

    [Fact]
    public void TryMode_Confirmed_IsKept_AndConfirmingTwiceSaysThereIsNothingToConfirm()
    {
        using var box = new Sandbox();
        var manifest = box.Write("deploy.yaml", Manifest);
        var deployer = HostProcess.Run($"Invoke-SafeDeploy '{manifest}' -Root '{box.Root}' -StateDirectory '{box.State}' -TrySeconds 3");
        Assert.True(deployer.ExitCode == 0, deployer.ToString());
        using var ps = new PsSession();
        var confirm = ps.Run("Confirm-SafeDeploy -Name trial -StateDirectory $s", ("s", box.State));
        Assert.True(confirm.AllErrors.Count() == 0, confirm.Describe());
        Assert.Equal(true, confirm.Prop(0, "Confirmed"));

        // Wait until the watchdog has seen the confirmation and exited (its log says so), then check nothing was undone.
        var log = Path.Combine(Path.GetDirectoryName(Directory.GetFiles(Path.Combine(box.State, "state", "deployments", "trial"), "*.journal")[0])!,
            Path.GetFileNameWithoutExtension(Directory.GetFiles(Path.Combine(box.State, "state", "deployments", "trial"), "*.journal")[0]), "watchdog.log");
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (!(File.Exists(log) && File.ReadAllText(log).Contains("confirmed")) && DateTime.UtcNow < deadline) Thread.Sleep(250);
        Assert.Contains("confirmed: nothing to roll back", File.ReadAllText(log));
        Assert.Equal("Succeeded", Status(box));
        Assert.Equal("/opt/shim/libshim.so\n", File.ReadAllText(box.InRoot("/etc/ld.so.preload")));

        var again = ps.Run("Confirm-SafeDeploy -Name trial -StateDirectory $s", ("s", box.State));
        var err = Assert.Single(again.AllErrors);
        Assert.StartsWith("NothingToConfirm", err.FullyQualifiedErrorId);
        Assert.Equal("trial", err.TargetObject);
    }

    static DeploymentStore Store(string stateBase) =>
        new(StateDirectoryManager.Initialize(StateDirectoryManager.DefaultName, basePath: stateBase));

    static WatchdogOutcome WaitOutcome(DeploymentStore store, string id, Func<WatchdogOutcome?, bool> done)
    {
        var deadline = DateTime.UtcNow.AddSeconds(120);
        WatchdogOutcome? o = null;
        while (DateTime.UtcNow < deadline && !done(o = TryMode.Outcome(store, "trial", id))) Thread.Sleep(100);
        Assert.True(done(o), $"watchdog outcome: {o}");
        return o!;
    }

    [Fact]
    public void Watchdog_PathsWithQuotes_ReachItIntact_ItRunsTheAbsoluteHost_NoProfile_WithTheDefaultEnvironment()
    {
        using var box = new Sandbox();
        // A state directory whose path holds every quote PowerShell knows: ', ", and the typographic ones (U+2018, U+2019),
        // which PowerShell also ends a single-quoted string with (doubling the ASCII quote does not escape them).
        var state = box["st'a\"te\u2019x\u2018y"];
        Directory.CreateDirectory(state);
        box.WriteInRoot("/etc/ld.so.preload", "/usr/lib/old.so\n");
        var before = box.Snapshot();
        var manifest = box.Write("deploy.yaml", Manifest);
        var deployer = HostProcess.Run("Invoke-SafeDeploy $env:M -Root $env:R -StateDirectory $env:S -TrySeconds 6",
            new Dictionary<string, string?> { ["M"] = manifest, ["R"] = box.Root, ["S"] = state, ["HF_TOKEN"] = "hf_watchdog_must_not_see", ["SSH_AUTH_SOCK"] = "/tmp/agent.sock" });
        Assert.True(deployer.ExitCode == 0, deployer.ToString());
        var store = Store(state);
        var id = store.History("trial")[^1].Id;

        var watching = WaitOutcome(store, id, o => o is { State: not WatchdogState.Watching } or { Pid: not null });
        if (watching.State == WatchdogState.Watching && watching.Pid is { } pid && ProcessLiveness.IsAlive(pid))
        {
            var argv = File.ReadAllText($"/proc/{pid}/cmdline").Split('\0');
            Assert.True(Path.IsPathRooted(argv[0]), argv[0]);
            Assert.Contains("-NoProfile", argv);
            Assert.Contains("-NonInteractive", argv);
            var environ = File.ReadAllText($"/proc/{pid}/environ").Split('\0', StringSplitOptions.RemoveEmptyEntries);
            Assert.Contains("PATH=" + ProcessEnvironment.DefaultPath, environ);
            Assert.DoesNotContain(environ, e => e.StartsWith("HF_TOKEN=") || e.StartsWith("SSH_AUTH_SOCK="));
            Assert.Contains(environ, e => e.StartsWith("SAFEDEPLOY_TRY_STATE=") && e.EndsWith(state));
        }
        var done = WaitOutcome(store, id, o => o is { State: not WatchdogState.Watching });
        var log = File.ReadAllText(Path.Combine(store.RunDirectory("trial", id), "watchdog.log"));
        Assert.True(done.State == WatchdogState.RolledBack, $"{done}\n{log}");
        Assert.Contains("rolling back", log);
        Assert.Equal(Sandbox.Describe(before), Sandbox.Describe(box.Snapshot()));
        Assert.Null(TryMode.OpenTry(store, "trial", box.Root));
    }

    [Fact]
    public void Watchdog_ThatCannotRollBack_RecordsIt_AndTheTryStaysOpenUntilConfirmedOrUndone()
    {
        using var box = new Sandbox();
        var manifest = box.Write("deploy.yaml", """
            name: trial
            phases:
              - name: step
                run: { command: "true", undo: "echo cannot undo >&2; exit 3" }
            """);
        var deployer = HostProcess.Run($"Invoke-SafeDeploy '{manifest}' -Root '{box.Root}' -StateDirectory '{box.State}' -TrySeconds 1");
        Assert.True(deployer.ExitCode == 0, deployer.ToString());
        var store = Store(box.State);
        var id = store.History("trial")[^1].Id;
        var failed = WaitOutcome(store, id, o => o is { State: not WatchdogState.Watching });
        Assert.True(failed.State == WatchdogState.RollbackFailed, failed.ToString());
        Assert.NotNull(failed.ErrorId);

        // A new deployment must not go on top: the engine asks TryMode first.
        Assert.Equal(id, TryMode.OpenTry(store, "trial", box.Root)?.Id);
        Assert.Null(TryMode.OpenTry(store, "trial", null)); // another root's history is not this one's
        var open = Assert.Throws<SafeDeployException>(() => TryMode.RefuseIfOpen(store, "trial", box.Root));
        Assert.Equal("TryPending", open.ErrorId);
        Assert.Equal(ErrorKind.ResourceBusy, open.Kind);
        Assert.Equal("trial", open.Target);
        Assert.Contains("could not roll it back", open.Message);

        // Confirming keeps it, and the journal keeps what the watchdog failed to do.
        using var ps = new PsSession();
        var confirm = ps.Run("Confirm-SafeDeploy -Name trial -StateDirectory $s", ("s", box.State));
        Assert.True(confirm.AllErrors.Count() == 0, confirm.Describe());
        var watchdog = Journal.Read(store.JournalPath("trial", id)).Single(r => (string?)r["type"] == "watchdog");
        Assert.Equal("RollbackFailed", (string?)watchdog["outcome"]);
        Assert.Null(TryMode.OpenTry(store, "trial", box.Root));
    }

    [Fact]
    public void Arm_RefusesAHostThatIsNotAnAbsolutePath()
    {
        var e = Assert.Throws<SafeDeployException>(() => TryWatchdog.CheckHost("safedeploy"));
        Assert.Equal("TryModeUnavailable", e.ErrorId);
        Assert.Equal("safedeploy", e.Target);
    }

    [Fact]
    public void ANewDeployment_WhileATryIsUnconfirmed_IsRefused_UntilItIsConfirmed()
    {
        using var box = new Sandbox();
        var manifest = box.Write("deploy.yaml", Manifest);
        var deployer = HostProcess.Run($"Invoke-SafeDeploy '{manifest}' -Root '{box.Root}' -StateDirectory '{box.State}' -TrySeconds 300");
        Assert.True(deployer.ExitCode == 0, deployer.ToString());
        using var ps = new PsSession();
        var again = ps.Run("Invoke-SafeDeploy $m -Root $r -StateDirectory $s", ("m", manifest), ("r", box.Root), ("s", box.State));
        var err = Assert.Single(again.AllErrors);
        Assert.StartsWith("TryPending", err.FullyQualifiedErrorId);
        Assert.Contains("Confirm-SafeDeploy -Name trial", err.ErrorDetails.RecommendedAction);
        Assert.Contains("Undo-SafeDeploy -Name trial", err.ErrorDetails.RecommendedAction);
        Assert.Empty(again.Output);
        Assert.Single(Directory.GetFiles(Path.Combine(box.State, "state", "deployments", "trial"), "*.journal")); // nothing started

        var confirm = ps.Run("Confirm-SafeDeploy -Name trial -StateDirectory $s", ("s", box.State));
        Assert.True(confirm.AllErrors.Count() == 0, confirm.Describe());
        var after = ps.Run("Invoke-SafeDeploy $m -Root $r -StateDirectory $s", ("m", manifest), ("r", box.Root), ("s", box.State));
        Assert.True(after.AllErrors.Count() == 0 && after.Status(0) == "Succeeded", after.Describe());
    }
}
