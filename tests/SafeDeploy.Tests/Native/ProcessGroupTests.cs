using System.Diagnostics;
using SafeDeploy.Engine.Platform;
using SafeDeploy.Engine.Services;
using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.NativeShim;

public sealed class ProcessGroupTests : IDisposable
{
    readonly TempDir dir = new("pgrp");
    readonly List<int> started = [];

    public void Dispose()
    {
        foreach (var pid in started) Native.Kill(pid, 9);
        dir.Dispose();
    }

    /// <summary>Pids written by the command tree into files (each line one pid), waited for with a deadline.</summary>
    List<int> WaitPids(string file, int count)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (DateTime.UtcNow < deadline)
        {
            if (File.Exists(file))
            {
                var pids = File.ReadAllLines(file).Where(l => l.Length > 0).Select(int.Parse).ToList();
                if (pids.Count >= count) { started.AddRange(pids); return pids; }
            }
            Thread.Sleep(20);
        }
        throw new TimeoutException($"{file} did not list {count} pids in time");
    }

    static bool WaitGone(IEnumerable<int> pids)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (pids.Any(ProcessLiveness.IsAlive)) { if (DateTime.UtcNow > deadline) return false; Thread.Sleep(20); }
        return true;
    }

    // A phase command that leaves a tree: a background child, and a grandchild that left the group with setsid.
    string TreeScript(string pids) =>
        $"sleep 300 & echo $! >> '{pids}'; setsid sh -c 'echo $$ >> \"$0\"; exec sleep 300' '{pids}' & sleep 300";

    [Fact]
    public async Task OwnGroup_TimeoutKillsTheWholeTree_IncludingADetachedGrandchild()
    {
        var pids = dir["pids"];
        ProcessGroupRecord? record = null;
        var run = new ExternalCommand
        {
            Program = "/bin/sh", Arguments = ["-c", TreeScript(pids)], Timeout = TimeSpan.FromSeconds(3),
            ProcessGroupToken = ProcessGroup.NewToken(), OnGroupStarted = g => record = g,
        }.RunAsync();
        var children = WaitPids(pids, 2);
        Assert.NotNull(record);
        started.Add(record.Pgid);
        Assert.Equal(record.Pgid, int.Parse(File.ReadAllText($"/proc/{record.Pgid}/stat").Split(' ')[5])); // its own session: sid == pgid
        Assert.Equal(4, ProcessGroup.Members(record).Count); // sh, its background sleep, the detached sleep, its foreground sleep

        var result = await run.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(result.TimedOut);
        Assert.True(WaitGone(children.Append(record.Pgid)), "a process of the timed-out command still runs");
    }

    [Fact]
    public void DeployerKilled9_LeavesItsPhaseCommandRunning_AndEndIfAliveEndsExactlyThat()
    {
        // A real deployer process starting its phase command the way ExternalCommand does (setsid --wait, token in the
        // environment), then killed -9 while the command runs.
        var pids = dir["pids"];
        var token = ProcessGroup.NewToken();
        var deployer = Process.Start(new ProcessStartInfo("/bin/sh", ["-c", "setsid --wait /bin/sh -c \"$0\" & echo $! > \"$1\"; wait", TreeScript(pids), dir["leader"]])
        {
            Environment = { [ProcessGroup.TokenVariable] = token },
        })!;
        started.Add(deployer.Id);
        var tree = WaitPids(pids, 2);
        int leader = WaitPids(dir["leader"], 1)[0];
        var record = ProcessGroup.Describe(leader, token)!;
        Native.Kill(deployer.Id, 9);
        Assert.True(deployer.WaitForExit(10_000));
        Assert.True(tree.Append(leader).All(ProcessLiveness.IsAlive)); // orphans: this is what recovery must end first

        // Recovery reads the record back from the journal (JSON) in another process: same identity.
        var back = ProcessGroupRecord.FromJson(System.Text.Json.Nodes.JsonNode.Parse(record.ToJson().ToJsonString())!.AsObject())!;
        Assert.Equal(ProcessGroupOutcome.Ended, ProcessGroup.EndIfAlive(back, TimeSpan.FromSeconds(5)));
        Assert.True(WaitGone(tree.Append(leader)));
        Assert.Equal(ProcessGroupOutcome.NotRunning, ProcessGroup.EndIfAlive(back, TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public void AStaleRecord_WhosePidNowNamesAnotherProcess_KillsNothing()
    {
        // Another program now runs as the recorded pid (and leads a group of its own): a different start time.
        var stranger = Process.Start(new ProcessStartInfo("setsid", ["--wait", "sleep", "300"]))!;
        started.Add(stranger.Id);
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (ProcessGroup.StartTicks(stranger.Id) is null && DateTime.UtcNow < deadline) Thread.Sleep(10);
        var real = ProcessGroup.StartTicks(stranger.Id)!.Value;
        var stale = new ProcessGroupRecord(stranger.Id, real - 100, ProcessInfo.BootId, ProcessGroup.NewToken());
        Assert.Empty(ProcessGroup.Members(stale));
        Assert.Equal(ProcessGroupOutcome.NotRunning, ProcessGroup.EndIfAlive(stale, TimeSpan.FromSeconds(1)));
        Assert.True(ProcessLiveness.IsAlive(stranger.Id));

        var otherBoot = new ProcessGroupRecord(stranger.Id, real, "another-boot", ProcessGroup.NewToken());
        Assert.Equal(ProcessGroupOutcome.NotRunning, ProcessGroup.EndIfAlive(otherBoot, TimeSpan.FromSeconds(1)));
        Assert.True(ProcessLiveness.IsAlive(stranger.Id));
    }

    [Fact]
    public void ATokenJournaledBeforeTheStart_FindsTheCommand_WhenTheDeployerDiedBeforeRecordingItsGroup()
    {
        var token = ProcessGroup.NewToken();
        var p = Process.Start(new ProcessStartInfo("setsid", ["sleep", "300"]) { Environment = { [ProcessGroup.TokenVariable] = token } })!;
        started.Add(p.Id);
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (ProcessGroup.Members(ProcessGroupRecord.ForToken(token)).Count == 0 && DateTime.UtcNow < deadline) Thread.Sleep(10);
        var members = ProcessGroup.Members(ProcessGroupRecord.ForToken(token));
        Assert.NotEmpty(members);
        Assert.Equal(ProcessGroupOutcome.Ended, ProcessGroup.EndIfAlive(ProcessGroupRecord.ForToken(token), TimeSpan.FromSeconds(5)));
        Assert.True(WaitGone(members));
    }
}
