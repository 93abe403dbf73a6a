using System.Diagnostics;
using System.Management.Automation;
using System.Text.Json.Nodes;
using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.Files;

public sealed class EditLockedFileTests : IDisposable
{
    readonly TempDir dir = new("edit");
    readonly PsSession ps = new();

    public void Dispose() { ps.Dispose(); dir.Dispose(); }

    [Fact]
    public void EightProcesses_EachEnsuringItsOwnKey50Times_LoseNothing_AndNeverTearTheFile()
    {
        var npmrc = dir.Write(".npmrc", "registry=https://registry.example.invalid/\n");
        const int processes = 8, rounds = 50;
        var outcomes = ProcessSwarm.RunAtOnce(processes, i =>
            $"for ($n = 0; $n -lt {rounds}; $n++) {{ Edit-LockedFile -Path '{npmrc}' -EnsureLine ('key{i}=' + $n) -Key 'key{i}=' }}");
        Assert.All(outcomes, o => Assert.True(o.ExitCode == 0, o.ToString()));
        var lines = File.ReadAllLines(npmrc);
        Assert.Equal(processes + 1, lines.Length);
        Assert.Equal("registry=https://registry.example.invalid/", lines[0]);
        for (int i = 0; i < processes; i++) Assert.Contains($"key{i}={rounds - 1}", lines);
        Assert.Empty(Directory.GetFiles(dir.Path, ".*.tmp"));
    }

    [Fact]
    public void EightProcesses_MergingJson_KeepEveryKey()
    {
        var settings = dir.Write("settings.json", "{\n  \"editor\": { \"fontSize\": 12, \"tabSize\": 4 },\n  \"keep\": true\n}\n");
        const int processes = 8, rounds = 25;
        var outcomes = ProcessSwarm.RunAtOnce(processes, i =>
            $"for ($n = 0; $n -lt {rounds}; $n++) {{ Edit-LockedFile -Path '{settings}' -MergeJson @{{ editor = @{{ 'k{i}' = $n }}; 'top{i}' = 'v' }} }}");
        Assert.All(outcomes, o => Assert.True(o.ExitCode == 0, o.ToString()));
        var json = JsonNode.Parse(File.ReadAllText(settings))!;
        Assert.True((bool)json["keep"]!);
        Assert.Equal(12, (int)json["editor"]!["fontSize"]!);
        Assert.Equal(4, (int)json["editor"]!["tabSize"]!);
        for (int i = 0; i < processes; i++)
        {
            Assert.Equal(rounds - 1, (int)json["editor"]![$"k{i}"]!);
            Assert.Equal("v", (string)json[$"top{i}"]!);
        }
    }

    [Fact]
    public void InvalidJson_IsAClearError_AndTheFileIsUntouched()
    {
        var bad = dir.Write("bad.json", "{ \"a\": 1,, }");
        var before = File.ReadAllBytes(bad);
        var r = ps.Run("Edit-LockedFile -Path $f -MergeJson @{ b = 2 }", ("f", bad));
        var e = Assert.Single(r.AllErrors);
        Assert.StartsWith("InvalidJson", e.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.InvalidData, e.CategoryInfo.Category);
        Assert.Equal(bad, e.TargetObject);
        Assert.Contains("line 1", e.ToString());
        Assert.Equal(before, File.ReadAllBytes(bad));
        Assert.Empty(Directory.GetFiles(dir.Path, ".*.tmp"));
    }

    [Fact]
    public void EnsureLine_ThatIsAlreadyRight_WritesNothing()
    {
        var f = dir.Write("rc", "a=1\nprefix=~/.npm-global\n");
        var inode = new FileInfo(f).LastWriteTimeUtc;
        var ino = Stat(f);
        var r = ps.Run("Edit-LockedFile -Path $f -EnsureLine 'prefix=~/.npm-global' -Key 'prefix=' -PassThru", ("f", f));
        Assert.Equal(false, r.Prop(0, "Changed"));
        Assert.Equal(ino, Stat(f)); // same inode: not even rewritten
        Assert.Equal(inode, new FileInfo(f).LastWriteTimeUtc);
    }

