using System.Management.Automation;
using SafeDeploy.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;
using static SafeDeploy.Tests.Fleet.FleetTests;

namespace SafeDeploy.Tests.Fleet;

/// <summary>
/// One fleet for the class: h1 has pwsh and the `powershell` ssh subsystem (PowerShell remoting over SSH), h2 has pwsh but
/// no subsystem (the ssh + pwsh fallback), h3 has no pwsh (the uploaded safedeploy host).
/// </summary>
public sealed class RemotingFleet : IDisposable
{
    public SshFleet Fleet { get; } = new(3, pwsh: i => i < 2, subsystem: i => i == 0);
    public void Dispose() => Fleet.Dispose();
}

/// <summary>Rollouts through PowerShell remoting sessions, and Confirm-SafeDeploy / Undo-SafeDeploy across hosts.</summary>
public class FleetRemotingTests(RemotingFleet shared, ITestOutputHelper output) : IClassFixture<RemotingFleet>
{
    readonly SshFleet fleet = shared.Fleet;

    TestHost Host(string name) => fleet.Hosts.Single(h => h.Name == name);

    static int Count(IEnumerable<string> log, string text) => log.Count(l => l.Contains(text, StringComparison.Ordinal));

    static PsResult Run(string script, params (string Name, object? Value)[] variables)
    {
        using var ps = new PsSession();
        return ps.Run(script, variables);
    }

    static string Status(PSObject o) => o.Status();

    static string HostOf(PSObject o) => (string)o.Properties["HostName"].Value;

    [Fact]
    public void PwshHost_DeploysAndRollsBackInARemotingSession_AHostWithoutTheSubsystemFallsBackToSsh()
    {
        Assert.True(SshFleet.PwshAvailable, $"pwsh is needed at {SshFleet.PwshDir} (dotnet tool install --global PowerShell)");
        foreach (var h in new[] { Host("h1"), Host("h2") }) Arrange(h);
        var before = fleet.Hosts.ToDictionary(h => h.Name, h => SshFleet.Snapshot(h.Root));
        var sessionsBefore = Count(fleet.SshdLog("h1"), "subsystem 'powershell'");
        var inventory = fleet.Inventory(h => Vars(h, h.Name == "h2" ? "      fail: \"yes\"\n" : ""));
        // h1 is the canary and succeeds; h2 fails in wave 2, which spends the budget: h1 is rolled back, in a session again.
        var r = Rollout(WriteManifest(fleet.Dir), inventory, fleet.Dir["controller-remoting"], "-HostName h1,h2 -BatchSize 1,100% -Verbose");

        foreach (var v in r.Verbose.Where(v => v.StartsWith("Host ", StringComparison.Ordinal))) output.WriteLine(v);
        var final = Final(r);
        Assert.Equal(("RolledBack", 1), final["h1"]);
        Assert.Equal(("Failed", 2), final["h2"]);
        foreach (var h in fleet.Hosts) Assert.Equal(before[h.Name], SshFleet.Snapshot(h.Root));
        // The remote side ran in a remoting session ($PSSenderInfo set): the deploy and the rollback of h1 say so.
        Assert.Contains(r.Verbose, v => v.StartsWith("Host 'h1': Succeeded", StringComparison.Ordinal) && v.Contains("(PowerShell remoting session)"));
        Assert.Contains(r.Verbose, v => v.StartsWith("Host 'h2': no PowerShell remoting session over SSH", StringComparison.Ordinal));
        // (h2's own engine rolled its failed phases back: its run ended RolledBack.)
        Assert.Contains(r.Verbose, v => v.StartsWith("Host 'h2': RolledBack", StringComparison.Ordinal) && v.Contains("(ssh)"));
        Assert.Contains(r.Verbose, v => v.StartsWith("Host 'h1': rollback Undone", StringComparison.Ordinal) && v.Contains("(PowerShell remoting session)"));
        // ... and h1's sshd started the powershell subsystem twice (deploy, rollback); h2's refused it.
        var h1 = fleet.SshdLog("h1");
        Assert.Equal(sessionsBefore + 2, Count(h1, "Starting session: subsystem 'powershell'"));
        Assert.Equal(0, Count(fleet.SshdLog("h2"), "Starting session: subsystem 'powershell'"));
        Assert.True(Count(fleet.SshdLog("h2"), "subsystem request for powershell") > 0, string.Join("\n", fleet.SshdLog("h2")));
        // The session shared the staging connection (ControlMaster): more sessions than TCP connections authenticated.
        Assert.True(Count(h1, "Starting session:") > Count(h1, "Accepted publickey"), string.Join("\n", h1));
    }

