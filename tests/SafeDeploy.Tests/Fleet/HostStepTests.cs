using SafeDeploy.Engine.Fleet;
using SafeDeploy.Tests.Infrastructure;
using Xunit;
using static SafeDeploy.Tests.Fleet.FleetTests;

namespace SafeDeploy.Tests.Fleet;

/// <summary>
/// A rollout's step run by a host's engine without PowerShell: `safedeploy -FleetStep` of the built host and the package's
/// native safedeploy-step, each locally with a request on stdin; and in a rollout, where a manifest with a `script` phase
/// still goes through PowerShell.
/// </summary>
public class HostStepTests
{
    /// <summary>The step by <paramref name="runner"/>: "engine" (safedeploy -FleetStep) or "native" (safedeploy-step).</summary>
    static RemoteOutcome Step(TempDir dir, string request, string runner)
    {
        var file = dir.Write($"request-{Guid.NewGuid():N}.json", request);
        string[] args = runner == "native" ? ["-c", "exec \"$0\" < \"$1\"", Packaged.NativeStep, file]
            : ["-c", "exec \"$0\" -FleetStep < \"$1\"", RepoPaths.HostExecutable, file];
        using var p = HostProcess.StartProgram("sh", args,
            new Dictionary<string, string?> { ["SAFEDEPLOY_MODULE"] = RepoPaths.ModuleManifest });
        var o = p.Wait(TimeSpan.FromMinutes(2));
        Assert.True(o.ExitCode == 0, o.ToString());
        return RemoteScripts.Parse(o.StdOut) ?? throw new Xunit.Sdk.XunitException("no result line: " + o);
    }

    static string Request(string op, TempDir dir, string done, string? manifest = null, string? root = null, int? trySeconds = null) =>
        new System.Text.Json.Nodes.JsonObject
        {
            ["op"] = op, ["done"] = done, ["manifest"] = manifest, ["name"] = "fleetapp", ["root"] = root, ["trySeconds"] = trySeconds,
            ["stateDirectory"] = dir["state"], ["variables"] = new System.Text.Json.Nodes.JsonObject { ["counter"] = dir["runs.log"] },
        }.ToJsonString();

    [Theory]
    [InlineData("engine")]
    [InlineData("native")]
    public void Deploy_RunsTheEngineOnce_ASecondRequestReportsTheFirst_AndRollBackRestoresTheRootOnce(string runner)
    {
        using var dir = new TempDir("step");
        var root = dir["root"];
        Directory.CreateDirectory(Path.Combine(root, "etc"));
        File.WriteAllText(Path.Combine(root, "etc/ld.so.preload"), "/usr/lib/other.so\n");
        var manifest = WriteManifest(dir);
        var done = dir["h1.result"];

        var first = Step(dir, Request("deploy", dir, done, manifest, root), runner);
        Assert.Equal((RemoteStatus.Succeeded, 1, runner), (first.Status, first.Generation, first.Via));
        Assert.Equal("library bytes v2\n", File.ReadAllText(Path.Combine(root, "opt/fleet/lib/libfleet.so")));
        Assert.Equal("/usr/lib/other.so\n/opt/fleet/lib/libfleet.so\n", File.ReadAllText(Path.Combine(root, "etc/ld.so.preload")));
        Assert.Equal("run\n", File.ReadAllText(dir["runs.log"]));

        // A controller that died after the step asks again: the same result, and nothing ran twice.
        var again = Step(dir, Request("deploy", dir, done, manifest, root), runner);
        Assert.Equal((first.Id, first.Generation), (again.Id, again.Generation));
        Assert.Equal("run\n", File.ReadAllText(dir["runs.log"]));

        var undone = Step(dir, Request("rollback", dir, done), runner);
        Assert.Equal((RemoteStatus.Undone, first.Id), (undone.Status, undone.Id));
        Assert.False(Directory.Exists(Path.Combine(root, "opt")));
        Assert.Equal("/usr/lib/other.so\n", File.ReadAllText(Path.Combine(root, "etc/ld.so.preload")));
        var twice = Step(dir, Request("rollback", dir, done), runner);
        Assert.Equal((RemoteStatus.Undone, undone.Generation), (twice.Status, twice.Generation));

        // A host this rollout never deployed has nothing to roll back.
        Assert.Equal(RemoteStatus.NotDeployed, Step(dir, Request("rollback", dir, dir["h2.result"]), runner).Status);
    }

