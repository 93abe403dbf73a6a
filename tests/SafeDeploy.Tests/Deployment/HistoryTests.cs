using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.Deployment;

public class HistoryTests
{
    [Fact]
    public void RehearsalsUnderARoot_KeepTheirOwnGenerations_AndARolledBackRunHasNone()
    {
        using var box = new Sandbox();
        // Writes nothing anywhere: safe to run without -Root.
        var ok = box.Write("ok.yaml", "name: gens\nphases:\n  - name: a\n    run: \"true\"\n");
        var bad = box.Write("bad.yaml", "name: gens\nphases:\n  - name: a\n    run: \"true\"\n  - name: b\n    dependsOn: a\n    run: exit 4\n");
        using var ps = new PsSession();
        int Deploy(string m, string? root = null)
        {
            var r = ps.Run(root is null ? "Invoke-SafeDeploy $m -StateDirectory $s -ErrorAction SilentlyContinue" : "Invoke-SafeDeploy $m -Root $root -StateDirectory $s -ErrorAction SilentlyContinue",
                ("m", m), ("s", box.State), ("root", root));
            return (int)r.Prop(0, "Generation")!;
        }
        Assert.Equal(1, Deploy(ok));
        Assert.Equal(1, Deploy(ok, box.Root));      // a rehearsal: generation 1 of its root, not 2
        Assert.Equal(1, Deploy(bad));               // failed (nothing to undo): the deployment stays at generation 1
        Assert.Equal(2, Deploy(ok));                // the real runs go on at 2
        Assert.Equal(2, Deploy(ok, box.Root));

        var history = ps.Run("Get-SafeDeployHistory gens -StateDirectory $s", ("s", box.State)).Output;
        var rows = history.Select(h => (h.Status(), (int)h.Properties["Generation"].Value, h.Properties["Root"].Value as string)).ToList();
        Assert.Equal([("Succeeded", 1, null), ("Succeeded", 1, box.Root), ("Failed", 0, null), ("Succeeded", 2, null), ("Succeeded", 2, box.Root)], rows);
    }
}
