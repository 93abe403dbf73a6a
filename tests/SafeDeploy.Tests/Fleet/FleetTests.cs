using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.Fleet;

/// <summary>Rollouts to real sshd hosts on 127.0.0.x: waves, the failure budget, rollback, unreachable hosts, a host without pwsh.</summary>
public class FleetTests
{
    internal const string Manifest = """
        name: fleetapp
        variables:
          fail: "no"
          pause: "0"
          counter: /dev/null
        phases:
          - name: lib
            install:
              - { source: lib/libfleet.so, target: /opt/fleet/lib/libfleet.so, mode: "0644" }
          - name: preload
            dependsOn: [lib]
            editFile: { path: /etc/ld.so.preload, ensureLine: /opt/fleet/lib/libfleet.so }
          - name: use
            dependsOn: [preload]
            run:
              command: echo run >> '${counter}'; sleep ${pause}; [ '${fail}' != yes ]
        """;

    /// <summary>The manifest and the library it installs, beside each other (the library is staged to each host by hash).</summary>
    internal static string WriteManifest(TempDir dir, string text = Manifest)
    {
        dir.Write("app/lib/libfleet.so", "library bytes v2\n");
        return dir.Write("app/deploy.yaml", text);
    }

    /// <summary>A host's root as it was before: an older library and a preload file with someone else's line.</summary>
    internal static void Arrange(TestHost h)
    {
        Directory.CreateDirectory(Path.Combine(h.Root, "opt/fleet/lib"));
        File.WriteAllText(Path.Combine(h.Root, "opt/fleet/lib/libfleet.so"), "library bytes v1\n");
        Directory.CreateDirectory(Path.Combine(h.Root, "etc"));
        File.WriteAllText(Path.Combine(h.Root, "etc/ld.so.preload"), "/usr/lib/other.so\n");
    }

    internal static string Counter(TestHost h) => Path.Combine(Path.GetDirectoryName(h.Root)!, "runs.log");

    internal static string Vars(TestHost h, string more = "") => $"    variables:\n      counter: {Counter(h)}\n{more}";

    internal static PsResult Rollout(string manifest, string inventory, string stateDir, string extra = "", string? hostExecutable = null)
    {
        using var ps = new PsSession();
        return ps.Run($"Invoke-SafeDeploy -Manifest $m -Inventory $i -StateDirectory $s -HostExecutable $x {extra}",
            ("m", manifest), ("i", inventory), ("s", stateDir), ("x", hostExecutable ?? RepoPaths.HostExecutable));
    }

    /// <summary>The last result per host (the final state).</summary>
    internal static Dictionary<string, (string Status, int Batch)> Final(PsResult r)
    {
        Assert.True(r.Output.Count > 0, r.Describe());
        return r.Output.GroupBy(o => (string)o.Properties["HostName"].Value).ToDictionary(g => g.Key,
            g => (g.Last().Status(), (int)g.Last().Properties["Batch"].Value));
    }

    [Fact]
    public void CanaryFails_NoOtherHostIsTouched()
    {
        using var fleet = new SshFleet(3, pwsh: i => i == 0 && SshFleet.PwshAvailable);
        foreach (var h in fleet.Hosts) Arrange(h);
        var before = fleet.Hosts.ToDictionary(h => h.Name, h => SshFleet.Snapshot(h.Root));
        var inventory = fleet.Inventory(h => Vars(h, h.Name == "h1" ? "      fail: \"yes\"\n" : ""));
        var r = Rollout(WriteManifest(fleet.Dir), inventory, fleet.Dir["controller"], "-BatchSize 1,100%");

        var final = Final(r);
        Assert.Equal(("Failed", 1), final["h1"]);
        Assert.Equal(("NotStarted", 2), final["h2"]);
        Assert.Equal(("NotStarted", 2), final["h3"]);
        var error = Assert.Single(r.Errors);
        Assert.StartsWith("RolloutFailed", error.FullyQualifiedErrorId);
        Assert.Equal(System.Management.Automation.ErrorCategory.InvalidOperation, error.CategoryInfo.Category);
        // The canary's own engine rolled its phases back; the others were never contacted.
        foreach (var h in fleet.Hosts) Assert.Equal(before[h.Name], SshFleet.Snapshot(h.Root));
        Assert.Equal(["run"], File.ReadAllLines(Counter(fleet.Hosts[0])));
        foreach (var h in fleet.Hosts.Skip(1))
        {
            Assert.False(File.Exists(Counter(h)));
            Assert.Empty(Directory.EnumerateFileSystemEntries(h.State));
        }
    }

