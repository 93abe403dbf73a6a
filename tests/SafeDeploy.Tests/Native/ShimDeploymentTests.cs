using System.Collections;
using System.Management.Automation;
using SafeDeploy.Engine.Platform;
using SafeDeploy.Engine.Services;
using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.NativeShim;

/// <summary>
/// A sandbox with examples/shim/deploy.yaml deployed once (generation 1, the sample service running shim version 1),
/// shared by the rollback suite: every test starts from "some good generation is deployed and healthy" and most of them
/// prove that it is exactly that again afterwards. Dispose kills the sample service.
/// </summary>
public sealed class DeployedShim : IDisposable
{
    int nextVersion = 1;

    public DeployedShim()
    {
        Box = new ShimSandbox();
        State = Path.Combine(Box.Path, "state");
        Build = Path.Combine(Box.Path, "build");
        Ps = new PsSession();
        var first = Deploy(NextVersion());
        if (first.Status(0) != "Succeeded") throw new InvalidOperationException("baseline deployment failed:\n" + first.Describe());
    }

    public ShimSandbox Box { get; }
    public PsSession Ps { get; }
    public string State { get; }
    public string Build { get; }
    public static string Manifest => Path.Combine(RepoPaths.Root, "examples", "shim", "deploy.yaml");
    public string Library => Box["/opt/shim/lib/libshim.so"];
    public string PreloadFile => Box["/etc/ld.so.preload"];
    public string PidFile => Box["/run/shim-sample.pid"];
    public Uri Health => Box.HealthUrl;
    public string CurrentVersion { get; set; } = "";

    public string NextVersion() => (nextVersion++).ToString();

    public Hashtable Variables(string version, params (string Key, string Value)[] extra)
    {
        var vars = new Hashtable
        {
            ["version"] = version, ["port"] = Box.Port.ToString(), ["build"] = Build, ["serviceProgram"] = ShimFixtures.Service,
            ["validateTimeout"] = "2s", ["healthTimeout"] = "1500ms", ["stopTimeout"] = "2s",
        };
        foreach (var (k, v) in extra) vars[k] = v;
        return vars;
    }

    public PsResult Deploy(string version, params (string Key, string Value)[] extra)
    {
        var r = Ps.Run("Invoke-SafeDeploy -Manifest $m -Root $root -StateDirectory $state -Variables $vars",
            ("m", Manifest), ("root", Box.Root), ("state", State), ("vars", Variables(version, extra)));
        if (r.Output.Count == 1 && r.Status(0) == "Succeeded") CurrentVersion = version;
        Box.CurrentPid();
        TrackPid();
        return r;
    }

    public int? TrackPid()
    {
        try { return int.TryParse(File.ReadAllText(PidFile).Trim(), out var p) ? Box.Track(p) : null; }
        catch (IOException) { return null; }
    }

    /// <summary>Every file under the root with its bytes, except the pid file and the service's log (which a restart changes).</summary>
    public SortedDictionary<string, string> Snapshot()
    {
        var files = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var f in Directory.EnumerateFileSystemEntries(Box.Root, "*", SearchOption.AllDirectories))
        {
            var rel = Path.GetRelativePath(Box.Root, f);
            if (rel.StartsWith("run/") || rel.StartsWith("var/log/")) continue;
            files[rel] = Directory.Exists(f) ? "<dir>" : Convert.ToHexString(File.ReadAllBytes(f)) + " mode " + Convert.ToString((int)File.GetUnixFileMode(f), 8);
        }
        return files;
    }

    /// <summary>The service runs, is healthy, reports <paramref name="version"/> and maps the installed library file.</summary>
    public int AssertServing(string version)
    {
        var body = ShimSandbox.Get(Health);
        Assert.StartsWith("200 ok shim=" + version + " ", body);
        var pid = TrackPid() ?? throw new Xunit.Sdk.XunitException("no pid file");
        Assert.Contains($"pid={pid} ", body);
        Assert.True(LoadedLibraries.Check(pid, Library).Loaded, $"pid {pid} does not map {Library}");
        return pid;
    }

    public void Dispose()
    {
        Box.Dispose();
        Ps.Dispose();
    }
}

