using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.JobStatus;

/// <summary>The clone's own pre-push hook runs unless -NoVerify; the outbox goes only where the call says.</summary>
public class JobStatusHookTests
{
    static string PrePush(string clone, string log, int exitCode)
    {
        var hook = Path.Combine(clone, ".git", "hooks", "pre-push");
        File.WriteAllText(hook, $"#!/bin/sh\necho \"$1 $2\" >> '{log}'\necho 'pre-push: dashboard is frozen' >&2\nexit {exitCode}\n");
        File.SetUnixFileMode(hook, (UnixFileMode)0x1ED);
        return hook;
    }

    [Fact]
    public void PrePushHook_RunsByDefault_ARejectQueues_AndNoVerifySkipsIt()
    {
        using var remote = new GitRemote();
        var clone = remote.Clone("c1");
        var log = Path.Combine(remote.Root, "hook.log");
        PrePush(clone, log, exitCode: 1);
        using var ps = new PsSession();

        var refused = ps.Run("Sync-JobStatus -Repository $repo -JobName j -Status running", ("repo", clone));
        Assert.True(!refused.AllErrors.Any(), refused.Describe());
        Assert.Equal(true, refused.Prop(0, "Queued"));
        Assert.Equal(false, refused.Prop(0, "Pushed"));
        Assert.Contains(refused.Warnings, w => w.Contains("pre-push: dashboard is frozen"));
        Assert.Equal("origin " + remote.BarePath, File.ReadAllText(log).Trim()); // the hook ran, with git's arguments
        Assert.Null(remote.Show("data/status/j.json"));

        var skipped = ps.Run("Sync-JobStatus -Repository $repo -NoVerify", ("repo", clone)); // the cron form takes it too
        Assert.True(!skipped.AllErrors.Any(), skipped.Describe());
        Assert.Equal(true, skipped.Prop(0, "Pushed"));
        Assert.Single(File.ReadAllLines(log)); // not run again
        Assert.NotNull(remote.Show("data/status/j.json"));

        PrePush(clone, log, exitCode: 0);
        var allowed = ps.Run("Sync-JobStatus -Repository $repo -JobName j -Status completed", ("repo", clone));
        Assert.Equal(true, allowed.Prop(0, "Pushed"));
        Assert.Equal(2, File.ReadAllLines(log).Length);
        Assert.Contains("completed", remote.Show("data/status/j.json"));
    }

    [Fact]
    public void QueuedForAnotherBranch_WaitsForACallThatNamesIt()
    {
        using var remote = new GitRemote();
        var clone = remote.Clone("c1");
        using var ps = new PsSession();
        var r = ps.Run("""
            Sync-JobStatus -Repository $repo -JobName staged -Status running -Branch staging -NoPush
            Sync-JobStatus -Repository $repo
            Sync-JobStatus -Repository $repo -Branch staging
            """, ("repo", clone));
        Assert.True(!r.AllErrors.Any(), r.Describe());
        Assert.Equal(2, r.Output.Count); // the default branch had nothing; staging got its update
        Assert.Contains(r.Warnings, w => w.Contains("origin/staging") && w.Contains("-Branch staging"));
        Assert.Equal(true, r.Prop(1, "Pushed"));
        Assert.Equal("staging", r.Prop(1, "Branch"));
        Assert.Contains("staged", GitRemote.Git(remote.BarePath, "show", "staging:data/status/staged.json"));
        Assert.Null(remote.Show("data/status/staged.json"));
    }
}
