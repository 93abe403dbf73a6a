using System.Diagnostics;
using System.Management.Automation;
using System.Text.RegularExpressions;
using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.StateDirectories;

public sealed class StateDirectoryTests : IDisposable
{
    readonly TempDir dir = new("state");
    readonly PsSession ps = new();

    public void Dispose() { ps.Dispose(); dir.Dispose(); }

    static string Mode(string path) => Convert.ToString((int)File.GetUnixFileMode(path) & 0xFFF, 8);

    static void Run(string program, params string[] args) => Programs.Run(program, args);

    [Fact]
    public void TwentyProcesses_OnAFreshHome_AllSucceed_WithTheSameResult_AndExplicitModes()
    {
        var home = dir["home"];
        Directory.CreateDirectory(home);
        var env = new Dictionary<string, string?> { ["HOME"] = home, ["XDG_STATE_HOME"] = null, ["XDG_CACHE_HOME"] = null };
        var outcomes = ProcessSwarm.RunAtOnce(20, _ =>
            "$s = Initialize-StateDirectory -Name 'gpu-tool'; [Console]::Out.WriteLine('RESULT ' + $s.StateDir + '|' + $s.LogDir + '|' + $s.CacheDir + '|' + $s.LockDir + '|' + $s.Created.Count)", env);
        Assert.All(outcomes, o => Assert.True(o.ExitCode == 0, o.ToString()));
        var results = outcomes.Select(o => Regex.Match(o.StdOut, "RESULT (.*)\\|(\\d+)").Groups).ToList();
        Assert.Single(results.Select(g => g[1].Value).Distinct());
        Assert.Equal($"{home}/.local/state/gpu-tool|{home}/.local/state/gpu-tool/log|{home}/.cache/gpu-tool|{home}/.local/state/gpu-tool/locks", results[0][1].Value);
        foreach (var d in new[] { ".local/state/gpu-tool", ".local/state/gpu-tool/log", ".local/state/gpu-tool/locks", ".cache/gpu-tool", ".local/state" })
            Assert.Equal("700", Mode(Path.Combine(home, d)));
    }

    [Fact]
    public void EveryComponentItCreates_GetsTheAskedMode_WhateverTheUmask()
    {
        var basePath = dir["a/b/c"];
        // umask 0 would leave 0777 directories behind mkdir -p; the modes must be set explicitly.
        using var host = HostProcess.StartProgram("/bin/sh", ["-c", $"umask 000; exec '{RepoPaths.HostExecutable}' -Command \"Initialize-StateDirectory -Name t -Path '{basePath}' -Mode 0750 | ForEach-Object {{ \\$_.Created.Count }}\""]);
        var o = host.Wait(TimeSpan.FromMinutes(1));
        Assert.True(o.ExitCode == 0, o.ToString());
        foreach (var d in new[] { "a", "a/b", "a/b/c", "a/b/c/state", "a/b/c/log", "a/b/c/cache", "a/b/c/locks" })
            Assert.Equal("750", Mode(dir[d]));
        Assert.Equal("7", o.StdOut.Trim());
    }

    [Fact]
    public void EveryComponentItCreates_GetsTheAskedOwner_NotOnlyTheLast()
    {
        var basePath = dir["owned/deep"];
        var r = ps.Run("Initialize-StateDirectory -Name t -Path $p -Owner nobody", ("p", basePath));
        Assert.True(!r.AllErrors.Any(), r.Describe());
        foreach (var d in new[] { "owned", "owned/deep", "owned/deep/state", "owned/deep/log", "owned/deep/cache", "owned/deep/locks" })
            Assert.Equal("65534", Owner(dir[d]));
        Assert.Equal("0", Owner(dir.Path)); // what existed before keeps its owner
    }

    static string Owner(string path) => Programs.Run("stat", "-c", "%u", path);

    [Fact]
    public void AnUnknownOwner_IsObjectNotFound_AndCreatesNothing()
    {
        var r = ps.Run("Initialize-StateDirectory -Name t -Path $p -Owner no-such-user-xyz", ("p", dir["o2"]));
        var e = Assert.Single(r.AllErrors);
        Assert.StartsWith("UnknownUser", e.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.ObjectNotFound, e.CategoryInfo.Category);
        Assert.Equal("no-such-user-xyz", e.TargetObject);
        Assert.False(Directory.Exists(dir["o2"]));
    }

    [Fact]
    public void SecondCall_CreatesNothing_AndSaysSo()
    {
        var first = ps.Run("Initialize-StateDirectory -Name t -Path $p", ("p", dir["base"]));
        Assert.Equal(5, ((System.Collections.ICollection)first.Prop(0, "Created")!).Count);
        var second = ps.Run("Initialize-StateDirectory -Name t -Path $p", ("p", dir["base"]));
        Assert.Empty((System.Collections.ICollection)second.Prop(0, "Created")!);
        Assert.Empty(second.Warnings);
    }

