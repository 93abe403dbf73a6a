using System.Security.Cryptography;
using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.Deployment;

public class ModelActionTests
{
    [Fact]
    public void ModelPhase_FetchesIntoTheCacheAndInstallsACopy_UndoRemovesTheCopy_AndABadChecksumRollsBack()
    {
        using var box = new Sandbox();
        var bytes = RandomNumberGenerator.GetBytes(300_000);
        File.WriteAllBytes(box["model.bin"], bytes);
        var sha = Convert.ToHexString(SHA256.HashData(bytes)).ToLowerInvariant();
        string Manifest(string hash) => $$"""
            name: withmodel
            phases:
              - name: fetch
                model:
                  uri: model.bin
                  sha256: {{hash}}
                  cacheDirectory: /var/cache/models
                  target: /opt/models/model.bin
                  mode: "0644"
            """;
        var good = box.Write("good.yaml", Manifest(sha));
        using var ps = new PsSession();
        var vars = new (string, object?)[] { ("root", box.Root), ("state", box.State) };
        var r = ps.Run($"Invoke-SafeDeploy '{good}' -Root $root -StateDirectory $state", vars);
        Assert.True(r.AllErrors.Count() == 0, r.Describe());
        Assert.Equal("Succeeded", r.Status(0));
        Assert.Equal(bytes, File.ReadAllBytes(box.InRoot("/opt/models/model.bin")));
        Assert.NotEmpty(Directory.GetFiles(box.InRoot("/var/cache/models"), "model.bin", SearchOption.AllDirectories));

        var undo = ps.Run("Undo-SafeDeploy withmodel -StateDirectory $state", vars);
        Assert.Equal("Undone", undo.Status(0));
        Assert.False(File.Exists(box.InRoot("/opt/models/model.bin")));
        Assert.False(Directory.Exists(box.InRoot("/opt")));

        var bad = box.Write("bad.yaml", Manifest(new string('0', 64)));
        var failed = ps.Run($"Invoke-SafeDeploy '{bad}' -Root $root -StateDirectory $state", vars);
        Assert.NotEqual("Succeeded", failed.Status(0));
        Assert.Single(failed.AllErrors);
        Assert.False(File.Exists(box.InRoot("/opt/models/model.bin")));
    }
}
