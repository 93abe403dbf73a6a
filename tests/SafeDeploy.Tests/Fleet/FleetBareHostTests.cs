using SafeDeploy.Engine.Platform;
using SafeDeploy.Tests.Infrastructure;
using Xunit;
using static SafeDeploy.Tests.Fleet.FleetTests;

namespace SafeDeploy.Tests.Fleet;

/// <summary>A bare GPU VM (neither .NET nor pwsh) gets the one-file safedeploy and deploys with it.</summary>
public class FleetBareHostTests
{
    static PsResult RolloutWith(string host, string manifest, string inventory, string stateDir)
    {
        using var ps = new PsSession();
        return ps.Run("Invoke-SafeDeploy -Manifest $m -Inventory $i -StateDirectory $s -HostExecutable $x -Verbose",
            ("m", manifest), ("i", inventory), ("s", stateDir), ("x", host));
    }

    [Fact]
    public void BareHost_WithNoDotnet_RunsTheOneFileSafedeploy_WhereTheFrameworkDependentHostCannotStart()
    {
        using var fleet = new SshFleet(1, bare: _ => true);
        var h = fleet.Hosts[0];
        Arrange(h);
        var inventory = fleet.Inventory(x => Vars(x));
        var manifest = WriteManifest(fleet.Dir);
        var before = File.ReadAllText(Path.Combine(h.Root, "etc/ld.so.preload"));

        // The control: the framework-dependent host needs the .NET this host does not have; the host is left as it was.
        var control = RolloutWith(RepoPaths.HostExecutable, manifest, inventory, fleet.Dir["controller-fd"]);
        Assert.NotEqual("Succeeded", Final(control)["h1"].Status);
        Assert.Equal(before, File.ReadAllText(Path.Combine(h.Root, "etc/ld.so.preload")));
        Assert.Equal("library bytes v1\n", File.ReadAllText(Path.Combine(h.Root, "opt/fleet/lib/libfleet.so")));

        // The one file carries its runtime: the same rollout succeeds, its step run by the native safedeploy-step beside it.
        var r = RolloutWith(Packaged.SingleFile, manifest, inventory, fleet.Dir["controller-one"]);
        Assert.True(Final(r)["h1"].Status == "Succeeded", r.Describe());
        Assert.Contains(r.Verbose, v => v.StartsWith("Host 'h1': Succeeded", StringComparison.Ordinal) && v.Contains("(ssh, the host's native step: neither PowerShell nor .NET)"));
        Assert.Equal("library bytes v2\n", File.ReadAllText(Path.Combine(h.Root, "opt/fleet/lib/libfleet.so")));
        Assert.Contains("/opt/fleet/lib/libfleet.so", File.ReadAllLines(Path.Combine(h.Root, "etc/ld.so.preload")));

        // What was uploaded is that one file and the native step (and their sums), hash-checked: no runtime beside them.
        var runtime = Path.Combine(h.State, "state", "fleet", "runtime");
        var hostDir = Directory.GetDirectories(runtime, "host-*").Single(d => !File.Exists(Path.Combine(d, "SafeDeploy.Host.dll")));
        Assert.Equal(["SHA256SUMS", "safedeploy", "safedeploy-step"], Directory.GetFiles(hostDir).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray());
        Assert.Equal(new FileInfo(Packaged.SingleFile).Length, new FileInfo(Path.Combine(hostDir, "safedeploy")).Length);
        Assert.Equal(new FileInfo(Packaged.NativeStep).Length, new FileInfo(Path.Combine(hostDir, "safedeploy-step")).Length);
    }
}
