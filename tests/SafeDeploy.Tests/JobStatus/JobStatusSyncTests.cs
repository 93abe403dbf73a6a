using System.Text.Json;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.JobStatus;
using SafeDeploy.Engine.Platform;
using Xunit;

namespace SafeDeploy.Tests.JobStatus;

/// <summary>The engine against real git: rejects, rebuilds, bounds.</summary>
public class JobStatusSyncTests
{
    static JobStatusResult Sync(string clone, string job, string status, int? progress = null, int maxAttempts = 12, IOperationReporter? reporter = null) =>
        JobStatusSync.Sync(new JobStatusUpdate { JobName = job, Status = status, Progress = progress, Message = $"p{progress}" },
            new JobStatusOptions { Repository = clone, MaxAttempts = maxAttempts, Reporter = reporter ?? NullReporter.Instance });

    static string StatusOf(GitRemote remote, string job) =>
        JsonDocument.Parse(remote.Show($"data/status/{job}.json")!).RootElement.GetProperty("status").GetString()!;

    [Fact]
    public void Reject_FromAStaleTip_FetchesRebuildsAndKeepsTheOtherClonesFile()
    {
        using var remote = new GitRemote();
        var c1 = remote.Clone("c1");
        var c2 = remote.Clone("c2");
        Assert.Equal(1, Sync(c1, "a", "running").Attempts);
        Assert.True(Sync(c2, "b", "running").Pushed); // c1's tracking ref is now behind
        var again = Sync(c1, "a", "completed");
        Assert.True(again.Pushed);
        Assert.Equal(2, again.Attempts);
        Assert.Equal("completed", StatusOf(remote, "a"));
        Assert.Equal("running", StatusOf(remote, "b"));
        Assert.True(remote.HistoryIsLinearWithoutForcePush());
    }

    [Fact]
    public void Reject_BeyondTheBound_QueuesWithAWarning_AndNothingIsLost()
    {
        using var remote = new GitRemote();
        var c1 = remote.Clone("c1");
        var c2 = remote.Clone("c2");
        Sync(c1, "a", "running");
        Sync(c2, "b", "running");
        var rec = new Recorder();
        var r = Sync(c1, "a", "failed", maxAttempts: 1, reporter: rec);
        Assert.True(r.Queued);
        Assert.False(r.Pushed);
        Assert.Contains(rec.Warnings, w => w.Contains("still rejected after 1 attempts"));
        Assert.Equal("running", StatusOf(remote, "a"));
        var flushed = JobStatusSync.Flush(new JobStatusOptions { Repository = c1 });
        Assert.True(Assert.Single(flushed).Pushed);
        Assert.Equal("failed", StatusOf(remote, "a"));
    }

    /// <summary>
    /// A pre-receive hook that, on each of the next <paramref name="moves"/> pushes, commits to main itself first (as another
    /// clone would a moment earlier): the push then fails on the remote ("cannot lock ref ... expected"), every time.
    /// </summary>
    static void MakeRemoteMoveOnPush(GitRemote remote, int moves)
    {
        File.WriteAllText(Path.Combine(remote.BarePath, "moves-max"), moves.ToString());
        var hook = Path.Combine(remote.BarePath, "hooks", "pre-receive");
        File.WriteAllText(hook, """
            #!/bin/sh
            n=$(cat moves 2>/dev/null || echo 0)
            [ "$n" -ge "$(cat moves-max)" ] && exit 0
            echo $((n+1)) > moves
            unset GIT_QUARANTINE_PATH GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES
            export GIT_INDEX_FILE="$PWD/hook-index"
            tip=$(git rev-parse refs/heads/main)
            git read-tree "$tip"
            blob=$(echo "move $n" | git hash-object -w --stdin)
            git update-index --add --cacheinfo "100644,$blob,other/move-$n.txt"
            c=$(echo "move $n" | git commit-tree "$(git write-tree)" -p "$tip")
            git update-ref refs/heads/main "$c" "$tip"
            exit 0
            """.Replace("\r", ""));
        File.SetUnixFileMode(hook, (UnixFileMode)0x1ED);
    }