    [Fact]
    public void ASymlinkOwnedByAnotherUser_IsRefused_AndNothingIsCreatedWhereItPoints()
    {
        var target = dir["attacker-target"];
        Directory.CreateDirectory(target);
        var link = dir["link"];
        File.CreateSymbolicLink(link, target);
        Run("chown", "-h", "65534:65534", link);
        var r = ps.Run("Initialize-StateDirectory -Name t -Path $p", ("p", Path.Combine(link, "tool")));
        var e = Assert.Single(r.AllErrors);
        Assert.StartsWith("UntrustedSymlink", e.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.SecurityError, e.CategoryInfo.Category);
        Assert.Equal(link, e.TargetObject);
        Assert.Empty(Directory.GetFileSystemEntries(target));
    }

    [Fact]
    public void ASymlinkOwnedByTheUser_IsFollowed()
    {
        var target = dir["mine"];
        Directory.CreateDirectory(target);
        File.CreateSymbolicLink(dir["mylink"], target);
        var r = ps.Run("Initialize-StateDirectory -Name t -Path $p", ("p", Path.Combine(dir["mylink"], "tool")));
        Assert.True(!r.AllErrors.Any(), r.Describe());
        Assert.True(Directory.Exists(Path.Combine(target, "tool", "state")));
    }

    [Fact]
    public void ADirectoryOwnedByAnotherUser_IsRefused()
    {
        var other = dir["other"];
        Directory.CreateDirectory(other);
        Run("chown", "65534:65534", other);
        var r = ps.Run("Initialize-StateDirectory -Name t -Path $p", ("p", Path.Combine(other, "tool")));
        var e = Assert.Single(r.AllErrors);
        Assert.StartsWith("UntrustedDirectory", e.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.SecurityError, e.CategoryInfo.Category);
        Assert.Equal(other, e.TargetObject);
        Assert.False(Directory.Exists(Path.Combine(other, "tool")));
    }

    [Fact]
    public void AWorldWritableDirectoryWithoutStickyBit_IsRefused_ButTmpStyleStickyIsFine()
    {
        var open = dir["open"];
        Directory.CreateDirectory(open);
        Run("chmod", "0777", open);
        var r = ps.Run("Initialize-StateDirectory -Name t -Path $p", ("p", Path.Combine(open, "tool")));
        var e = Assert.Single(r.AllErrors);
        Assert.StartsWith("InsecureDirectory", e.FullyQualifiedErrorId);
        Assert.Equal(open, e.TargetObject);
        Assert.Contains("sticky", e.ToString());
        Assert.False(Directory.Exists(Path.Combine(open, "tool")));

        Run("chmod", "1777", open);
        var ok = ps.Run("Initialize-StateDirectory -Name t -Path $p", ("p", Path.Combine(open, "tool")));
        Assert.True(!ok.AllErrors.Any(), ok.Describe());
    }

    [Fact]
    public void ALooserExistingDirectory_GetsAWarning_AndRepairTightensIt()
    {
        var basePath = dir["loose"];
        ps.Run("Initialize-StateDirectory -Name t -Path $p", ("p", basePath));
        Run("chmod", "0755", Path.Combine(basePath, "state"));
        var warned = ps.Run("Initialize-StateDirectory -Name t -Path $p", ("p", basePath));
        Assert.Contains(warned.Warnings, w => w.Contains("755") && w.Contains("-Repair"));
        Assert.Equal("755", Mode(Path.Combine(basePath, "state")));

        var repaired = ps.Run("Initialize-StateDirectory -Name t -Path $p -Repair", ("p", basePath));
        Assert.Contains(Path.Combine(basePath, "state"), ((IEnumerable<string>)repaired.Prop(0, "Repaired")!));
        Assert.Equal("700", Mode(Path.Combine(basePath, "state")));
    }

    [Theory]
    [InlineData("../evil")]
    [InlineData(".hidden")]
    [InlineData("a/b")]
    public void AnInvalidToolName_IsInvalidArgument_AndCreatesNothing(string name)
    {
        var r = ps.Run("Initialize-StateDirectory -Name $n -Path $p", ("n", name), ("p", dir["names"]));
        var e = Assert.Single(r.AllErrors);
        Assert.StartsWith("InvalidName", e.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.InvalidArgument, e.CategoryInfo.Category);
        Assert.Equal(name, e.TargetObject);
        Assert.False(Directory.Exists(dir["names"]));
    }

    [Fact]
    public void SystemScope_UsesTheSystemdLayout_AndWhatIfCreatesNothing()
    {
        var r = ps.Run("Initialize-StateDirectory -Name sd-whatif-probe -Scope System -WhatIf");
        Assert.Empty(r.Output);
        Assert.False(Directory.Exists("/var/lib/sd-whatif-probe"));
    }

    [Fact]
    public void XdgVariables_AreHonoured()
    {
        using var env = new EnvScope(("XDG_STATE_HOME", dir["xs"]), ("XDG_CACHE_HOME", dir["xc"]));
        var r = ps.Run("Initialize-StateDirectory -Name t");
        Assert.Equal(dir["xs/t"], r.Prop(0, "StateDir"));
        Assert.Equal(dir["xc/t"], r.Prop(0, "CacheDir"));
        Assert.Equal(dir["xs/t/log/t.log"], r.Prop(0, "LogFile"));
    }
}