    [Fact]
    public void TheNativeStep_InTryMode_StartsItsWatchdog_TheOneFileBesideIt_WhichRollsTheRunBackAtItsDeadline()
    {
        using var dir = new TempDir("step");
        var root = dir["root"];
        Directory.CreateDirectory(Path.Combine(root, "etc"));
        File.WriteAllText(Path.Combine(root, "etc/ld.so.preload"), "/usr/lib/other.so\n");
        var r = Step(dir, Request("deploy", dir, dir["h1.result"], WriteManifest(dir), root, trySeconds: 2), "native");
        Assert.True(r.Status == RemoteStatus.Succeeded && r.RollbackAt is not null, $"{r.Status}: {r.Error}");
        Assert.Contains("/opt/fleet/lib/libfleet.so", File.ReadAllText(Path.Combine(root, "etc/ld.so.preload")));

        // The step has no PowerShell of its own: its watchdog is the safedeploy beside it, which undoes the unconfirmed run.
        var journal = Directory.GetDirectories(Path.Combine(dir["state"], "state", "deployments", "fleetapp"), r.Id!).Single();
        var outcome = Path.Combine(journal, "watchdog.outcome");
        var deadline = DateTime.UtcNow.AddSeconds(120);
        while (!(File.Exists(outcome) && File.ReadAllText(outcome).Contains("\"RolledBack\"", StringComparison.Ordinal)) && DateTime.UtcNow < deadline) Thread.Sleep(100);
        var log = Path.Combine(journal, "watchdog.log");
        Assert.True(File.Exists(outcome) && File.ReadAllText(outcome).Contains("\"RolledBack\"", StringComparison.Ordinal),
            $"no rollback by the watchdog; its log: {(File.Exists(log) ? File.ReadAllText(log) : "(none)")}");
        Assert.Equal("/usr/lib/other.so\n", File.ReadAllText(Path.Combine(root, "etc/ld.so.preload")));
        Assert.False(Directory.Exists(Path.Combine(root, "opt")));
    }

    [Theory]
    [InlineData("engine")]
    [InlineData("native")]
    public void ABadManifest_IsAnErrorResult_WithItsErrorId_AndNothingChanges(string runner)
    {
        using var dir = new TempDir("step");
        var root = dir["root"];
        Directory.CreateDirectory(root);
        var manifest = dir.Write("bad.yaml", "name: fleetapp\nphases:\n  - name: x\n    install: { source: nothing.so, target: relative/path }\n");
        var r = Step(dir, Request("deploy", dir, dir["h1.result"], manifest, root), runner);
        Assert.Equal(RemoteStatus.Error, r.Status);
        Assert.Matches(@"^Manifest\w+: ", r.Error);
        Assert.Empty(Directory.EnumerateFileSystemEntries(root));
        Assert.False(File.Exists(dir["h1.result"]));
    }

    [Fact]
    public void ARollout_SendsTheEngineStepToAHostWithoutPwsh_ButAManifestWithAScriptPhaseRunsInPowerShellThere()
    {
        using var fleet = new SshFleet(1);
        var h = fleet.Hosts[0];
        Arrange(h);
        var inventory = fleet.Inventory(x => Vars(x));
        var plain = Rollout(WriteManifest(fleet.Dir), inventory, fleet.Dir["controller"], "-Verbose");
        Assert.Equal("Succeeded", Final(plain)["h1"].Status);
        Assert.Contains(plain.Verbose, v => v.StartsWith("Host 'h1': Succeeded", StringComparison.Ordinal) && v.Contains("(ssh, the host's engine without PowerShell)"));
        Assert.Contains(plain.Verbose, v => v.StartsWith("Host 'h1': staged in", StringComparison.Ordinal));
        // SafeDeploy's folders on the host are private, but the deployment runs with the login's umask (sshd's, here this
        // test's): the file the run phase made has the mode a shell of that user gives it, not 0600.
        var umask = Convert.ToInt32(Programs.Run("sh", "-c", "umask").Trim(), 8);
        Assert.Equal((UnixFileMode)(0x1B6 & ~umask), File.GetUnixFileMode(Counter(h)));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute,
            File.GetUnixFileMode(Path.Combine(h.State, "state", "fleet", "rollouts")));

        // Again (a new rollout: the first finished): everything is staged, so the probe runs the step in the same ssh call.
        var again = Rollout(WriteManifest(fleet.Dir), inventory, fleet.Dir["controller"], "-Verbose");
        Assert.Equal("Succeeded", Final(again)["h1"].Status);
        Assert.Contains(again.Verbose, v => v.StartsWith("Host 'h1': found staged, and deployed in the same ssh call,", StringComparison.Ordinal));
        Assert.Equal("run\nrun\n", File.ReadAllText(Counter(h)));

        var scripted = Rollout(WriteManifest(fleet.Dir, Manifest.Replace("name: fleetapp", "name: scripted") +
            "\n  - name: ps\n    dependsOn: [use]\n    script:\n      run: \"[IO.File]::WriteAllText('${counter}.ps', 'from PowerShell ' + $PSVersionTable.PSVersion.Major)\"\n"),
            inventory, fleet.Dir["controller"], "-Verbose");
        Assert.Equal("Succeeded", Final(scripted)["h1"].Status);
        Assert.Contains(scripted.Verbose, v => v.StartsWith("Host 'h1': Succeeded", StringComparison.Ordinal) && v.Contains(" ms (ssh), of which", StringComparison.Ordinal));
        Assert.StartsWith("from PowerShell 7", File.ReadAllText(Counter(h) + ".ps"));
    }
}
