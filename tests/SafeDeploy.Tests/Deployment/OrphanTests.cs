using System.Diagnostics;
using System.Text.Json.Nodes;
using SafeDeploy.Engine.Platform;
using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.Deployment;

/// <summary>
/// Issue 15 "Orphans": a phase command outlives its deployer killed with SIGKILL; the next run's recovery ends it
/// (by its journaled process group) before it undoes the phase, and signals nothing else.
/// </summary>
public class OrphanTests
{
    const string Manifest = """
        name: orphan
        phases:
          - name: precheck
            checks:
              - commandExists: sh
          - name: ticker
            dependsOn: precheck
            run:
              command: 'while :; do echo x >> "$SAFEDEPLOY_ROOT/var/tick"; sleep 0.1; done'
              undo: 'wc -c < "$SAFEDEPLOY_ROOT/var/tick" > "$SAFEDEPLOY_ROOT/var/undone"'
              timeout: 10m
        """;

    static long Size(string file) => File.Exists(file) ? new FileInfo(file).Length : 0;

    static string Journal(Sandbox box) => Assert.Single(Directory.GetFiles(Path.Combine(box.State, "state", "deployments", "orphan"), "*.journal"));

    static List<ProcessGroupRecord> Groups(Sandbox box) =>
        File.ReadAllLines(Journal(box)).Where(l => l.Length > 0).Select(l => JsonNode.Parse(l)!.AsObject())
            .Where(o => (string?)o["type"] == "process-group").Select(ProcessGroupRecord.FromJson).OfType<ProcessGroupRecord>().ToList();