[CollectionDefinition("DeployedShim")]
public sealed class DeployedShimCollection : ICollectionFixture<DeployedShim> { }

[Collection("DeployedShim")]
public class ShimDeploymentTests(DeployedShim shim)
{
    static string Status(PsResult r) => r.Status(0);

    static Dictionary<string, (string Status, string? Error, string Output)> Phases(PsResult r) =>
        ((IEnumerable)r.Prop(0, "Phases")!).Cast<object>().Select(PSObject.AsPSObject)
            .ToDictionary(p => (string)p.Properties["Name"].Value, p => (p.Status(), p.Properties["Error"].Value as string, (string)p.Properties["Output"].Value));

    [Fact]
    public void GoodShim_Deploys_HealthyAndMapped_AsANewGeneration()
    {
        int generationBefore = CurrentGeneration();
        var version = shim.NextVersion();
        var r = shim.Deploy(version);
        Assert.True(Status(r) == "Succeeded", r.Describe());
        Assert.Empty(r.Errors);
        Assert.All(Phases(r).Values, p => Assert.Equal("Succeeded", p.Status));
        var generation = (int)r.Prop(0, "Generation")!;
        Assert.True(generation > generationBefore, $"generation {generation} after {generationBefore}");
        Assert.Equal(ShimSandbox.LibraryEntry.Replace("/opt/shim/libshim.so", "/opt/shim/lib/libshim.so") + "\n", File.ReadAllText(shim.PreloadFile));
        Assert.Equal(File.ReadAllBytes(Path.Combine(shim.Build, "libshim.so")), File.ReadAllBytes(shim.Library));
        shim.AssertServing(version);

        var history = shim.Ps.Run("Get-SafeDeployHistory -Name shim -StateDirectory $state", ("state", shim.State));
        var last = history.Output[^1];
        Assert.Equal("Succeeded", last.Status());
        Assert.Equal(generation, last.Properties["Generation"].Value);
        Assert.Equal(generation, CurrentGeneration());
    }

    /// <summary>The generation of the latest run still standing (Succeeded), from Get-SafeDeployHistory.</summary>
    int CurrentGeneration() => (int)shim.Ps.Run("(Get-SafeDeployHistory -Name shim -StateDirectory $state | Where-Object Status -eq Succeeded)[-1].Generation",
        ("state", shim.State)).Output[^1].BaseObject;

    [Theory]
    [InlineData("does-not-compile", "build", "shimSource", "broken.c", "exited with code")]
    [InlineData("no-exported-symbol", "validate", "shimDefines", "-DSHIM_HIDE_VERSION", "shim_version")]
    [InlineData("constructor-crashes", "validate", "shimDefines", "-DSHIM_CRASH_IN_CONSTRUCTOR", "SIGSEGV")]
    [InlineData("constructor-hangs", "validate", "shimDefines", "-DSHIM_HANG_IN_CONSTRUCTOR", "hangs")]
    [InlineData("fails-health-check", "health", "shimDefines", "-DSHIM_BREAK_UNAME", "503")]
    public void BrokenVariant_FailsAtItsPhase_AndTheMachineIsBackByteForByte(string variant, string failingPhase, string key, string value, string because)
    {
        var before = shim.Snapshot();
        var previous = shim.CurrentVersion;
        var r = shim.Deploy(shim.NextVersion(), (key, value));

        Assert.True(Status(r) == "RolledBack", $"{variant}: {r.Describe()}");
        var phases = Phases(r);
        Assert.Equal("Failed", phases[failingPhase].Status);
        Assert.Contains(because, phases[failingPhase].Error);
        Assert.All(phases.Where(p => p.Value.Status == "Succeeded"), p => Assert.Fail($"phase {p.Key} was not rolled back"));
        var error = Assert.Single(r.Errors);
        Assert.StartsWith("DeploymentRolledBack", error.FullyQualifiedErrorId);

        Assert.Equal(before, shim.Snapshot()); // previous library, previous ld.so.preload, nothing left behind
        shim.AssertServing(previous);          // a healthy service on the previous library
    }

