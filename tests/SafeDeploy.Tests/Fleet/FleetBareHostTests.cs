using SafeDeploy.Engine.Platform;
using SafeDeploy.Tests.Infrastructure;
using Xunit;
using static SafeDeploy.Tests.Fleet.FleetTests;

namespace SafeDeploy.Tests.Fleet;

/// <summary>A bare GPU VM (neither .NET nor pwsh) gets the one-file safedeploy and deploys with it.</summary>
public class FleetBareHostTests
{
    static readonly Lazy<string> singleFile = new(FindOrBuildSingleFile);

    /// <summary>
    /// The one file of the package (build.ps1 -Task Package, which CI runs before the tests); without a package, the same
    /// `dotnet publish` line the README gives, once per test run, into out/test-singlefile (the module travels separately).
    /// </summary>
    static string FindOrBuildSingleFile()
    {
        var packaged = Path.Combine(RepoPaths.Root, "out", "safedeploy", "linux-x64", "safedeploy");
        if (File.Exists(packaged)) return packaged;
        var dir = Path.Combine(RepoPaths.Root, "out", "test-singlefile");
        var r = new ExternalCommand
        {
            Program = "dotnet",
            Arguments = ["publish", Path.Combine(RepoPaths.Root, "src", "SafeDeploy.Host"), "-c", RepoPaths.Configuration, "-r", "linux-x64", "--self-contained", "true",
                "-p:PublishSingleFile=true", "-p:IncludeNativeLibrariesForSelfExtract=true", "-p:PublishReadyToRunComposite=false", "-o", dir, "-nologo", "-v", "q"],
            Timeout = TimeSpan.FromMinutes(12),
        }.Run();
        Assert.True(r.Succeeded, $"{r.CommandLine} exited {r.ExitCode}:\n{r.StandardOutput}\n{r.StandardError}");
        return Path.Combine(dir, "safedeploy");
    }

    static PsResult RolloutWith(string host, string manifest, string inventory, string stateDir)
    {
        using var ps = new PsSession();
        return ps.Run("Invoke-SafeDeploy -Manifest $m -Inventory $i -StateDirectory $s -HostExecutable $x",
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

        // The one file carries its runtime: the same rollout succeeds.
        var r = RolloutWith(singleFile.Value, manifest, inventory, fleet.Dir["controller-one"]);
        Assert.True(Final(r)["h1"].Status == "Succeeded", r.Describe());
        Assert.Equal("library bytes v2\n", File.ReadAllText(Path.Combine(h.Root, "opt/fleet/lib/libfleet.so")));
        Assert.Contains("/opt/fleet/lib/libfleet.so", File.ReadAllLines(Path.Combine(h.Root, "etc/ld.so.preload")));

        // What was uploaded is that one file (and its sums), hash-checked: no runtime beside it.
        var runtime = Path.Combine(h.State, "state", "fleet", "runtime");
        var hostDir = Directory.GetDirectories(runtime, "host-*").Single(d => !File.Exists(Path.Combine(d, "SafeDeploy.Host.dll")));
        Assert.Equal(["SHA256SUMS", "safedeploy"], Directory.GetFiles(hostDir).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray());
        Assert.Equal(new FileInfo(singleFile.Value).Length, new FileInfo(Path.Combine(hostDir, "safedeploy")).Length);
    }
}
