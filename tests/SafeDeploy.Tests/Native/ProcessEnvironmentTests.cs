using System.Collections;
using SafeDeploy.Engine.Platform;
using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.NativeShim;

public class ProcessEnvironmentTests
{
    static Hashtable Caller() => new()
    {
        ["PATH"] = "/home/alice/bin:.:/usr/bin", ["HOME"] = "/root", ["USER"] = "root", ["LOGNAME"] = "root", ["LANG"] = "C.UTF-8",
        ["LC_ALL"] = "C", ["TERM"] = "xterm", ["TZ"] = "UTC",
        ["SSH_AUTH_SOCK"] = "/tmp/ssh-x/agent.1", ["HF_TOKEN"] = "hf_secret", ["GITHUB_TOKEN"] = "ghp_secret", ["AWS_SECRET_ACCESS_KEY"] = "aws",
        ["AWS_PROFILE"] = "prod", ["DB_PASSWORD"] = "pw", ["SIGNING_KEY"] = "k", ["LD_PRELOAD"] = "/tmp/evil.so", ["CUDA_VISIBLE_DEVICES"] = "0,1",
        ["NCCL_DEBUG"] = "INFO", ["NCCL_SOCKET_IFNAME"] = "eth0",
    };

    [Fact]
    public void Default_KeepsOnlyTheAllowList_WithTheSafePath_AndNoSecret()
    {
        var env = ProcessEnvironment.Default(Caller()).Variables;
        Assert.Equal(new Dictionary<string, string>
        {
            ["HOME"] = "/root", ["LANG"] = "C.UTF-8", ["LC_ALL"] = "C", ["LOGNAME"] = "root", ["PATH"] = ProcessEnvironment.DefaultPath,
            ["TERM"] = "xterm", ["TZ"] = "UTC", ["USER"] = "root",
        }, env);
        Assert.Equal("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", env["PATH"]);
    }

    [Fact]
    public void Manifest_SetsVariables_PhaseWins_AndInheritsNamedCallerVariablesOnPurpose()
    {
        var deployment = new EnvironmentSpec(new Dictionary<string, string> { ["MODE"] = "prod", ["PATH"] = "/opt/tools/bin:/usr/bin" },
            EnvironmentInheritance.Of(["CUDA_VISIBLE_DEVICES"]));
        var phase = new EnvironmentSpec(new Dictionary<string, string> { ["MODE"] = "canary" }, EnvironmentInheritance.Of(["NCCL_*", "HF_TOKEN"]));
        var env = ProcessEnvironment.FromManifest(deployment, phase, Caller()).Variables;
        Assert.Equal("canary", env["MODE"]);
        Assert.Equal("/opt/tools/bin:/usr/bin", env["PATH"]);
        Assert.Equal("INFO", env["NCCL_DEBUG"]);
        Assert.Equal("eth0", env["NCCL_SOCKET_IFNAME"]);
        Assert.Equal("hf_secret", env["HF_TOKEN"]); // named on purpose
        Assert.False(env.ContainsKey("CUDA_VISIBLE_DEVICES")); // the phase's inheritEnvironment replaces the deployment's
        Assert.False(env.ContainsKey("SSH_AUTH_SOCK"));
        Assert.Equal("/root", env["HOME"]);

        var deploymentOnly = ProcessEnvironment.FromManifest(deployment, new EnvironmentSpec(), Caller()).Variables;
        Assert.Equal("0,1", deploymentOnly["CUDA_VISIBLE_DEVICES"]);
        Assert.False(deploymentOnly.ContainsKey("NCCL_DEBUG"));
    }

    [Fact]
    public void InheritTrue_TakesTheCallersWholeEnvironment_AndFalseNotEvenTheAllowList()
    {
        var all = ProcessEnvironment.FromManifest(new EnvironmentSpec(Inherit: EnvironmentInheritance.Everything), null, Caller()).Variables;
        Assert.Equal(Caller().Count, all.Count);
        Assert.Equal("/home/alice/bin:.:/usr/bin", all["PATH"]);
        Assert.Equal("/tmp/ssh-x/agent.1", all["SSH_AUTH_SOCK"]);

        var none = ProcessEnvironment.FromManifest(new EnvironmentSpec(new Dictionary<string, string> { ["A"] = "1" }, EnvironmentInheritance.Nothing), null, Caller()).Variables;
        Assert.Equal(new Dictionary<string, string> { ["A"] = "1", ["PATH"] = ProcessEnvironment.DefaultPath }, none);
    }

    [Fact]
    public void InvalidNames_AreReported_ForTheManifestParser()
    {
        Assert.Null(ProcessEnvironment.ValidateName("CUDA_HOME"));
        Assert.NotNull(ProcessEnvironment.ValidateName("A=B"));
        Assert.NotNull(ProcessEnvironment.ValidateName("1X"));
        Assert.NotNull(ProcessEnvironment.ValidateName(""));
        Assert.Null(ProcessEnvironment.ValidateInheritEntry("NCCL_*"));
        Assert.NotNull(ProcessEnvironment.ValidateInheritEntry("*"));
        Assert.NotNull(ProcessEnvironment.ValidateInheritEntry("A*B"));
        Assert.Throws<ArgumentException>(() => ProcessEnvironment.FromManifest(new EnvironmentSpec(new Dictionary<string, string> { ["A B"] = "1" }), null, Caller()));
    }

    [Fact]
    public async Task ExternalCommand_WithAnIsolatedEnvironment_TheChildSeesExactlyThatEnvironment()
    {
        // Real variables of this process, as an operator's shell would hold them when running SafeDeploy with sudo -E.
        using var scope = new EnvScope(("SSH_AUTH_SOCK", "/tmp/ssh-test/agent.9"), ("HF_TOKEN", "hf_test_secret"), ("SAFEDEPLOY_TEST_PASSWORD", "pw"),
            ("PATH", "/tmp/not-trusted:" + Environment.GetEnvironmentVariable("PATH")));
        var isolated = ProcessEnvironment.Default().With([new("SAFEDEPLOY_PHASE", "build")]);
        var r = await new ExternalCommand
        {
            Program = "/usr/bin/env", Arguments = ["-0"], IsolatedEnvironment = isolated, Environment = new Dictionary<string, string?> { ["EXTRA"] = "1" },
        }.RunAsync();
        Assert.True(r.Succeeded, r.StandardError);
        var seen = r.StandardOutput.Split('\0', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('=', 2)).ToDictionary(p => p[0], p => p[1]);
        var expected = new Dictionary<string, string>(isolated.Variables) { ["EXTRA"] = "1" };
        Assert.Equal(expected.OrderBy(p => p.Key), seen.OrderBy(p => p.Key));
        Assert.Equal(ProcessEnvironment.DefaultPath, seen["PATH"]);
        Assert.DoesNotContain("hf_test_secret", r.StandardOutput);

        // Without an isolated environment SafeDeploy's own tools still get the deployer's (git needs SSH_AUTH_SOCK to push).
        var own = await new ExternalCommand { Program = "/usr/bin/env" }.RunAsync();
        Assert.Contains("SSH_AUTH_SOCK=/tmp/ssh-test/agent.9", own.StandardOutput);
    }
}