    [Fact]
    public void SecondWaveFailure_SpendsTheBudget_AndEveryChangedHostIsByteIdenticalToBefore()
    {
        using var fleet = new SshFleet(4);
        foreach (var h in fleet.Hosts) Arrange(h);
        var before = fleet.Hosts.ToDictionary(h => h.Name, h => SshFleet.Snapshot(h.Root));
        var inventory = fleet.Inventory(h => Vars(h, h.Name == "h3" ? "      fail: \"yes\"\n" : ""));
        var r = Rollout(WriteManifest(fleet.Dir), inventory, fleet.Dir["controller"], "-BatchSize 1,2");

        var final = Final(r);
        Assert.Equal(("RolledBack", 1), final["h1"]);
        Assert.Equal(("RolledBack", 2), final["h2"]);
        Assert.Equal(("Failed", 2), final["h3"]);
        Assert.Equal(("NotStarted", 3), final["h4"]);
        // Newest first: h2 (wave 2) is undone before h1 (the canary).
        var order = r.Output.Where(o => o.Status() == "RolledBack").Select(o => (string)o.Properties["HostName"].Value).ToList();
        Assert.Equal(["h2", "h1"], order);
        Assert.StartsWith("RolloutRolledBack", Assert.Single(r.Errors).FullyQualifiedErrorId);
        foreach (var h in fleet.Hosts) Assert.Equal(before[h.Name], SshFleet.Snapshot(h.Root));
        Assert.False(File.Exists(Counter(fleet.Hosts[3])));
    }

    [Fact]
    public void UnreachableHost_CountsAsAFailure_AndIsLeftUnchanged()
    {
        using var fleet = new SshFleet(3, down: new HashSet<int> { 1 });
        foreach (var h in fleet.Hosts) Arrange(h);
        var before = SshFleet.Snapshot(fleet.Hosts[1].Root);
        var inventory = fleet.Inventory(h => Vars(h));
        var r = Rollout(WriteManifest(fleet.Dir), inventory, fleet.Dir["controller"], "-MaxFailed 1");

        var final = Final(r);
        Assert.Equal("Succeeded", final["h1"].Status);
        Assert.Equal("Unreachable", final["h2"].Status);
        Assert.Equal("Succeeded", final["h3"].Status);
        var unreachable = r.Output.Last(o => (string)o.Properties["HostName"].Value == "h2");
        Assert.Contains("127.0.0.3", (string)unreachable.Properties["Error"].Value);
        Assert.Equal(before, SshFleet.Snapshot(fleet.Hosts[1].Root));
        Assert.Equal("library bytes v2\n", File.ReadAllText(Path.Combine(fleet.Hosts[2].Root, "opt/fleet/lib/libfleet.so")));
        Assert.Equal("/usr/lib/other.so\n/opt/fleet/lib/libfleet.so\n", File.ReadAllText(Path.Combine(fleet.Hosts[0].Root, "etc/ld.so.preload")));
        Assert.StartsWith("RolloutFailed", Assert.Single(r.Errors).FullyQualifiedErrorId);

        // History lists the rollout with its hosts.
        using var ps = new PsSession();
        var history = ps.Run("Get-SafeDeployHistory -Rollout -StateDirectory $s", ("s", fleet.Dir["controller"]));
        var entry = Assert.Single(history.Output);
        Assert.Equal("Failed", entry.Status());
        Assert.Equal("fleetapp", entry.Properties["Name"].Value);
        var hosts = ((System.Collections.IEnumerable)entry.Properties["Hosts"].Value).Cast<object>()
            .Select(o => System.Management.Automation.PSObject.AsPSObject(o)).Select(o => $"{o.Properties["HostName"].Value}:{o.Status()}");
        Assert.Equal(["h1:Succeeded", "h2:Unreachable", "h3:Succeeded"], hosts);
    }
}