    [Fact]
    public void TryRollout_ThenConfirmAcrossHosts_EveryWatchdogStandsDown_AndTheRunStays()
    {
        Assert.True(SshFleet.PwshAvailable, $"pwsh is needed at {SshFleet.PwshDir}");
        var hosts = new[] { Host("h1"), Host("h3") };
        foreach (var h in hosts) Arrange(h);
        var inventory = fleet.Inventory(h => Vars(h));
        var r = Rollout(WriteManifest(fleet.Dir), inventory, fleet.Dir["controller-confirm"], "-HostName h1,h3 -TrySeconds 300");
        Assert.All(hosts, h => Assert.Equal("Succeeded", Final(r)[h.Name].Status));
        Assert.All(r.Output, o => Assert.NotNull(o.Properties["RollbackAt"].Value));

        var c = Run("Confirm-SafeDeploy fleetapp -Inventory $i -HostName h1,h3 -HostExecutable $x -Verbose", ("i", inventory), ("x", RepoPaths.HostExecutable));
        Assert.Empty(c.AllErrors);
        Assert.Equal(["h1:Succeeded", "h3:Succeeded"], c.Output.Select(o => $"{HostOf(o)}:{Status(o)}").Order());
        Assert.All(c.Output, o => Assert.Equal("SafeDeploy.Engine.Fleet.HostDeployResult", o.BaseObject.GetType().FullName));
        Assert.Contains(c.Verbose, v => v.StartsWith("Host 'h1': Confirm gave Succeeded", StringComparison.Ordinal) && v.Contains("(PowerShell remoting session)"));
        foreach (var h in hosts)
        {
            // Each host's watchdog sees the confirmation and exits without rolling back.
            var history = Run("Get-SafeDeployHistory -Name fleetapp -StateDirectory $s", ("s", h.State));
            var last = history.Output[^1];
            Assert.True((bool)last.Properties["Confirmed"].Value, h.Name);
            Assert.Equal(c.Output.Single(o => HostOf(o) == h.Name).Properties["Id"].Value, last.Properties["Id"].Value);
            // The watchdog (a pwsh or safedeploy process of its own) may still be starting: it writes the file when it does.
            var outcome = Path.Combine(Path.GetDirectoryName((string)last.Properties["JournalPath"].Value)!, (string)last.Properties["Id"].Value, "watchdog.outcome");
            var deadline = DateTime.UtcNow.AddSeconds(90);
            while (!(File.Exists(outcome) && File.ReadAllText(outcome).Contains("\"Confirmed\"", StringComparison.Ordinal)) && DateTime.UtcNow < deadline) Thread.Sleep(100);
            var log = Path.Combine(Path.GetDirectoryName(outcome)!, "watchdog.log");
            Assert.True(File.Exists(outcome), $"{h.Name}: no watchdog outcome; its log: {(File.Exists(log) ? File.ReadAllText(log) : "(none)")}");
            Assert.Contains("\"Confirmed\"", File.ReadAllText(outcome));
            Assert.Equal("library bytes v2\n", File.ReadAllText(Path.Combine(h.Root, "opt/fleet/lib/libfleet.so")));
        }
    }

    [Fact]
    public void RolloutThenUndoAcrossHosts_EveryHostIsByteIdenticalToBefore_AndAnUnreachableHostIsReported()
    {
        Assert.True(SshFleet.PwshAvailable, $"pwsh is needed at {SshFleet.PwshDir}");
        var hosts = new[] { Host("h1"), Host("h3") };
        foreach (var h in hosts) Arrange(h);
        var before = hosts.ToDictionary(h => h.Name, h => SshFleet.Snapshot(h.Root));
        // Beside the fleet, a host with no sshd behind it.
        var inventory = fleet.Inventory(h => Vars(h) + (h.Name == "h3" ? "  gone:\n    address: 127.0.0.1\n    port: 1\n" : ""));
        var r = Rollout(WriteManifest(fleet.Dir), inventory, fleet.Dir["controller-undo"], "-HostName h1,h3");
        Assert.All(hosts, h => Assert.Equal("Succeeded", Final(r)[h.Name].Status));
        Assert.All(hosts, h => Assert.NotEqual(before[h.Name], SshFleet.Snapshot(h.Root)));

        var u = Run("Undo-SafeDeploy fleetapp -Inventory $i -HostName h1,h3 -HostExecutable $x -Verbose", ("i", inventory), ("x", RepoPaths.HostExecutable));
        Assert.Empty(u.AllErrors);
        Assert.Equal(["h1:RolledBack", "h3:RolledBack"], u.Output.Select(o => $"{HostOf(o)}:{Status(o)}").Order());
        foreach (var h in hosts)
        {
            Assert.Equal(before[h.Name], SshFleet.Snapshot(h.Root));
            Assert.Equal(r.Output.Last(o => HostOf(o) == h.Name).Properties["Id"].Value, u.Output.Single(o => HostOf(o) == h.Name).Properties["Id"].Value);
        }

        // Again: nothing of it stands any more on either host; a host with no sshd is Unreachable. One error names them all.
        var again = Run("Undo-SafeDeploy fleetapp -Inventory $i -HostName h1,gone -ThrottleLimit 1", ("i", inventory));
        Assert.Equal(["gone:Unreachable", "h1:NotStarted"], again.Output.Select(o => $"{HostOf(o)}:{Status(o)}").Order());
        Assert.Contains("NothingToUndo", (string)again.Output.Single(o => HostOf(o) == "h1").Properties["Error"].Value);
        Assert.Contains("127.0.0.1", (string)again.Output.Single(o => HostOf(o) == "gone").Properties["Error"].Value);
        var error = Assert.Single(again.Errors);
        Assert.StartsWith("FleetUndoFailed", error.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.InvalidOperation, error.CategoryInfo.Category);
        Assert.Equal("fleetapp", error.TargetObject);
        Assert.DoesNotContain("h1", error.Exception.Message.Split(':', 2)[1].Split(". First error")[0]);

        // A host with nothing standing is left alone, not failed: alone, it is NothingToUndo (ObjectNotFound), as at home.
        var nothing = Run("Undo-SafeDeploy fleetapp -Inventory $i -HostName h1", ("i", inventory));
        Assert.Equal(["h1:NotStarted"], nothing.Output.Select(o => $"{HostOf(o)}:{Status(o)}"));
        var none = Assert.Single(nothing.Errors);
        Assert.StartsWith("NothingToUndo", none.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.ObjectNotFound, none.CategoryInfo.Category);
        Assert.Equal(before["h1"], SshFleet.Snapshot(Host("h1").Root));
    }
}
