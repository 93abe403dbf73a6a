using SafeDeploy.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace SafeDeploy.Tests.Deployment;

/// <summary>A state directory on a real full filesystem: a phase whose log, journal record or backup cannot be written fails, and the run rolls back.</summary>
public class DiskFullTests(ITestOutputHelper output)
{
    const string Manifest = """
        name: disk
        phases:
          - name: first
            install: { source: new.conf, target: /etc/new.conf }
          - name: second
            dependsOn: first
            editFile: { path: /etc/app.conf, ensureLine: "c=3" }
          - name: third
            dependsOn: second
            run: echo ran > "$SAFEDEPLOY_ROOT/etc/ran"
        """;

    [Fact]
    public void StateOutOfInodes_NeverReportsSuccessForAPhaseThatDidNotRun_AndALaterRunWithSpaceSucceeds()
    {
        using var box = new Sandbox();
        box.WriteInRoot("/etc/app.conf", "a=1\n");
        box.Write("new.conf", "b=2\n");
        var manifest = box.Write("deploy.yaml", Manifest);
        var before = box.Snapshot();
        using var ps = new PsSession();
        int failedRuns = 0, logFailures = 0;
        bool succeeded = false;
        for (int inodes = 4; inodes <= 60 && !succeeded; inodes++)
        {
            using var fs = new Tmpfs(box[$"state-{inodes}"], $"size=4m,nr_inodes={inodes}");
            var r = ps.Run("Invoke-SafeDeploy -Manifest $m -Root $root -StateDirectory $s -Confirm:$false", ("m", manifest), ("root", box.Root), ("s", fs.Path));
            var status = r.Output.Count == 1 ? r.Status(0) : null;
            output.WriteLine($"nr_inodes={inodes}: {status ?? "terminating error"} {r.AllErrors.FirstOrDefault()?.FullyQualifiedErrorId}");
            if (status == "Succeeded")
            {
                // Succeeded only when every phase did, each with its log written.
                var phases = (IEnumerable<object>)r.Prop(0, "Phases")!;
                foreach (var p in phases.Select(System.Management.Automation.PSObject.AsPSObject))
                {
                    Assert.Equal("Succeeded", p.Status());
                    Assert.True(File.Exists((string)p.Properties["LogPath"].Value), $"log of {p.Properties["Name"].Value} missing");
                }
                Assert.Empty(r.AllErrors);
                Assert.Equal("ran\n", File.ReadAllText(box.InRoot("/etc/ran")));
                succeeded = true;
                continue;
            }
            failedRuns++;
            // Not a success: an error names the cause, and the sandbox is all old, byte for byte.
            var error = Assert.Single(r.AllErrors);
            if (error.Exception.Message.Contains("log", StringComparison.Ordinal)) logFailures++;
            Assert.True(Sandbox.Describe(before) == Sandbox.Describe(box.Snapshot()), $"nr_inodes={inodes}: the sandbox changed:\n{Sandbox.Describe(box.Snapshot())}");
            if (status is not null)
            {
                Assert.Contains(status, new[] { "Failed", "RolledBack" });
                var history = ps.Run("Get-SafeDeployHistory disk -StateDirectory $s", ("s", fs.Path));
                Assert.True(history.Output.Count >= 1, history.Describe());
                Assert.Equal(status, history.Output[^1].Status()); // the journal is closed as what happened
            }
        }
        output.WriteLine($"{failedRuns} runs failed on a full state directory ({logFailures} at a phase log); then one succeeded");
        Assert.True(logFailures > 0, "no run failed at a phase log: the sweep did not reach the log files");
        Assert.True(succeeded, "no run succeeded even with 60 inodes");
    }
}
