using SafeDeploy.Tests.Faults;
using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.Files;

/// <summary>
/// Issue 17 on a real full filesystem (a small tmpfs mounted by the test): every ENOSPC is DiskFull naming the mount,
/// the first failure of a fresh process included; nothing half-written or left behind; a run with space again succeeds.
/// </summary>
public sealed class DiskFullTests
{
    // Each case runs in a fresh host process, so its failure is the first failing call of that process.
    static string Report(string command) =>
        $"try {{ {command} -ErrorAction Stop; [Console]::WriteLine('RESULT OK') }} catch {{ [Console]::WriteLine('RESULT ' + $_.FullyQualifiedErrorId + ' | ' + $_.CategoryInfo.Category + ' | ' + $_.Exception.Message + ' | ' + $_.ErrorDetails.RecommendedAction) }}";

    static string Result(string command)
    {
        var r = HostProcess.Run(Report(command), timeout: TimeSpan.FromMinutes(2));
        Assert.True(r.ExitCode is 0 or 1, r.ToString()); // 1: the error was reported (and caught)
        return r.StdOut.Split('\n').Single(l => l.StartsWith("RESULT ", StringComparison.Ordinal)).Trim();
    }

    static void AssertDiskFull(string result, Tmpfs fs)
    {
        Assert.StartsWith("RESULT DiskFull", result);
        Assert.Contains("| ResourceUnavailable |", result);
        Assert.Contains($"{fs.Path} (tmpfs)", result);
        Assert.Contains($"Free space on {fs.Path} (tmpfs), then run again.", result);
    }

    static void AssertNoTemporaries(string dir) => Assert.Empty(Directory.GetFiles(dir, ".*").Where(f => !f.Contains("/.filler")));

    [Fact]
    public void Edit_WhenTheBlocksRunOut_IsDiskFull_KeepsTheOldFile_AndSucceedsOnceSpaceIsFreed()
    {
        using var fs = new Tmpfs(256 * 1024);
        var file = fs["app.conf"];
        File.WriteAllText(file, "a=1\n");
        fs.Fill();
        var edit = $"Edit-LockedFile -Path '{file}' -EnsureLine ('key=' + ('v' * 20000)) -Key 'key='";
        AssertDiskFull(Result(edit), fs);
        Assert.Equal("a=1\n", File.ReadAllText(file));
        AssertNoTemporaries(fs.Path);

        fs.Free();
        Assert.Equal("RESULT OK", Result(edit));
        Assert.StartsWith("a=1\nkey=vvv", File.ReadAllText(file));
        AssertNoTemporaries(fs.Path);
    }

    [Fact]
    public void Edit_WhenTheInodesRunOut_IsDiskFull_ForANewAndAnExistingFile_AndLeavesNoFile()
    {
        using var fs = new Tmpfs(4 * 1024 * 1024, inodes: 64);
        var existing = fs["existing.conf"];
        File.WriteAllText(existing, "a=1\n");
        fs.Fill(inodes: true);
        var fresh = fs["new.conf"];
        AssertDiskFull(Result($"Edit-LockedFile -Path '{fresh}' -EnsureLine 'b=2'"), fs);
        Assert.False(File.Exists(fresh));
        AssertDiskFull(Result($"Edit-LockedFile -Path '{existing}' -EnsureLine 'b=2'"), fs);
        Assert.Equal("a=1\n", File.ReadAllText(existing));
        AssertNoTemporaries(fs.Path);

        fs.Free();
        Assert.Equal("RESULT OK", Result($"Edit-LockedFile -Path '{fresh}' -EnsureLine 'b=2'; Edit-LockedFile -Path '{existing}' -EnsureLine 'b=2'"));
        Assert.Equal("b=2\n", File.ReadAllText(fresh));
        Assert.Equal("a=1\nb=2\n", File.ReadAllText(existing));
        AssertNoTemporaries(fs.Path);
    }

    [Fact]
    public void StateDirectoryAndLog_OnAFullFilesystem_AreDiskFull_NotDirectoryNotFound()
    {
        using var fs = new Tmpfs(256 * 1024, inodes: 64);
        Directory.CreateDirectory(fs["logs"]);
        File.WriteAllText(fs["logs/tool.log"], "");
        fs.Fill(inodes: true);
        AssertDiskFull(Result($"Initialize-StateDirectory -Name tool -Path '{fs["state"]}'"), fs);
        fs.Free();
        fs.Fill();
        AssertDiskFull(Result($"Write-StateLog -LogFile '{fs["logs/tool.log"]}' -Message ('x' * 100000)"), fs);
        fs.Free();
        Assert.Equal("RESULT OK", Result($"Write-StateLog -LogFile '{fs["logs/tool.log"]}' -Message 'back'"));
        Assert.EndsWith("INFO back\n", File.ReadAllText(fs["logs/tool.log"]));
    }
}
