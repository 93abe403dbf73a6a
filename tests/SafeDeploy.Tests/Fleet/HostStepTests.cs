using SafeDeploy.Engine.Fleet;
using SafeDeploy.Tests.Infrastructure;
using Xunit;
using static SafeDeploy.Tests.Fleet.FleetTests;

namespace SafeDeploy.Tests.Fleet;

/// <summary>
/// `safedeploy -FleetStep`: a rollout's step run by a host's engine without PowerShell. Locally through the built host with
/// a request on stdin, and in a rollout, where a manifest with a `script` phase still goes through PowerShell.
/// </summary>
public class HostStepTests
{
    static RemoteOutcome Step(TempDir dir, string request)
    {
        var file = dir.Write($"request-{Guid.NewGuid():N}.json", request);
        using var p = HostProcess.StartProgram("sh", ["-c", "exec \"$0\" -FleetStep < \"$1\"", RepoPaths.HostExecutable, file],
            new Dictionary<string, string?> { ["SAFEDEPLOY_MODULE"] = RepoPaths.ModuleManifest });
        var o = p.Wait(TimeSpan.FromMinutes(2));
        Assert.True(o.ExitCode == 0, o.ToString());
        return RemoteScripts.Parse(o.StdOut) ?? throw new Xunit.Sdk.XunitException("no result line: " + o);
    }

    static string Request(string op, TempDir dir, string done, string? manifest = null, string? root = null) =>
        new System.Text.Json.Nodes.JsonObject
        {
            ["op"] = op, ["done"] = done, ["manifest"] = manifest, ["name"] = "fleetapp", ["root"] = root,
            ["stateDirectory"] = dir["state"], ["variables"] = new System.Text.Json.Nodes.JsonObject { ["counter"] = dir["runs.log"] },
        }.ToJsonString();

    [Fact]
    public void Deploy_RunsTheEngineOnce_ASecondRequestReportsTheFirst_AndRollBackRestoresTheRootOnce()
    {
        using var dir = new TempDir("step");
        var root = dir["root"];
        Directory.CreateDirectory(Path.Combine(root, "etc"));
        File.WriteAllText(Path.Combine(root, "etc/ld.so.preload"), "/usr/lib/other.so\n");
        var manifest = WriteManifest(dir);
        var done = dir["h1.result"];

        var first = Step(dir, Request("deploy", dir, done, manifest, root));
        Assert.Equal((RemoteStatus.Succeeded, 1, "engine"), (first.Status, first.Generation, first.Via));
        Assert.Equal("library bytes v2\n", File.ReadAllText(Path.Combine(root, "opt/fleet/lib/libfleet.so")));
        Assert.Equal("/usr/lib/other.so\n/opt/fleet/lib/libfleet.so\n", File.ReadAllText(Path.Combine(root, "etc/ld.so.preload")));
        Assert.Equal("run\n", File.ReadAllText(dir["runs.log"]));

        // A controller that died after the step asks again: the same result, and nothing ran twice.
        var again = Step(dir, Request("deploy", dir, done, manifest, root));
        Assert.Equal((first.Id, first.Generation), (again.Id, again.Generation));
        Assert.Equal("run\n", File.ReadAllText(dir["runs.log"]));

        var undone = Step(dir, Request("rollback", dir, done));
        Assert.Equal((RemoteStatus.Undone, first.Id), (undone.Status, undone.Id));
        Assert.False(Directory.Exists(Path.Combine(root, "opt")));
        Assert.Equal("/usr/lib/other.so\n", File.ReadAllText(Path.Combine(root, "etc/ld.so.preload")));
        var twice = Step(dir, Request("rollback", dir, done));
        Assert.Equal((RemoteStatus.Undone, undone.Generation), (twice.Status, twice.Generation));

        // A host this rollout never deployed has nothing to roll back.
        Assert.Equal(RemoteStatus.NotDeployed, Step(dir, Request("rollback", dir, dir["h2.result"])).Status);
    }

    [Fact]
    public void ABadManifest_IsAnErrorResult_WithItsErrorId_AndNothingChanges()
    {
        using var dir = new TempDir("step");
        var root = dir["root"];
        Directory.CreateDirectory(root);
        var manifest = dir.Write("bad.yaml", "name: fleetapp\nphases:\n  - name: x\n    install: { source: nothing.so, target: relative/path }\n");
        var r = Step(dir, Request("deploy", dir, dir["h1.result"], manifest, root));
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