    [Fact]
    public void DiskSpaceCheckFails_NothingChanges_NotEvenTheService()
    {
        var before = shim.Snapshot();
        int pid = shim.AssertServing(shim.CurrentVersion);
        var r = shim.Deploy(shim.NextVersion(), ("minFree", "999999GB"));
        Assert.Equal("Failed", Status(r));
        var phases = Phases(r);
        Assert.Equal("Failed", phases["checks"].Status);
        Assert.Contains("MiB free", phases["checks"].Error);
        Assert.All(phases.Where(p => p.Key != "checks"), p => Assert.Equal("Skipped", p.Value.Status));
        Assert.Equal(before, shim.Snapshot());
        Assert.Equal(pid, shim.AssertServing(shim.CurrentVersion)); // the very same process: never stopped
    }

    [Fact]
    public void ServiceStopHangs_IsEscalatedToSigkill_AndTheDeploymentContinues()
    {
        RestartIgnoringTerm();
        var version = shim.NextVersion();
        var r = shim.Deploy(version, ("stopTimeout", "500ms"));
        Assert.True(Status(r) == "Succeeded", r.Describe());
        Assert.Contains("escalated", Phases(r)["stop"].Output);
        Assert.Contains(r.Warnings, w => w.Contains("SIGKILL"));
        shim.AssertServing(version);
    }

    [Fact]
    public void ServiceStopHangs_WithoutEscalation_RollsBack_AndTheOldServiceKeepsServing()
    {
        int pid = RestartIgnoringTerm();
        var before = shim.Snapshot();
        var r = shim.Deploy(shim.NextVersion(), ("stopTimeout", "500ms"), ("escalate", "false"));
        try
        {
            Assert.True(Status(r) == "RolledBack", r.Describe());
            Assert.Contains("escalation is off", Phases(r)["stop"].Error);
            Assert.Equal(before, shim.Snapshot());
            Assert.Equal(pid, shim.AssertServing(shim.CurrentVersion));
        }
        finally { RestartNormally(); }
    }

    [Fact]
    public void DeployerKilledBetweenInstallAndRestart_TheNextRunRestores()
    {
        var before = shim.Snapshot();
        var previous = shim.CurrentVersion;
        var inode = Native.Stat(shim.Library)!.Inode;
        var script = "Invoke-SafeDeploy -Manifest $env:M -Root $env:R -StateDirectory $env:S -Variables @{ version = $env:V; port = $env:P; build = $env:B; serviceProgram = $env:SP; validateTimeout = '2s'; healthTimeout = '1500ms'; stopTimeout = '2s' }";
        var env = new Dictionary<string, string?>
        {
            ["M"] = DeployedShim.Manifest, ["R"] = shim.Box.Root, ["S"] = shim.State, ["V"] = shim.NextVersion(), ["P"] = shim.Box.Port.ToString(),
            ["B"] = shim.Build, ["SP"] = ShimFixtures.Service,
        };
        using (var deployer = HostProcess.Start(script, env))
        {
            // The install replaces the library by rename (a new inode): kill -9 the deployer the moment that happened.
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            while (Native.Stat(shim.Library)?.Inode == inode && !deployer.HasExited && DateTime.UtcNow < deadline) Thread.Sleep(1);
            deployer.Signal(9);
            deployer.Wait(TimeSpan.FromSeconds(30));
        }
        shim.TrackPid();
        Assert.NotEqual(before, shim.Snapshot()); // the kill left the sandbox half-deployed

        var next = shim.Ps.Run("Invoke-SafeDeploy -Manifest $m -Root $root -StateDirectory $state -Variables $vars -Phase checks",
            ("m", DeployedShim.Manifest), ("root", shim.Box.Root), ("state", shim.State), ("vars", shim.Variables(shim.NextVersion())));
        Assert.True(Status(next) == "Succeeded", next.Describe());
        Assert.Single((IEnumerable<string>)next.Prop(0, "RecoveredRuns")!);
        Assert.Contains(next.Warnings, w => w.Contains("rolling it back"));
        Assert.Equal(before, shim.Snapshot());
        shim.AssertServing(previous);
    }

