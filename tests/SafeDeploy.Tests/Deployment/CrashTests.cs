using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.Deployment;

public class CrashTests
{
    const string Manifest = """
        name: crash
        phases:
          - name: precheck
            checks:
              - commandExists: sh
          - name: lib
            dependsOn: precheck
            install:
              - { source: lib-v1.so, target: /opt/app/lib.so, mode: "0755" }
              - { source: plugin.so, target: /opt/app/plugins/p.so }
          - name: conf
            dependsOn: lib
            editFile: { path: /etc/app.conf, ensureLine: "key=new", key: "key=" }
          - name: fresh
            dependsOn: conf
            editFile: { path: /etc/fresh.conf, ensureLine: "created=1" }
          - name: marker
            dependsOn: fresh
            run:
              command: echo ran > "$SAFEDEPLOY_ROOT/var/marker"
              undo: rm -f "$SAFEDEPLOY_ROOT/var/marker"
        """;

    static string Arrange(Sandbox box)
    {
        var lib = box.InRoot("/opt/app/lib.so");
        Directory.CreateDirectory(Path.GetDirectoryName(lib)!);
        File.WriteAllBytes(lib, [0x7F, 0x45, 0x4C, 0x46, 0x00, 0xFF]);
        box.WriteInRoot("/etc/app.conf", "a=1\nkey=old\n");
        Directory.CreateDirectory(box.InRoot("/var"));
        File.WriteAllBytes(box["lib-v1.so"], [0x7F, 0x45, 0x4C, 0x46, 0x01]);
        box.Write("plugin.so", "plugin\n");
        return box.Write("deploy.yaml", Manifest);
    }

    static string Invoke(string manifest, Sandbox box, string extra = "") =>
        $"Invoke-SafeDeploy '{manifest}' -Root '{box.Root}' -StateDirectory '{box.State}' {extra}";

    static string[] Journals(Sandbox box) => Directory.GetFiles(Path.Combine(box.State, "state", "deployments", "crash"), "*.journal");

    [Fact]
    public void KillNineAfterEachJournalStep_NextRunRollsBack_ToTheInitialBytes_ThenACleanDeployWorks()
    {
        // A clean run first: how many journal records a deployment writes, and what the deployed sandbox looks like.
        using var reference = new Sandbox();
        var refManifest = Arrange(reference);
        using var ps = new PsSession();
        var clean = ps.Run(Invoke(refManifest, reference));
        Assert.True(clean.AllErrors.Count() == 0 && clean.Status(0) == "Succeeded", clean.Describe());
        int steps = File.ReadAllLines(Assert.Single(Journals(reference))).Length;
        Assert.True(steps >= 12, $"only {steps} journal records");
        var deployed = Sandbox.Describe(reference.Snapshot());

        // One sandbox per crash point; the deploying host processes kill themselves (SIGKILL) right after record n.
        var boxes = Enumerable.Range(1, steps - 1).Select(_ => new Sandbox()).ToList();
        try
        {
            var manifests = boxes.Select(Arrange).ToList();
            var initial = Sandbox.Describe(boxes[0].Snapshot());
            // A few deploying processes at a time (2 cores): each must die by its own SIGKILL right after its step.
            const int together = 4;
            for (int first = 0; first < boxes.Count; first += together)
            {
                var batch = Enumerable.Range(first, Math.Min(together, boxes.Count - first)).ToList();
                var procs = batch.Select(i => HostProcess.Start(Invoke(manifests[i], boxes[i]),
                    new Dictionary<string, string?> { ["SAFEDEPLOY_TEST_CRASH_AFTER"] = (i + 1).ToString() })).ToList();
                try
                {
                    foreach (var (i, p) in batch.Zip(procs))
                    {
                        var outcome = p.Wait(TimeSpan.FromMinutes(5));
                        Assert.True(outcome.ExitCode == 137, $"crash after step {i + 1}: {outcome}");
                        Assert.Equal(i + 1, File.ReadAllLines(Assert.Single(Journals(boxes[i]))).Length);
                    }
                }
                finally { foreach (var p in procs) p.Dispose(); }
            }

            for (int i = 0; i < boxes.Count; i++)
            {
                var box = boxes[i];
                // The next run (here only the read-only precheck phase) first rolls the dead run back, and says so.
                var next = ps.Run(Invoke(manifests[i], box, "-Phase precheck"));
                Assert.True(next.AllErrors.Count() == 0, $"step {i + 1}: {next.Describe()}");
                var recovered = ((System.Collections.IEnumerable)next.Prop(0, "RecoveredRuns")!).Cast<object>().ToList();
                Assert.True(recovered.Count == 1, $"step {i + 1}: recovered {recovered.Count}");
                Assert.Contains(next.Warnings, w => w.Contains("did not finish"));
                Assert.True(initial == Sandbox.Describe(box.Snapshot()), $"crash after step {i + 1}: sandbox differs\nexpected:\n{initial}\nactual:\n{Sandbox.Describe(box.Snapshot())}");

                var full = ps.Run(Invoke(manifests[i], box));
                Assert.True(full.AllErrors.Count() == 0 && full.Status(0) == "Succeeded", $"step {i + 1}: {full.Describe()}");
                Assert.Equal(deployed, Sandbox.Describe(box.Snapshot()));
            }
        }
        finally { foreach (var b in boxes) b.Dispose(); }
    }

