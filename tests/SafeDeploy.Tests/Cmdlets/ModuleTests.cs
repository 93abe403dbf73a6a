using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.Cmdlets;

public class ModuleTests
{
    [Fact]
    public void Module_ImportsFromTheCheckout_AndExportsEveryCmdletByName()
    {
        using var ps = new PsSession();
        var r = ps.Run("(Get-Module SafeDeploy).ExportedCmdlets.Keys");
        var names = r.Output.Select(o => o.ToString()).ToList();
        Assert.Contains("Initialize-StateDirectory", names);
        Assert.Contains("Invoke-WithLock", names);
        Assert.Contains("Edit-LockedFile", names);
        var manifest = File.ReadAllText(RepoPaths.ModuleManifest);
        Assert.DoesNotContain("'*'", manifest);
    }

    [Fact]
    public void Host_RunsACommandWithTheModuleImported_AndReturnsOneOnError()
    {
        using var home = new TempDir("home");
        var env = new Dictionary<string, string?> { ["HOME"] = home.Path };
        var ok = HostProcess.Run("(Initialize-StateDirectory -Name hosttest).StateDir", env);
        Assert.True(ok.ExitCode == 0, ok.ToString());
        Assert.Contains(Path.Combine(home.Path, ".local/state/hosttest"), ok.StdOut);

        var bad = HostProcess.Run("Initialize-StateDirectory -Name '../evil'", env);
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("InvalidName", bad.StdErr);
        Assert.False(Directory.Exists(Path.Combine(home.Path, ".local/evil")));
    }
}