    static bool Until(Func<bool> condition, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline) { if (condition()) return true; Thread.Sleep(50); }
        return condition();
    }

    [Fact]
    public void KillNineWhileAPhaseRuns_TheCommandKeepsRunning_TheNextRunEndsItBeforeUndoing_AndSignalsNothingElse()
    {
        using var box = new Sandbox();
        Directory.CreateDirectory(box.InRoot("/var"));
        var manifest = box.Write("deploy.yaml", Manifest);
        var tick = box.InRoot("/var/tick");
        var invoke = $"Invoke-SafeDeploy '{manifest}' -Root '{box.Root}' -StateDirectory '{box.State}'";
        // A process group leader of its own that the journal will (wrongly, as after pid reuse) name: it must survive.
        using var stranger = Process.Start(new ProcessStartInfo("setsid", ["sleep", "300"]))!;
        var groups = new List<ProcessGroupRecord>();
        try
        {
            Assert.True(Until(() => ProcessGroup.StartTicks(stranger.Id) is not null, TimeSpan.FromSeconds(10)));
            using (var deployer = HostProcess.Start(invoke))
            {
                Assert.True(Until(() => Size(tick) > 0, TimeSpan.FromMinutes(2)), "the phase command never ran: " + deployer.StdErrSoFar);
                // The kill point that matters: the command runs and its group is journaled.
                Assert.True(Until(() => Groups(box).Count >= 2, TimeSpan.FromSeconds(30)), "no pgid record journaled after the start");
                deployer.Signal(9);
                var died = deployer.Wait(TimeSpan.FromSeconds(30));
                Assert.Equal(137, died.ExitCode);
            }

            // The journal holds the command's group: its token before the start, its pgid and start time right after it;
            // the command outlived its deployer.
            var journal = Journal(box);
            groups.AddRange(Groups(box));
            Assert.Equal(2, groups.Count);
            Assert.Equal(0, groups[0].Pgid);
            var started = groups[1];
            Assert.Equal(groups[0].Token, started.Token);
            Assert.True(started.Pgid > 1 && started.StartTicks == ProcessGroup.StartTicks(started.Pgid), $"pgid record {started}");
            Assert.NotEmpty(ProcessGroup.Members(started));
            var before = Size(tick);
            Assert.True(Until(() => Size(tick) > before, TimeSpan.FromSeconds(10)), "the orphaned command stopped by itself");

            // A stale record: the stranger's pid, but another start time (the pid was reused since the record was written).
            var stale = new ProcessGroupRecord(stranger.Id, ProcessGroup.StartTicks(stranger.Id)!.Value - 100, ProcessInfo.BootId, ProcessGroup.NewToken()).ToJson();
            stale["seq"] = File.ReadAllLines(journal).Length + 1;
            stale["type"] = "process-group";
            stale["phase"] = "ticker";
            File.AppendAllText(journal, stale.ToJsonString() + "\n");

            using var ps = new PsSession();
            var next = ps.Run(invoke + " -Phase precheck");
            Assert.True(next.AllErrors.Count() == 0, next.Describe());
            Assert.Contains(next.Warnings, w => w.Contains("Ended the processes"));

            // Gone, and it was gone before the undo ran: the size the undo saw is the final size.
            Assert.Empty(ProcessGroup.Members(started));
            var undone = box.InRoot("/var/undone");
            Assert.True(File.Exists(undone), "the phase was not undone: " + next.Describe());
            var atUndo = long.Parse(File.ReadAllText(undone).Trim());
            var final = Size(tick);
            Thread.Sleep(500);
            Assert.Equal(final, Size(tick));
            Assert.Equal(atUndo, final);

            // Nothing else was signalled: not the process the stale record's pid now belongs to.
            Assert.False(stranger.HasExited);
        }
        finally
        {
            try { stranger.Kill(); } catch (InvalidOperationException) { }
            // A failed run of this test must not leave the ticker behind (it is found by its journaled token).
            foreach (var g in groups) ProcessGroup.EndIfAlive(g, TimeSpan.FromSeconds(1));
        }
    }

    [Fact]
    public void ACommandThatDropsItsToken_IsStillEnded_ByItsJournaledPgidAndStartTime()
    {
        // env -i: the group's leader (the same pid through each exec) and its children no longer carry the token.
        const string tokenless = """
            name: orphan
            phases:
              - name: precheck
                checks:
                  - commandExists: sh
              - name: ticker
                dependsOn: precheck
                run:
                  command: 'exec env -i PATH=/usr/bin:/bin TICK="$SAFEDEPLOY_ROOT/var/tick" sh -c ''while :; do echo x >> "$TICK"; sleep 0.1; done'''
                  timeout: 10m
            """;
        using var box = new Sandbox();
        Directory.CreateDirectory(box.InRoot("/var"));
        var manifest = box.Write("deploy.yaml", tokenless);
        var tick = box.InRoot("/var/tick");
        var invoke = $"Invoke-SafeDeploy '{manifest}' -Root '{box.Root}' -StateDirectory '{box.State}'";
        var groups = new List<ProcessGroupRecord>();
        try
        {
            using (var deployer = HostProcess.Start(invoke))
            {
                Assert.True(Until(() => Size(tick) > 0, TimeSpan.FromMinutes(2)), "the phase command never ran: " + deployer.StdErrSoFar);
                Assert.True(Until(() => Groups(box).Count >= 2, TimeSpan.FromSeconds(30)), "no pgid record journaled after the start");
                deployer.Signal(9);
                Assert.Equal(137, deployer.Wait(TimeSpan.FromSeconds(30)).ExitCode);
            }
            groups.AddRange(Groups(box));
            var tokenOnly = Assert.Single(groups, g => g.Pgid == 0);
            Assert.Empty(ProcessGroup.Members(tokenOnly)); // the token alone finds nothing
            var pgid = Assert.Single(groups, g => g.Pgid > 1);
            Assert.NotEmpty(ProcessGroup.Members(pgid));

            using var ps = new PsSession();
            var next = ps.Run(invoke + " -Phase precheck");
            Assert.True(next.AllErrors.Count() == 0, next.Describe());
            Assert.Contains(next.Warnings, w => w.Contains("Ended the processes"));
            Assert.Empty(ProcessGroup.Members(pgid));
            var final = Size(tick);
            Thread.Sleep(500);
            Assert.Equal(final, Size(tick));
        }
        finally
        {
            foreach (var g in groups) ProcessGroup.EndIfAlive(g, TimeSpan.FromSeconds(1));
        }
    }
}
