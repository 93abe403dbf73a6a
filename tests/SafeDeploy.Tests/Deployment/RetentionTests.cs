using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.Deployment;

public class RetentionTests
{
    [Fact]
    public void OldRuns_KeepTheirSummaries_ButOnlyTheNewestFiveStandingGenerationsKeepBackups_AndUndoStillWorks()
    {
        using var box = new Sandbox();
        box.WriteInRoot("/etc/app.conf", "v0\n");
        var manifest = box.Write("deploy.yaml", "name: keep\nphases:\n  - name: conf\n    install: { source: conf, target: /etc/app.conf }\n");
        using var ps = new PsSession();
        var ids = new List<string>();
        for (int v = 1; v <= 7; v++)
        {
            box.Write("conf", $"v{v}\n");
            var r = ps.Run("Invoke-SafeDeploy $m -Root $root -StateDirectory $s", ("m", manifest), ("root", box.Root), ("s", box.State));
            Assert.True(r.Status(0) == "Succeeded", r.Describe());
            ids.Add((string)r.Prop(0, "Id")!);
        }
        var runs = Path.Combine(box.State, "state", "deployments", "keep");
        bool HasBackups(string id) => Directory.Exists(Path.Combine(runs, id, "backups"));
        Assert.False(HasBackups(ids[0]));
        Assert.False(HasBackups(ids[1]));
        Assert.All(ids.Skip(2), id => Assert.True(HasBackups(id), $"run {id} lost its backups"));
        var history = ps.Run("Get-SafeDeployHistory keep -StateDirectory $s", ("s", box.State));
        Assert.Equal(ids, history.Output.Select(o => (string)o.Properties["Id"].Value)); // every run's summary stays
        Assert.All(ids, id => Assert.True(File.Exists(Path.Combine(runs, id + ".journal"))));

        var undo = ps.Run("Undo-SafeDeploy keep -StateDirectory $s -Confirm:$false", ("s", box.State));
        Assert.True(undo.AllErrors.Count() == 0, undo.Describe());
        Assert.Equal("v6\n", File.ReadAllText(box.InRoot("/etc/app.conf")));
    }
}
