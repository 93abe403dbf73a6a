using SafeDeploy.Engine.Platform;
using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.NativeShim;

public class NativeManifestTests
{
    [Fact]
    public void ExampleManifest_HasNoProblems()
    {
        using var ps = new PsSession();
        var r = ps.Run("Test-SafeDeployManifest $m", ("m", DeployedShim.Manifest));
        Assert.True(r.Output.Count == 0 && !r.AllErrors.Any(), r.Describe());
    }

    [Fact]
    public void NativeActionMistakes_AreReportedWithLineAndColumn_AllAtOnce()
    {
        using var dir = new TempDir("manifest");
        var manifest = dir.Write("deploy.yaml", """
            name: bad
            phases:
              - name: validate
                sharedLibrary: { path: lib.so, canary: maybe }
              - name: preload
                preload: { library: opt/libshim.so }
              - name: svc
                service: { action: reload, manager: process, command: [./service], pidFile: /run/x.pid }
              - name: svc2
                service: { action: stop, manager: launchd }
              - name: proc
                service: { action: start, manager: process, command: [./service] }
              - name: health
                health: { url: "ftp://127.0.0.1/health" }
              - name: loaded
                loaded: { library: /opt/libshim.so }
            """);
        using var ps = new PsSession();
        var r = ps.Run("Test-SafeDeployManifest $m", ("m", manifest));
        var problems = r.Output.Select(o => o.ToString()!).ToList();
        string Find(string text) => problems.FirstOrDefault(p => p.Contains(text)) ?? throw new Xunit.Sdk.XunitException($"no problem mentions '{text}':\n{string.Join("\n", problems)}");
        Assert.Contains("deploy.yaml:4:", Find("'canary' must be true or false"));
        Assert.Contains("deploy.yaml:6:", Find("'library' must be an absolute path"));
        Assert.Contains("deploy.yaml:8:", Find("'action' must be stop, start or restart"));
        Assert.Contains("deploy.yaml:10:", Find("'manager' must be systemd, command or process"));
        Find("needs 'command' and 'pidFile'");
        Find("'url' must be an absolute http://");
        Find("'loaded' needs exactly one of 'pidFile' or 'unit'");
    }

    [Fact]
    public void FirstDeployOfABadShim_RollsBackToNothing_NoPreloadFile_NoLibrary_NoService()
    {
        using var box = new ShimSandbox();
        var state = Path.Combine(box.Path, "state");
        using var ps = new PsSession();
        var vars = new System.Collections.Hashtable
        {
            ["version"] = "1", ["port"] = box.Port.ToString(), ["build"] = Path.Combine(box.Path, "build"), ["serviceProgram"] = ShimFixtures.Service,
            ["healthTimeout"] = "1s", ["shimDefines"] = "-DSHIM_BREAK_UNAME",
        };
        var r = ps.Run("Invoke-SafeDeploy -Manifest $m -Root $root -StateDirectory $state -Variables $vars",
            ("m", DeployedShim.Manifest), ("root", box.Root), ("state", state), ("vars", vars));
        foreach (var pidText in Directory.Exists(box["/run"]) ? Directory.GetFiles(box["/run"]).Select(File.ReadAllText) : []) box.Track(int.Parse(pidText.Trim()));
        Assert.True(r.Output.Count == 1 && r.Status(0) == "RolledBack", r.Describe());
        Assert.False(File.Exists(box["/etc/ld.so.preload"]));
        Assert.False(File.Exists(box["/opt/shim/lib/libshim.so"]));
        Assert.False(Directory.Exists(box["/opt/shim"])); // the directories the install created are gone too
        Assert.False(File.Exists(box["/run/shim-sample.pid"]));
        var refused = Assert.Throws<AggregateException>(() => new HttpClient().GetAsync($"http://127.0.0.1:{box.Port}/health").Wait());
        Assert.IsType<HttpRequestException>(refused.InnerException);
    }
}
