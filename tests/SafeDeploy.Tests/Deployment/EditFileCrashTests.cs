using SafeDeploy.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace SafeDeploy.Tests.Deployment;

/// <summary>
/// Issue 15: kill -9 between the fsync and the rename of every replacement of a deployment with editFile phases (an
/// existing file, a new file in directories the run creates, the rollback's restore); the next run's recovery leaves
/// the sandbox byte-identical, hidden files included, with no temporary file and no creation lock left.
/// </summary>
public class EditFileCrashTests(ITestOutputHelper output)
{
    const string Manifest = """
        name: editcrash
        phases:
          - name: precheck
            checks:
              - commandExists: sh
          - name: conf
            dependsOn: precheck
            editFile: { path: /etc/app.conf, ensureLine: "key=new", key: "key=" }
          - name: fresh
            dependsOn: conf
            editFile: { path: /opt/new/deep/.fresh.conf, ensureLine: "created=1" }
          - name: boom
            dependsOn: fresh
            run: exit 3
        """;

    static string Arrange(Sandbox box)
    {
        var conf = box.WriteInRoot("/etc/app.conf", "a=1\nkey=old\n");
        File.SetUnixFileMode(conf, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead);
        box.WriteInRoot("/etc/.dot", "hidden\n");
        Directory.CreateDirectory(box.InRoot("/opt"));
        return box.Write("deploy.yaml", Manifest);
    }

    static string Invoke(string manifest, Sandbox box, string extra = "") =>
        $"Invoke-SafeDeploy '{manifest}' -Root '{box.Root}' -StateDirectory '{box.State}' {extra}";

    static string[] Beside(Sandbox box, string dir, string pattern) =>
        Directory.Exists(box.InRoot(dir)) ? Directory.GetFiles(box.InRoot(dir), pattern) : [];

    static bool RolledBack(Sandbox box) =>
        Directory.GetFiles(Path.Combine(box.State, "state", "deployments", "editcrash"), "*.journal")
            .Any(j => File.ReadAllText(j).Contains("\"type\":\"rollback-start\"", StringComparison.Ordinal));

    [Fact]
    public void KillNineBeforeEachRename_OfEditFile_RecoveryLeavesTheTreeByteIdentical_NoTemporaryNoLock()
    {
        int points = 0;
        bool editorTempSeen = false, newFileLeftoversSeen = false;
        for (int n = 1; n <= 12; n++)
        {
            using var box = new Sandbox();
            var manifest = Arrange(box);
            var before = Sandbox.Describe(box.Snapshot());
            using var crashed = HostProcess.Start(Invoke(manifest, box), new Dictionary<string, string?> { ["SAFEDEPLOY_TEST_CRASH_BEFORE_RENAME"] = n.ToString() });
            var outcome = crashed.Wait(TimeSpan.FromMinutes(3));
            if (outcome.ExitCode != 137) { output.WriteLine($"replacement {n}: none (the run has {n - 1}); exit {outcome.ExitCode}"); break; }
            points++;
            Assert.NotEmpty(Directory.GetFiles(box.Path, "*.tmp", SearchOption.AllDirectories)); // the kill left its temporary file

            // What the kill left beside the targets: the editor's own temporary file (before any rollback) ...
            if (!RolledBack(box) && Beside(box, "/etc", ".app.conf.*.tmp").Length > 0) editorTempSeen = true;
            // ... and, for the new file, its temporary file and its creation lock in the directories the run created.
            if (Beside(box, "/opt/new/deep", "..fresh.conf.*.tmp").Length > 0 && Beside(box, "/opt/new/deep", "..fresh.conf.lock").Length > 0)
                newFileLeftoversSeen = true;

            using var ps = new PsSession();
            var next = ps.Run(Invoke(manifest, box, "-Phase precheck"));
            Assert.True(next.AllErrors.Count() == 0, $"replacement {n}: {next.Describe()}");
            Assert.Single((System.Collections.IEnumerable)next.Prop(0, "RecoveredRuns")!);
            var after = Sandbox.Describe(box.Snapshot());
            Assert.True(before == after, $"killed before replacement {n}: the tree differs\nexpected:\n{before}\nactual:\n{after}");
            Assert.False(Directory.Exists(box.InRoot("/opt/new")), $"killed before replacement {n}: the directory the run created is still there");
            var left = Directory.GetFiles(box.Path, "*.tmp", SearchOption.AllDirectories)
                .Concat(Directory.GetFiles(box.Root, "*.lock", SearchOption.AllDirectories)).ToList();
            Assert.True(left.Count == 0, $"killed before replacement {n}: left: {string.Join(", ", left)}");
            output.WriteLine($"replacement {n}: killed, recovered, tree identical");
        }
        Assert.True(editorTempSeen, "no kill point fell between the fsync and the rename of editFile's own temporary file (existing file)");
        Assert.True(newFileLeftoversSeen, "no kill point left a new file's temporary file and creation lock beside it");
        // backup of app.conf, the edit of app.conf, the new .fresh.conf, and the rollback's restore of app.conf
        Assert.True(points >= 4, $"only {points} kill points reached");
    }
}
