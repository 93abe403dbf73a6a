using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.Deployment;

public class WhatIfTests
{
    [Fact]
    public void WhatIf_ShowsEachEditFilePhasesDiff_FromTheOnePlan_AndChangesNothing()
    {
        using var box = new Sandbox();
        var conf = box.WriteInRoot("/etc/app.conf", "a=1\nkey=old\n");
        var manifest = box.Write("deploy.yaml", """
            name: preview
            phases:
              - name: conf
                editFile: { path: /etc/app.conf, ensureLine: "key=new", key: "key=" }
              - name: json
                editFile: { path: /etc/new.json, mergeJson: { gpu: 2 } }
            """);
        var before = box.Snapshot();
        var host = HostProcess.Run($"Invoke-SafeDeploy '{manifest}' -Root '{box.Root}' -StateDirectory '{box.State}' -WhatIf");
        var shown = host.StdOut + host.StdErr;
        Assert.True(host.ExitCode == 0, host.ToString());
        Assert.Contains("- key=old", shown);
        Assert.Contains("+ key=new", shown);
        Assert.Contains($"diff {box.InRoot("/etc/new.json")} (new file)", shown);
        Assert.Contains("\"gpu\": 2", shown);
        Assert.Equal(Sandbox.Describe(before), Sandbox.Describe(box.Snapshot()));
        Assert.Equal("a=1\nkey=old\n", File.ReadAllText(conf));
    }
}

public class NotFoundTests
{
    [Fact]
    public void AMissingManifestOrDeployment_IsANonTerminatingError_ThatSilentlyContinueQuiets()
    {
        using var box = new Sandbox();
        using var ps = new PsSession();
        var missing = ps.Run("Invoke-SafeDeploy $m -StateDirectory $s; 'after'", ("m", box["nope.yaml"]), ("s", box.State));
        Assert.StartsWith("ManifestNotFound", Assert.Single(missing.AllErrors).FullyQualifiedErrorId);
        Assert.Equal("after", missing.Output.Last().ToString()); // the script went on
        var quiet = ps.Run("Invoke-SafeDeploy $m -StateDirectory $s -ErrorAction SilentlyContinue; Undo-SafeDeploy ghost -StateDirectory $s -Confirm:$false -ErrorAction SilentlyContinue; Get-SafeDeployHistory ghost -StateDirectory $s -ErrorAction SilentlyContinue; 'done'",
            ("m", box["nope.yaml"]), ("s", box.State));
        Assert.Empty(quiet.AllErrors);
        Assert.Equal("done", quiet.Output.Single().ToString());
        var undo = ps.Run("Undo-SafeDeploy ghost -StateDirectory $s -Confirm:$false", ("s", box.State));
        var err = Assert.Single(undo.AllErrors);
        Assert.StartsWith("DeploymentNotFound", err.FullyQualifiedErrorId);
        Assert.Equal("ghost", err.TargetObject);
    }
}
