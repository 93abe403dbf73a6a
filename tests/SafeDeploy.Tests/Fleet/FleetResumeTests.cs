using SafeDeploy.Tests.Infrastructure;
using Xunit;
using static SafeDeploy.Tests.Fleet.FleetTests;

namespace SafeDeploy.Tests.Fleet;

/// <summary>A controller killed with SIGKILL in the middle of a wave, then the same command again.</summary>
public class FleetResumeTests
{
    [Fact]
    public void ControllerKilledMidWave_SameCommandResumes_NothingRunsTwice()
    {
        using var fleet = new SshFleet(3);
        foreach (var h in fleet.Hosts) Arrange(h);
        var inventory = fleet.Inventory(h => Vars(h, h.Name == "h1" ? "" : "      pause: \"4\"\n"));
        var manifest = WriteManifest(fleet.Dir);
        var state = fleet.Dir["controller"];
        var command = $"Invoke-SafeDeploy -Manifest '{manifest}' -Inventory '{inventory}' -StateDirectory '{state}' -HostExecutable '{RepoPaths.HostExecutable}' -BatchSize 1,100%";

        using (var controller = HostProcess.Start(command))
        {
            // Wave 2 has started on h2 (its `use` phase is running, sleeping) when the controller dies.
            var deadline = DateTime.UtcNow.AddSeconds(150);
            while (!File.Exists(Counter(fleet.Hosts[1])) && DateTime.UtcNow < deadline && !controller.HasExited) Thread.Sleep(50);
            Assert.True(File.Exists(Counter(fleet.Hosts[1])), "wave 2 never started:\n" + controller.StdOutSoFar + controller.StdErrSoFar);
            controller.Signal(9);
            controller.Wait(TimeSpan.FromSeconds(20));
        }

        var r = Rollout(manifest, inventory, state, "-BatchSize 1,100%");
        var final = Final(r);
        Assert.All(fleet.Hosts, h => Assert.Equal("Succeeded", final[h.Name].Status));
        Assert.Empty(r.Errors);
        // The canary finished before the kill: reported again from the journal, not deployed again.
        var h1 = Assert.Single(r.Output, o => (string)o.Properties["HostName"].Value == "h1");
        Assert.True((bool)h1.Properties["Resumed"].Value);
        Assert.Single(r.Output.Select(o => (string)o.Properties["Rollout"].Value).Distinct());
        foreach (var h in fleet.Hosts)
        {
            Assert.Equal(["run"], File.ReadAllLines(Counter(h)));
            Assert.Equal("library bytes v2\n", File.ReadAllText(Path.Combine(h.Root, "opt/fleet/lib/libfleet.so")));
        }

        // A finished rollout is not resumed: the same command now starts a new one (generation 2 everywhere).
        var again = Rollout(manifest, inventory, state, "-BatchSize 1,100%");
        Assert.All(fleet.Hosts, h => Assert.Equal("Succeeded", Final(again)[h.Name].Status));
        Assert.All(again.Output, o => Assert.False((bool)o.Properties["Resumed"].Value));
        Assert.All(again.Output, o => Assert.Equal(2, (int)o.Properties["Generation"].Value));
        foreach (var h in fleet.Hosts) Assert.Equal(["run", "run"], File.ReadAllLines(Counter(h)));
    }
}
