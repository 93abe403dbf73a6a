using SafeDeploy.Engine.Manifest;
using SafeDeploy.Engine.Platform;
using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.Deployment;

/// <summary>Run phases start from a clean environment (issue 12 item 7): the deployer's secrets never reach them.</summary>
public class RunEnvironmentTests
{
    const string Manifest = """
        name: envtest
        variables:
          greeting: hello
        environment: { FROM_MANIFEST: "${greeting}", OVERRIDDEN: top }
        phases:
          - name: plain
            run: env > "$SAFEDEPLOY_ROOT/var/plain.env"
          - name: asked
            run:
              command: env > "$SAFEDEPLOY_ROOT/var/asked.env"
              environment: { OVERRIDDEN: phase }
              inheritEnvironment: [WIRE_ASKED, WIRE_PREFIX_*]
        """;

    static Dictionary<string, string> Read(string file) =>
        File.ReadAllLines(file).Where(l => l.Contains('=')).Select(l => l.Split('=', 2)).GroupBy(p => p[0]).ToDictionary(g => g.Key, g => g.Last()[1]);

    [Fact]
    public void ARunPhase_SeesTheDefaultPathAndTheManifestsVariables_NotTheDeployersSecrets_UnlessInherited()
    {
        using var box = new Sandbox();
        Directory.CreateDirectory(box.InRoot("/var"));
        var manifest = box.Write("deploy.yaml", Manifest);
        var outcome = HostProcess.Run($"Invoke-SafeDeploy '{manifest}' -Root '{box.Root}' -StateDirectory '{box.State}'",
            new Dictionary<string, string?>
            {
                ["HF_TOKEN"] = "hf_secret_wire_test", ["SSH_AUTH_SOCK"] = "/tmp/ssh-wire-test/agent.1",
                ["WIRE_ASKED"] = "asked-value", ["WIRE_PREFIX_ONE"] = "one", ["WIRE_NOT_ASKED"] = "no",
                ["PATH"] = "/tmp/not-a-safe-dir:" + Environment.GetEnvironmentVariable("PATH"),
            }, TimeSpan.FromMinutes(3));
        Assert.True(outcome.ExitCode == 0, outcome.ToString());

        var plain = Read(box.InRoot("/var/plain.env"));
        Assert.DoesNotContain("HF_TOKEN", plain.Keys);
        Assert.DoesNotContain("SSH_AUTH_SOCK", plain.Keys);
        Assert.DoesNotContain("WIRE_ASKED", plain.Keys);
        Assert.Equal(ProcessEnvironment.DefaultPath, plain["PATH"]);
        Assert.Equal("hello", plain["FROM_MANIFEST"]);
        Assert.Equal("top", plain["OVERRIDDEN"]);
        Assert.Equal("plain", plain["SAFEDEPLOY_PHASE"]);
        Assert.Equal("envtest", plain["SAFEDEPLOY_DEPLOYMENT"]);
        Assert.True(plain.ContainsKey("SAFEDEPLOY_ROOT"));

        var asked = Read(box.InRoot("/var/asked.env"));
        Assert.Equal("asked-value", asked["WIRE_ASKED"]);
        Assert.Equal("one", asked["WIRE_PREFIX_ONE"]);
        Assert.DoesNotContain("WIRE_NOT_ASKED", asked.Keys);
        Assert.DoesNotContain("HF_TOKEN", asked.Keys);
        Assert.Equal("phase", asked["OVERRIDDEN"]);
        Assert.Equal("hello", asked["FROM_MANIFEST"]);
        Assert.Equal(ProcessEnvironment.DefaultPath, asked["PATH"]);
    }

    [Fact]
    public void BadEnvironmentNames_AreManifestErrors_AtTheirLine()
    {
        var text = """
            name: bad
            environment: { "1BAD": x }
            inheritEnvironment: yes-please
            phases:
              - name: p
                run:
                  command: "true"
                  inheritEnvironment: [GOOD, "BAD-NAME"]
            """;
        var problems = new ManifestParser().Parse(text, "/m/deploy.yaml").Errors.ToList();
        Assert.Contains(problems, p => p.Line == 2 && p.Message.Contains("'1BAD'") && p.File == "/m/deploy.yaml");
        Assert.Contains(problems, p => p.Line == 3 && p.Message.Contains("inheritEnvironment"));
        Assert.Contains(problems, p => p.Line == 8 && p.Message.Contains("'BAD-NAME'"));
        Assert.Equal(3, problems.Count);

        var good = new ManifestParser().Parse("""
            name: good
            inheritEnvironment: true
            phases:
              - name: p
                run: { command: "true", inheritEnvironment: false }
            """, "/m/deploy.yaml");
        Assert.True(good.IsValid, string.Join("; ", good.Problems.Select(p => p.Message)));
        Assert.Equal(EnvironmentInheritance.Everything, good.Manifest!.Environment!.Inherit);
    }
}
