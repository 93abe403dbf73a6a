using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.Deployment;

public class IsolationTests
{
    /// <summary>The YamlDotNet another module (powershell-yaml) would have loaded first; restored by the PackageDownload in the test project.</summary>
    static string OtherYamlDotNet()
    {
        var packages = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } p ? p
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        var dll = Path.Combine(packages, "yamldotnet", "16.3.0", "lib", "net8.0", "YamlDotNet.dll");
        Assert.True(File.Exists(dll), $"YamlDotNet 16.3.0 is not restored at {dll}");
        return dll;
    }

    [Fact]
    public void AnotherYamlDotNetLoadedFirst_DoesNotBreakTheManifestParser()
    {
        using var box = new Sandbox();
        var manifest = box.Write("deploy.yaml", "name: iso\nphases:\n  - name: a\n    run: \"true\"\n  - name: b\n    dependsOn: a\n    run: \"true\"\n");
        var script = $$"""
            $other = [Reflection.Assembly]::LoadFrom('{{OtherYamlDotNet()}}')
            $null = [YamlDotNet.Serialization.Deserializer]::new()
            Import-Module '{{RepoPaths.ModuleManifest}}'
            $problems = @(Test-SafeDeployManifest -Path '{{manifest}}')
            $bad = @(Test-SafeDeployManifest -Path '{{box.Write("bad.yaml", "name: x\nphases: [\n")}}')
            $versions = [string[]][AppDomain]::CurrentDomain.GetAssemblies().Where({ $_.GetName().Name -eq 'YamlDotNet' }).ForEach({ $_.GetName().Version.ToString() })
            [Array]::Sort($versions)
            "problems=$($problems.Count) bad=$($bad[0].Code) versions=$($versions -join ',')"
            """;
        var r = HostProcess.Run(script, null, null, "-NoModule");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("problems=0 bad=YamlSyntax versions=16.", r.StdOut); // both copies loaded, side by side
        Assert.Contains(",18.", r.StdOut);
    }
}