    [Fact]
    public void EnsureLine_ReplacesTheKeysLine_AndKeepsModeAndOwner()
    {
        var f = dir.Write("owned", "x=1\nprefix=/old\ny=2\n");
        Programs.Run("chown", "65534:65534", f);
        File.SetUnixFileMode(f, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead);
        var r = ps.Run("Edit-LockedFile -Path $f -EnsureLine 'prefix=/new' -Key 'prefix='", ("f", f));
        Assert.True(!r.AllErrors.Any(), r.Describe());
        Assert.Equal("x=1\nprefix=/new\ny=2\n", File.ReadAllText(f));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead, File.GetUnixFileMode(f));
        Assert.Equal("65534:65534", StatOwner(f));
    }

    [Fact]
    public void WhatIf_ShowsTheChangeAsADiff_AndChangesNothing()
    {
        var f = dir.Write("w", "a=1\nb=2\n");
        var before = File.ReadAllBytes(f);
        var host = HostProcess.Run($"Edit-LockedFile -Path '{f}' -EnsureLine 'b=3' -Key 'b=' -WhatIf");
        Assert.Equal(0, host.ExitCode);
        Assert.Contains("- b=2", host.StdOut + host.StdErr);
        Assert.Contains("+ b=3", host.StdOut + host.StdErr);
        Assert.Equal(before, File.ReadAllBytes(f));
    }

    [Fact]
    public void ATransformThatReturnsNothing_LeavesTheFileUntouched()
    {
        var f = dir.Write("t", "keep me\n");
        var r = ps.Run("Edit-LockedFile -Path $f -Transform { param($text) }", ("f", f));
        var e = Assert.Single(r.AllErrors);
        Assert.StartsWith("TransformReturnedNothing", e.FullyQualifiedErrorId);
        Assert.Equal("keep me\n", File.ReadAllText(f));

        var ok = ps.Run("Edit-LockedFile -Path $f -Transform { param($text) $text.ToUpperInvariant() }", ("f", f));
        Assert.True(!ok.AllErrors.Any(), ok.Describe());
        Assert.Equal("KEEP ME\n", File.ReadAllText(f));
    }

    [Fact]
    public void AnEditorWaitsForAShellScriptHoldingFlockOnTheFile()
    {
        var f = dir.Write("shared.conf", "a=1\n");
        using var holder = new FlockHolder(f, 30);
        var r = ps.Run("Edit-LockedFile -Path $f -EnsureLine 'b=2' -TimeoutSec 1", ("f", f));
        var e = Assert.Single(r.AllErrors);
        Assert.StartsWith("LockTimeout", e.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.ResourceBusy, e.CategoryInfo.Category);
        Assert.Equal("a=1\n", System.Text.Encoding.UTF8.GetString(SafeDeploy.Engine.Files.LockedFileEditor.ReadUnlocked(f)!));
    }

    [Fact]
    public void AMissingDirectory_IsCreated_AsTheEditFileActionDoes_WithTheAskedModeAndOwner()
    {
        var f = dir["nodir/deeper/x.conf"];
        var r = ps.Run("Edit-LockedFile -Path $f -EnsureLine 'a=1' -Mode 0600 -Owner nobody", ("f", f));
        Assert.Empty(r.AllErrors);
        Assert.Equal("a=1\n", File.ReadAllText(f));
        Assert.Equal("600 65534", Programs.Run("stat", "-c", "%a %u", f));
        Assert.Equal("755", Programs.Run("stat", "-c", "%a", dir["nodir/deeper"]));
        Assert.Equal(["x.conf"], Directory.GetFileSystemEntries(dir["nodir/deeper"]).Select(Path.GetFileName));
    }

    [Fact]
    public void ANewFile_WhoseEditFails_LeavesNoFile_NoLockFile_AndNoDirectory()
    {
        var f = dir["made/x.conf"];
        var r = ps.Run("Edit-LockedFile -Path $f -Transform { throw 'no' }", ("f", f));
        Assert.Single(r.AllErrors);
        Assert.False(Directory.Exists(dir["made"]));
        Assert.Empty(Directory.GetFileSystemEntries(dir.Path));
    }

    [Fact]
    public void AFileCreatedByFlock1_IsLockedItself_SoShellScriptsCooperate()
    {
        var f = dir["shared.conf"];
        using var holder = new FlockHolder(f, 30); // flock(1) creates the file empty and holds its lock
        var r = ps.Run("Edit-LockedFile -Path $f -EnsureLine 'b=2' -TimeoutSec 1", ("f", f));
        Assert.StartsWith("LockTimeout", Assert.Single(r.AllErrors).FullyQualifiedErrorId);
        Assert.Empty(SafeDeploy.Engine.Files.LockedFileEditor.ReadUnlocked(f)!);
    }

    static string Stat(string f) => Programs.Run("stat", "-c", "%i", f);
    static string StatOwner(string f) => Programs.Run("stat", "-c", "%u:%g", f);
}