    [Fact]
    public void UndoAfterAGoodDeploy_BringsBackThePreviousGeneration_Healthy()
    {
        var before = shim.Snapshot();
        var previous = shim.CurrentVersion;
        var generationBefore = CurrentGeneration();
        var version = shim.NextVersion();
        Assert.Equal("Succeeded", Status(shim.Deploy(version)));
        Assert.True(CurrentGeneration() > generationBefore);
        shim.AssertServing(version);

        var undo = shim.Ps.Run("Undo-SafeDeploy -Name shim -StateDirectory $state -Confirm:$false", ("state", shim.State));
        shim.CurrentVersion = previous;
        Assert.True(undo.Output.Count == 1 && Status(undo) == "Undone", undo.Describe());
        Assert.Empty(undo.Errors);
        shim.TrackPid();
        Assert.Equal(before, shim.Snapshot());
        shim.AssertServing(previous);
        Assert.Equal(generationBefore, undo.Prop(0, "Generation"));
        Assert.Equal(generationBefore, CurrentGeneration());
        // Put the suite's state back to "the latest generation is deployed": the undone run is not the current one.
        Assert.Equal("Succeeded", Status(shim.Deploy(shim.NextVersion())));
    }

    [Fact]
    public void TryMode_Unconfirmed_TheWatchdogPutsThePreviousShimBack_AfterTheDeployerIsGone()
    {
        var before = shim.Snapshot();
        var previous = shim.CurrentVersion;
        var version = shim.NextVersion();
        var env = new Dictionary<string, string?>
        {
            ["M"] = DeployedShim.Manifest, ["R"] = shim.Box.Root, ["S"] = shim.State, ["V"] = version, ["P"] = shim.Box.Port.ToString(),
            ["B"] = shim.Build, ["SP"] = ShimFixtures.Service,
        };
        var deployer = HostProcess.Run("Invoke-SafeDeploy -Manifest $env:M -Root $env:R -StateDirectory $env:S -TrySeconds 2 -Variables @{ version = $env:V; port = $env:P; build = $env:B; serviceProgram = $env:SP; validateTimeout = '2s'; healthTimeout = '1500ms'; stopTimeout = '2s' }", env);
        Assert.True(deployer.ExitCode == 0, deployer.ToString());
        shim.AssertServing(version); // deployed, on trial

        var deadline = DateTime.UtcNow.AddSeconds(60);
        string? LastStatus() => shim.Ps.Run("(Get-SafeDeployHistory -Name shim -StateDirectory $state)[-1]", ("state", shim.State)).Output[^1].Status();
        while (LastStatus() != "Undone" && DateTime.UtcNow < deadline) Thread.Sleep(250);
        Assert.Equal("Undone", LastStatus());
        shim.TrackPid();
        Assert.Equal(before, shim.Snapshot());
        shim.AssertServing(previous);
    }

    /// <summary>Restarts the running sample service (outside any deployment) so that it ignores SIGTERM.</summary>
    int RestartIgnoringTerm() => Restart(ignoreTerm: true);

    void RestartNormally() => Restart(ignoreTerm: false);

    int Restart(bool ignoreTerm)
    {
        var manager = new ProcessServiceManager(new ProcessServiceOptions
        {
            Command = [ShimFixtures.Service, shim.Box.Port.ToString()], PidFile = shim.PidFile, LogFile = shim.Box["/var/log/shim-sample.log"],
            PreloadFile = shim.PreloadFile, Root = shim.Box.Root, StopTimeout = TimeSpan.FromMilliseconds(300),
            Environment = ignoreTerm ? new Dictionary<string, string> { ["SAMPLE_IGNORE_TERM"] = "1" } : new Dictionary<string, string>(),
        });
        manager.StopAsync(NullReporter.Instance, default).GetAwaiter().GetResult();
        var pid = shim.Box.Track(manager.StartAsync(NullReporter.Instance, default).GetAwaiter().GetResult().Pid);
        shim.AssertServing(shim.CurrentVersion);
        return pid;
    }
}
