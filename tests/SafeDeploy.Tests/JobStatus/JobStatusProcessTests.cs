using System.Text.Json;
using SafeDeploy.Engine.JobStatus;
using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.JobStatus;

/// <summary>Many OS processes and kill -9, through the real safedeploy host.</summary>
public class JobStatusProcessTests
{
    // 40 OS processes (safedeploy hosts, released together), one job each, 10 per clone in 4 clones, 5 updates each.
    const int Processes = 40, JobsPerProcess = 1, Updates = 5, Clones = 4;

    [Fact]
    public void FortyProcessesInFourClones_EveryJobsLastStatusArrives_LinearHistory()
    {
        using var remote = new GitRemote();
        var clones = Enumerable.Range(0, Clones).Select(i => remote.Clone($"c{i}")).ToArray();
        var outcomes = ProcessSwarm.RunAtOnce(Processes, p => $$"""
            $clone = '{{clones[p % Clones]}}'
            foreach ($u in 1..{{Updates}}) {
              foreach ($k in 0..{{JobsPerProcess - 1}}) {
                $job = 'job-' + ({{p * JobsPerProcess}} + $k).ToString('00')
                $status = if ($u -eq {{Updates}}) { 'completed' } else { 'running' }
                $r = Sync-JobStatus -Repository $clone -JobName $job -Status $status -Progress ($u * 20) -Message "update $u" -Branch main
                [Console]::WriteLine("RESULT $job $u pushed=$($r.Pushed) queued=$($r.Queued) attempts=$($r.Attempts)")
              }
            }
            """, timeout: TimeSpan.FromMinutes(4));

        Assert.All(outcomes, o => Assert.True(o.ExitCode == 0, o.ToString()));
        var lines = outcomes.SelectMany(o => o.StdOut.Split('\n')).Where(l => l.StartsWith("RESULT ")).ToList();
        Assert.Equal(Processes * JobsPerProcess * Updates, lines.Count);
        // An update that met a lock timeout is queued, never lost: the cron form (as a cron line would) sends it.
        foreach (var clone in clones) JobStatusSync.Flush(new JobStatusOptions { Repository = clone });

        var files = remote.StatusFiles();
        Assert.Equal(Processes * JobsPerProcess + 1, files.Count); // every job, plus the file that was there before
        for (int j = 0; j < Processes * JobsPerProcess; j++)
        {
            var status = JsonDocument.Parse(remote.Show($"data/status/job-{j:00}.json")!).RootElement;
            Assert.Equal("completed", status.GetProperty("status").GetString());
            Assert.Equal($"update {Updates}", status.GetProperty("message").GetString());
            Assert.Equal(100, status.GetProperty("progress").GetInt32());
        }
        Assert.NotNull(remote.Show("data/status/other-team.json"));
        Assert.True(remote.HistoryIsLinearWithoutForcePush());
        Assert.All(clones, c => Assert.Empty(Directory.GetFiles(Path.Combine(c, ".git", "safedeploy", "outbox"))));
    }

    [Fact]
    public void KillNineWhilePushing_LeavesOldOrNewStatus_AndTheNextRunFinishesTheJob()
    {
        using var remote = new GitRemote();
        var clone = remote.Clone("c1");
        Assert.True(JobStatusSync.Sync(new JobStatusUpdate { JobName = "k", Status = "running" }, new JobStatusOptions { Repository = clone }).Pushed);
        var inHook = Path.Combine(remote.Root, "in-hook");
        var hookDone = Path.Combine(remote.Root, "hook-done");
        var hook = Path.Combine(remote.BarePath, "hooks", "pre-receive");
        File.WriteAllText(hook, $"#!/bin/sh\ncat >/dev/null\ntouch '{inHook}'\nsleep 3\ntouch '{hookDone}'\n");
        File.SetUnixFileMode(hook, (UnixFileMode)0x1ED);

        using (var victim = HostProcess.Start($"Sync-JobStatus -Repository '{clone}' -JobName k -Status completed -Message final"))
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
            while (!File.Exists(inHook) && !victim.HasExited && DateTime.UtcNow < deadline) Thread.Sleep(10);
            Assert.True(File.Exists(inHook), "the push never reached the remote: " + victim.StdErrSoFar);
            victim.Signal(9); // mid-push, holding the clone's lock
        }
        var seen = JsonDocument.Parse(remote.Show("data/status/k.json")!).RootElement.GetProperty("status").GetString();
        Assert.Contains(seen, new[] { "running", "completed" });

        // What a kill at another moment (inside update-index) leaves behind: a private index and its lock.
        var state = Path.Combine(clone, ".git", "safedeploy");
        File.WriteAllText(Path.Combine(state, "index.lock"), "partial");
        File.WriteAllText(Path.Combine(state, "index"), "garbage");
        File.Delete(hook);

        var next = JobStatusSync.Flush(new JobStatusOptions { Repository = clone });
        Assert.All(next, r => Assert.True(r.Pushed));
        var status = JsonDocument.Parse(remote.Show("data/status/k.json")!).RootElement;
        Assert.Equal("completed", status.GetProperty("status").GetString());
        Assert.Equal("final", status.GetProperty("message").GetString());
        Assert.False(File.Exists(Path.Combine(state, "index.lock")));
        Assert.Empty(Directory.GetFiles(Path.Combine(state, "outbox")));
        Assert.False(File.Exists(Path.Combine(clone, ".git", "index.lock")));
        Assert.Equal("", GitRemote.Git(clone, "status", "--porcelain"));
        // A later update goes through normally.
        Assert.True(JobStatusSync.Sync(new JobStatusUpdate { JobName = "k", Status = "cancelled" }, new JobStatusOptions { Repository = clone }).Pushed);
        for (int i = 0; i < 100 && !File.Exists(hookDone); i++) Thread.Sleep(50); // let the orphaned push end before cleanup
        Assert.True(remote.HistoryIsLinearWithoutForcePush());
    }
}
