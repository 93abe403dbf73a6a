using System.Diagnostics;
using SafeDeploy.Engine.Platform;
using SafeDeploy.Tests.Infrastructure;
using SafeDeploy.Tests.NativeShim;
using Xunit;
using static SafeDeploy.Tests.Fleet.FleetTests;

namespace SafeDeploy.Tests.Fleet;

/// <summary>What a host receives: the safedeploy host where there is no pwsh, staged files by hash, the shim example on 8 hosts.</summary>
public class FleetHostTests
{
    static string Sha256Check(string dir)
    {
        var p = Process.Start(new ProcessStartInfo("sha256sum", ["-c", "--quiet", "--strict", "SHA256SUMS"]) { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true })!;
        Assert.True(p.WaitForExit(60_000));
        return p.ExitCode + p.StandardError.ReadToEnd();
    }

    [Fact]
    public void HostWithoutPwsh_GetsTheSafeDeployHostOnce_HashChecked_AndAChangedStagedFileIsReplaced()
    {
        using var fleet = new SshFleet(1);
        var h = fleet.Hosts[0];
        Arrange(h);
        var inventory = fleet.Inventory(x => Vars(x));
        var manifest = WriteManifest(fleet.Dir);
        var first = Rollout(manifest, inventory, fleet.Dir["controller"]);
        Assert.Equal("Succeeded", Final(first)["h1"].Status);

        var fleetDir = Path.Combine(h.State, "state", "fleet");
        var runtime = Directory.GetDirectories(Path.Combine(fleetDir, "runtime")).Select(Path.GetFileName).Order().ToList();
        Assert.Equal(2, runtime.Count);
        Assert.StartsWith("host-0.1.0-", runtime[0]);
        Assert.StartsWith("module-0.1.0-", runtime[1]);
        var hostDir = Path.Combine(fleetDir, "runtime", runtime[0]!);
        Assert.True(File.Exists(Path.Combine(hostDir, "safedeploy")));
        Assert.Equal("0", Sha256Check(hostDir));
        var uploadedAt = Directory.GetLastWriteTimeUtc(hostDir);
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(fleetDir, "incoming")));

        // Someone changes the staged library on the host: the next rollout sees the sum fail and stages it again.
        var payload = Assert.Single(Directory.GetDirectories(Path.Combine(fleetDir, "payload")));
        File.WriteAllText(Path.Combine(payload, "lib", "libfleet.so"), "planted\n");
        var second = Rollout(manifest, inventory, fleet.Dir["controller"], "-Verbose");
        Assert.Equal("Succeeded", Final(second)["h1"].Status);
        Assert.Equal(2, (int)second.Output.Last().Properties["Generation"].Value);
        Assert.Equal("library bytes v2\n", File.ReadAllText(Path.Combine(h.Root, "opt/fleet/lib/libfleet.so")));
        Assert.Equal("0", Sha256Check(payload));
        // The runtime was not uploaded again.
        Assert.Equal(uploadedAt, Directory.GetLastWriteTimeUtc(hostDir));
        Assert.Contains(second.Verbose, v => v.Contains("safedeploy host"));
    }

    [Fact]
    public void ShimExample_AcrossEightHosts_EachServesTheNewLibrary()
    {
        using var fleet = new SshFleet(8, pwsh: i => i == 0 && SshFleet.PwshAvailable);
        var ports = fleet.Hosts.ToDictionary(x => x.Name, _ => ShimSandbox.FreePort());
        var inventory = fleet.Inventory(x => $"""
                variables:
                  version: "5"
                  port: "{ports[x.Name]}"
                  fixtures: {ShimFixtures.Source}
                  build: {Path.Combine(Path.GetDirectoryName(x.Root)!, "build")}
                  serviceProgram: {ShimFixtures.Service}

            """);
        try
        {
            // The hosts without pwsh get the package's one file: the shim's build, canary, service and health check run in
            // its native step there.
            var r = Rollout(Path.Combine(RepoPaths.Root, "examples", "shim", "deploy.yaml"), inventory, fleet.Dir["controller"], "-BatchSize 1,100% -ThrottleLimit 7 -Verbose",
                Packaged.SingleFile);
            var final = Final(r);
            Assert.True(final.Values.All(v => v.Status == "Succeeded"), r.Describe());
            Assert.All(fleet.Hosts.Skip(1), x => Assert.Contains(r.Verbose, v => v.StartsWith($"Host '{x.Name}': Succeeded", StringComparison.Ordinal)
                && v.Contains("(ssh, the host's native step: neither PowerShell nor .NET)", StringComparison.Ordinal)));
            Assert.Equal(1, final["h1"].Batch);
            Assert.All(fleet.Hosts.Skip(1), x => Assert.Equal(2, final[x.Name].Batch));
            foreach (var x in fleet.Hosts)
            {
                Assert.Equal("/opt/shim/lib/libshim.so\n", File.ReadAllText(Path.Combine(x.Root, "etc", "ld.so.preload")));
                Assert.StartsWith("200 ok shim=5 ", ShimSandbox.Get(new Uri($"http://127.0.0.1:{ports[x.Name]}/health")));
            }
        }
        finally
        {
            foreach (var x in fleet.Hosts)
            {
                var pidFile = Path.Combine(x.Root, "run", "shim-sample.pid");
                if (File.Exists(pidFile) && int.TryParse(File.ReadAllText(pidFile).Trim(), out var pid))
                {
                    Native.Kill(pid, 9);
                    Engine.Services.ProcessLiveness.WaitGoneAsync(pid, TimeSpan.FromSeconds(5), default).GetAwaiter().GetResult();
                }
            }
        }
    }
}
