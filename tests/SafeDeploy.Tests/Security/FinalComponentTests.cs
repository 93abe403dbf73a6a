using System.Text;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Files;
using SafeDeploy.Engine.Locking;
using SafeDeploy.Engine.Platform;
using SafeDeploy.Engine.StateDirectories;
using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.Security;

/// <summary>
/// Issue 12 items 1 and 10 against a real unprivileged user (uid 65534): lock files, Edit-LockedFile targets and
/// Write-StateLog files never follow a planted link, never open a FIFO, never write a record into someone else's file,
/// and holder records are shown for what they are.
/// </summary>
public sealed class FinalComponentTests : IDisposable
{
    readonly Attacker attacker = new();
    readonly TempDir victim = new("victim");

    public void Dispose() { attacker.Dispose(); victim.Dispose(); }

    static SafeDeployException Refused(Action act)
    {
        var task = Task.Run(act);
        bool done;
        try { done = task.Wait(TimeSpan.FromSeconds(30)); } catch (AggregateException) { done = true; }
        Assert.True(done, "the call hung (a FIFO opened for writing?)");
        var e = Assert.IsType<SafeDeployException>(Assert.IsType<AggregateException>(task.Exception).InnerException);
        return e;
    }

    // Reads and writes that take no .NET flock (the file's lock is held while we look).
    static string Read(string path) => Encoding.UTF8.GetString(LockedFileEditor.ReadUnlocked(path)!);

    static void WriteRaw(string path, string text)
    {
        using var fd = Native.Open(path, Native.O_WRONLY | Native.O_TRUNC);
        Native.WriteOnce(fd, Encoding.UTF8.GetBytes(text), path);
    }

    string RootFile(string name, string content)
    {
        var f = victim.Write(name, content);
        File.SetUnixFileMode(f, (UnixFileMode)0x180);
        return f;
    }

    [Fact]
    public void LockFile_ThatIsAPlantedSymlink_IsRefused_AndTheTargetIsNeverTruncatedOrWritten()
    {
        var target = RootFile("shadow", "");
        var dir = attacker.OwnedDirectory("locks");
        attacker.Symlink(target, Path.Combine(dir, "job.lock"));
        var e = Refused(() => FileLock.Acquire(Path.Combine(dir, "job.lock")).Dispose());
        Assert.Equal("SymlinkRefused", e.ErrorId);
        Assert.Equal(ErrorKind.SecurityError, e.Kind);
        Assert.Equal("", File.ReadAllText(target));
    }

    [Fact]
    public void LockFile_ThatIsAFifo_IsRefused_WithoutHanging()
    {
        var dir = attacker.StickyDirectory("tmp");
        attacker.Fifo(Path.Combine(dir, "job.lock"));
        Assert.Equal("NotARegularFile", Refused(() => FileLock.Acquire(Path.Combine(dir, "job.lock")).Dispose()).ErrorId);
    }

    [Fact]
    public void LockFile_OwnedByTheAttackerInItsOwnDirectory_IsRefused()
    {
        var dir = attacker.OwnedDirectory("locks");
        attacker.WriteFile(Path.Combine(dir, "job.lock"), "");
        Assert.Equal("UntrustedFile", Refused(() => FileLock.Acquire(Path.Combine(dir, "job.lock")).Dispose()).ErrorId);
    }

    [Fact]
    public void LockFile_WithASecondName_GetsNoHolderRecord_SoAnotherFileIsNeverOverwritten()
    {
        var other = RootFile("empty-config", "");
        var lockPath = victim["job.lock"];
        Programs.Run("ln", other, lockPath); // the same inode under two names (nlink 2)
        using (FileLock.Acquire(lockPath)) Assert.Equal("", Read(other));
        Assert.Equal("", File.ReadAllText(other));
    }

    [Fact]
    public void NewLockFiles_Are0600()
    {
        using (FileLock.Acquire(victim["new.lock"])) { }
        Assert.Equal("600", Programs.Run("stat", "-c", "%a", victim["new.lock"]));
    }

    [Fact]
    public void EditTarget_ThatIsAPlantedSymlink_IsRefused_AndNothingIsCopiedNextToIt()
    {
        var secret = RootFile("secret", "token=abc\n");
        var dir = attacker.OwnedDirectory("conf");
        attacker.Symlink(secret, Path.Combine(dir, "app.conf"));
        var e = Refused(() => LockedFileEditor.Edit(Path.Combine(dir, "app.conf"), t => (t ?? "") + "x=1\n"));
        Assert.Equal("SymlinkRefused", e.ErrorId);
        Assert.Equal("token=abc\n", File.ReadAllText(secret));
        Assert.Equal(["app.conf"], Directory.GetFileSystemEntries(dir).Select(Path.GetFileName));
    }

