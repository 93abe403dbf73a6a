using SafeDeploy.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace SafeDeploy.Tests.Deployment;

/// <summary>kill -9 between a temporary file's fsync and its rename (install, backup, restore), then the next run's recovery.</summary>
public class TemporaryFileCrashTests(ITestOutputHelper output)
{
    const string Manifest = """
        name: tmpcrash
        phases:
          - name: precheck
            checks:
              - commandExists: sh
          - name: over
            dependsOn: precheck
            install: { source: v2.conf, target: /etc/app.conf }
          - name: fresh
            dependsOn: over
            install: { source: v2.conf, target: /opt/new/deep/.hidden.conf }
          - name: boom
            dependsOn: fresh
            run: exit 3
        """;

    static string Arrange(Sandbox box)
    {
        box.WriteInRoot("/etc/app.conf", "v1\n");
        box.WriteInRoot("/etc/.dot", "hidden\n");
        box.Write("v2.conf", "v2\n");
        return box.Write("deploy.yaml", Manifest);
    }

    static string Invoke(string manifest, Sandbox box, string extra = "") =>
        $"Invoke-SafeDeploy '{manifest}' -Root '{box.Root}' -StateDirectory '{box.State}' {extra}";

    [Fact]
    public void KillNineBeforeEachRename_RecoveryLeavesTheTreeByteIdentical_NoTemporaryAnywhere()
    {
        int points = 0;
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

            using var ps = new PsSession();
            var next = ps.Run(Invoke(manifest, box, "-Phase precheck"));
            Assert.True(next.AllErrors.Count() == 0, $"replacement {n}: {next.Describe()}");
            Assert.Single((System.Collections.IEnumerable)next.Prop(0, "RecoveredRuns")!);
            var after = Sandbox.Describe(box.Snapshot());
            Assert.True(before == after, $"killed before replacement {n}: the tree differs\nexpected:\n{before}\nactual:\n{after}");
            var left = Directory.GetFiles(box.Path, "*.tmp", SearchOption.AllDirectories);
            Assert.True(left.Length == 0, $"killed before replacement {n}: temporary files left: {string.Join(", ", left)}");
            output.WriteLine($"replacement {n}: killed, recovered, tree identical");
        }
        // backup of app.conf, app.conf, .hidden.conf, and the rollback's restore of app.conf
        Assert.True(points >= 4, $"only {points} kill points reached");
    }
}