    [Fact]
    public void KillNineDuringTheRollback_AfterEachRollbackStep_TheNextRunFinishesIt()
    {
        // A deployment that fails at its last phase: its rollback is journaled too, and a crash inside it must not stick.
        const string failing = Manifest + "\n  - name: boom\n    dependsOn: marker\n    run: exit 5\n";
        using var reference = new Sandbox();
        Arrange(reference);
        var refManifest = reference.Write("deploy.yaml", failing);
        using var ps = new PsSession();
        var r = ps.Run(Invoke(refManifest, reference));
        Assert.Equal("RolledBack", r.Status(0));
        var lines = File.ReadAllLines(Assert.Single(Journals(reference)));
        int first = Array.FindIndex(lines, l => l.Contains("\"type\":\"rollback-start\"")) + 1;
        Assert.True(first > 0);
        var points = Enumerable.Range(first, lines.Length - first).ToList(); // every record from rollback-start to the one before end

        var boxes = points.Select(_ => new Sandbox()).ToList();
        try
        {
            var manifests = boxes.Select(b => { Arrange(b); return b.Write("deploy.yaml", failing); }).ToList();
            var initial = Sandbox.Describe(boxes[0].Snapshot());
            for (int start = 0; start < boxes.Count; start += 4)
            {
                var batch = Enumerable.Range(start, Math.Min(4, boxes.Count - start)).ToList();
                var procs = batch.Select(i => HostProcess.Start(Invoke(manifests[i], boxes[i]),
                    new Dictionary<string, string?> { ["SAFEDEPLOY_TEST_CRASH_AFTER"] = points[i].ToString() })).ToList();
                try
                {
                    foreach (var (i, p) in batch.Zip(procs))
                        Assert.True(p.Wait(TimeSpan.FromMinutes(5)).ExitCode == 137, $"crash after rollback step {points[i]}");
                }
                finally { foreach (var p in procs) p.Dispose(); }
            }
            for (int i = 0; i < boxes.Count; i++)
            {
                var next = ps.Run(Invoke(manifests[i], boxes[i], "-Phase precheck"));
                Assert.True(next.AllErrors.Count() == 0, $"step {points[i]}: {next.Describe()}");
                Assert.True(initial == Sandbox.Describe(boxes[i].Snapshot()), $"crash after rollback step {points[i]}: sandbox differs\n{Sandbox.Describe(boxes[i].Snapshot())}");
                var history = ps.Run($"Get-SafeDeployHistory crash -StateDirectory '{boxes[i].State}'");
                Assert.Equal("RolledBack", history.Status(0));
            }
        }
        finally { foreach (var b in boxes) b.Dispose(); }
    }
}