    [Fact]
    public void StateLog_ThatIsAPlantedSymlink_OrFifo_IsRefused_AndRootsFileGetsNoLine()
    {
        var passwd = RootFile("passwd", "root:x:0:0::/root:/bin/sh\n");
        var dir = attacker.OwnedDirectory("log");
        attacker.Symlink(passwd, Path.Combine(dir, "tool.log"));
        Assert.Equal("SymlinkRefused", Refused(() => StateLog.Append(Path.Combine(dir, "tool.log"), "evil::0:0::/:/bin/sh")).ErrorId);
        Assert.Equal("root:x:0:0::/root:/bin/sh\n", File.ReadAllText(passwd));
        attacker.Fifo(Path.Combine(dir, "other.log"));
        Assert.Equal("NotARegularFile", Refused(() => StateLog.Append(Path.Combine(dir, "other.log"), "x")).ErrorId);
    }

    [Fact]
    public void HolderRecord_PlantedByAnotherUser_IsShownAsSuch_WithTheKernelsUid_AndControlCharactersStripped()
    {
        var dir = attacker.StickyDirectory("tmp");
        var lockPath = Path.Combine(dir, "job.lock");
        attacker.WriteFile(lockPath, "");                  // the attacker's file, in /tmp-style shared space
        using var holder = new FlockHolder(lockPath, 30);  // root's flock(1) takes its lock
        var pid = LockInspector.Inspect(lockPath).Pid!.Value;
        var proc = ProcessInfo.Get(pid)!;
        // A record that matches the real holder in every field the old reader checked, written by the attacker.
        attacker.WriteFile(lockPath, $"{{\"safedeployLockHolder\":1,\"pid\":{pid},\"host\":\"h\",\"processStartTime\":\"{proc.StartTime:O}\",\"bootId\":\"{ProcessInfo.BootId}\"," +
            "\"commandLine\":\"backup \\u001b[2J\\u001b]0;pwned\\u0007\",\"since\":\"2020-01-01T00:00:00Z\",\"purpose\":\"x\"}");
        var seen = LockInspector.Inspect(lockPath);
        Assert.True(seen.IsHeld);
        Assert.Equal(0u, seen.Uid);
        Assert.False(seen.RecordTrusted);
        Assert.Contains("uid 65534", seen.RecordNote);
        Assert.DoesNotContain("backup", seen.CommandLine ?? "");
        Assert.Null(seen.Since);
        Assert.DoesNotContain('\u001b', seen.Describe());
    }

    [Fact]
    public void HolderRecord_WithoutAStartTime_IsNotTrusted_AndTrustedTextIsStrippedOfControlCharacters()
    {
        var lockPath = victim["job.lock"];
        using var holder = new FlockHolder(lockPath, 30);
        var pid = LockInspector.Inspect(lockPath).Pid!.Value;
        var proc = ProcessInfo.Get(pid)!;
        string Record(string? start) =>
            $"{{\"safedeployLockHolder\":1,\"pid\":{pid},\"host\":\"h\",{(start is null ? "" : $"\"processStartTime\":\"{start}\",")}\"bootId\":\"{ProcessInfo.BootId}\"," +
            "\"commandLine\":\"job\\u001b[2J\",\"since\":\"2020-01-01T00:00:00Z\",\"purpose\":\"nightly\\u001b]0;x\\u0007\"}";
        WriteRaw(lockPath, Record(null));
        var noStart = LockInspector.Inspect(lockPath);
        Assert.False(noStart.RecordTrusted);
        Assert.Contains("no process start time", noStart.RecordNote);
        Assert.Null(noStart.Purpose);

        WriteRaw(lockPath, Record(proc.StartTime!.Value.ToString("O")));
        var trusted = LockInspector.Inspect(lockPath);
        Assert.True(trusted.RecordTrusted, trusted.RecordNote);
        Assert.Equal("nightly?]0;x?", trusted.Purpose);
        Assert.Equal("job?[2J", trusted.CommandLine);
    }

    [Fact]
    public void ARace_SwappingAParentDirectoryForALink_NeverPutsALockFileIntoTheLinksTarget()
    {
        var dir = attacker.OwnedDirectory("race");
        var root = Directory.CreateDirectory(victim["root-only"]).FullName;
        var swapped = Path.Combine(dir, "d");
        attacker.StartSwapping(swapped, root);
        int refused = 0, locked = 0;
        var deadline = DateTime.UtcNow.AddSeconds(20);
        for (int i = 0; i < 300 && DateTime.UtcNow < deadline; i++)
        {
            try { using (FileLock.Acquire(Path.Combine(swapped, "x.lock"), new LockOptions { Timeout = TimeSpan.FromSeconds(5) })) locked++; }
            catch (SafeDeployException) { refused++; }
        }
        Assert.True(refused + locked > 0);
        Assert.Empty(Directory.GetFileSystemEntries(root));
    }
}
