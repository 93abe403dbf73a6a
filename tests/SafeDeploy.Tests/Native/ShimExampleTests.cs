using SafeDeploy.Engine.Platform;
using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.NativeShim;

public class ShimExampleTests
{
    [Fact]
    public void RunPs1_DeploysTheExampleThroughTheHost_InASandboxUnderTmp_AndTheServiceOutlivesTheDeployer()
    {
        using var dir = new TempDir("example");
        int port = ShimSandbox.FreePort();
        var script = Path.Combine(RepoPaths.Root, "examples", "shim", "run.ps1");
        var pidFile = Path.Combine(dir.Path, "root", "run", "shim-sample.pid");
        try
        {
            var run = HostProcess.StartProgram(RepoPaths.HostExecutable, ["-File", script, "-Version", "7", "-Port", port.ToString(), "-Sandbox", dir.Path]);
            var outcome = run.Wait(TimeSpan.FromMinutes(2));
            run.Dispose();
            Assert.True(outcome.ExitCode == 0, outcome.ToString());
            Assert.Contains("Succeeded", outcome.StdOut);
            Assert.Matches(@"health:\s+ok shim=7 ", outcome.StdOut);
            Assert.Equal("/opt/shim/lib/libshim.so\n", File.ReadAllText(Path.Combine(dir.Path, "root", "etc", "ld.so.preload")));
            // The deployer has exited; the service it started (detached) still serves.
            Assert.StartsWith("200 ok shim=7 ", ShimSandbox.Get(new Uri($"http://127.0.0.1:{port}/health")));
        }
        finally
        {
            if (File.Exists(pidFile) && int.TryParse(File.ReadAllText(pidFile).Trim(), out var pid))
            {
                Native.Kill(pid, 9);
                Engine.Services.ProcessLiveness.WaitGoneAsync(pid, TimeSpan.FromSeconds(5), default).GetAwaiter().GetResult();
            }
        }
    }
}
