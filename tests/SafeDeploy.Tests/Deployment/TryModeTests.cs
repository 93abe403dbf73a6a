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
        return (string)ps.Run("Get-SafeDeployHistory trial -StateDirectory $s", ("s", box.State)).Output[^1].Properties["Status"].Value;
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
        Assert.True(after.AllErrors.Count() == 0 && (string?)after.Prop(0, "Status") == "Succeeded", after.Describe());
    }
}