    [Fact]
    public void RemoteThatKeepsMoving_RebuildsOnEachNewTip_UntilItLands_LinearHistory_OthersCommitsKept()
    {
        using var remote = new GitRemote();
        var c1 = remote.Clone("c1");
        MakeRemoteMoveOnPush(remote, 4);
        var r = Sync(c1, "moving", "completed", 100);
        Assert.True(r.Pushed, r.ToString());
        Assert.Equal(5, r.Attempts); // four rejects, four fetch-and-rebuilds, then it lands
        Assert.Equal("completed", StatusOf(remote, "moving"));
        for (int i = 0; i < 4; i++) Assert.NotNull(remote.Show($"other/move-{i}.txt"));
        Assert.Equal(r.Commit, GitRemote.Git(remote.BarePath, "rev-parse", "main").Trim());
        Assert.True(remote.HistoryIsLinearWithoutForcePush());
    }

    [Fact]
    public void RemoteThatNeverStopsMoving_GivesUpAtTheBound_AndQueues()
    {
        using var remote = new GitRemote();
        var c1 = remote.Clone("c1");
        MakeRemoteMoveOnPush(remote, 1000);
        var rec = new Recorder();
        var r = Sync(c1, "stuck", "running", maxAttempts: 3, reporter: rec);
        Assert.True(r.Queued);
        Assert.Equal(3, r.Attempts);
        Assert.Contains(rec.Warnings, w => w.Contains("still rejected after 3 attempts") && w.Contains("cannot lock ref"));
        Assert.Null(remote.Show("data/status/stuck.json"));
        Assert.Single(Directory.GetFiles(Path.Combine(c1, ".git", "safedeploy", "outbox")));
        Assert.True(remote.HistoryIsLinearWithoutForcePush());
    }

    [Fact]
    public void OlderUpdateFromAnotherClone_NeverReplacesANewerOne()
    {
        using var remote = new GitRemote();
        var c1 = remote.Clone("c1");
        var c2 = remote.Clone("c2");
        GitRemote.Git(c1, "remote", "set-url", "origin", "/nonexistent/remote.git");
        Assert.True(Sync(c1, "moved-job", "running").Queued); // older, stuck in c1's outbox
        Assert.True(Sync(c2, "moved-job", "completed").Pushed); // newer, from the node the job moved to
        GitRemote.Git(c1, "remote", "set-url", "origin", remote.BarePath);
        JobStatusSync.Flush(new JobStatusOptions { Repository = c1 });
        Assert.Equal("completed", StatusOf(remote, "moved-job"));
        Assert.Empty(Directory.GetFiles(Path.Combine(c1, ".git", "safedeploy", "outbox")));
    }

    [Fact]
    public void InvalidStatusProgressOrDirectory_AreInvalidArgument_BeforeAnythingIsWritten()
    {
        using var remote = new GitRemote();
        var c1 = remote.Clone("c1");
        var e1 = Assert.Throws<SafeDeployException>(() => Sync(c1, "j", "bogus"));
        Assert.Equal(("InvalidJobStatus", ErrorKind.InvalidArgument), (e1.ErrorId, e1.Kind));
        var e2 = Assert.Throws<SafeDeployException>(() => Sync(c1, "j", "running", 101));
        Assert.Equal("InvalidProgress", e2.ErrorId);
        var e3 = Assert.Throws<SafeDeployException>(() => JobStatusSync.Sync(new JobStatusUpdate { JobName = "j", Status = "running" },
            new JobStatusOptions { Repository = c1, StatusDirectory = "../outside" }));
        Assert.Equal(("InvalidStatusDirectory", "../outside"), (e3.ErrorId, e3.Target));
        Assert.False(Directory.Exists(Path.Combine(c1, ".git", "safedeploy")));
    }
}
