using System.Diagnostics;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.Host;

/// <summary>Where the build puts things: the version in one place, build output only in ignored folders, one solution.</summary>
public sealed class BuildLayoutTests
{
    [Fact]
    public void TheVersion_LivesInDirectoryBuildProps_AndTheManifestSaysTheSame()
    {
        var props = XDocument.Load(Path.Combine(RepoPaths.Root, "Directory.Build.props"));
        var version = props.Descendants("Version").Single().Value;
        Assert.Matches(@"^\d+\.\d+\.\d+$", version);
        var manifest = File.ReadAllText(RepoPaths.ModuleManifest);
        Assert.Equal(version, Regex.Match(manifest, @"ModuleVersion\s*=\s*'([^']*)'").Groups[1].Value);
        // The built host says the same: its assembly version comes from the props.
        var o = HostProcess.Run("(Get-Module SafeDeploy).Version.ToString(); $Host.Version.ToString(3)");
        Assert.True(o.ExitCode == 0, o.ToString());
        Assert.Equal($"{version}\n{version}\n", o.StdOut);
    }

    [Fact]
    public void TheBuild_WritesTheModuleIntoTheIgnoredBinFolder_AndNothingIntoTheSourceTree()
    {
        Assert.True(File.Exists(Path.Combine(RepoPaths.Root, "bin", "SafeDeploy.dll")));
        Assert.True(File.Exists(Path.Combine(RepoPaths.Root, "bin", "Dependencies", "SafeDeploy.Engine.dll")));
        Assert.Equal("bin/SafeDeploy.dll\n", Git("check-ignore", "bin/SafeDeploy.dll"));
        // module/ holds only committed format files: no built assembly lands there any more.
        Assert.Empty(Directory.GetFiles(Path.Combine(RepoPaths.Root, "module"), "*.dll", SearchOption.AllDirectories));
        Assert.Equal("", Git("status", "--porcelain", "--ignored", "--", "module", "en-US").Trim());
    }

    [Fact]
    public void TheModulesEngineAndDependencies_CarryNativeCode_ForTheRuntimeTheyRunOn_AndStillLoadAsNet8Il()
    {
        var dir = Path.Combine(RepoPaths.Root, "bin", "Dependencies");
        foreach (var name in new[] { "SafeDeploy.Engine", "YamlDotNet", "CliWrap" })
        {
            using var pe = new System.Reflection.PortableExecutable.PEReader(File.OpenRead(Path.Combine(dir, name + ".dll")));
            // A ReadyToRun image has a managed native header; an IL-only one has none.
            Assert.True(pe.PEHeaders.CorHeader!.ManagedNativeHeaderDirectory.Size > 0, $"{name}.dll in bin/Dependencies is IL only (not precompiled)");
        }
        // The IL is still built for net8.0, so PowerShell 7.4 loads it (and compiles the IL, ignoring native code it cannot use).
        using var engine = new System.Reflection.PortableExecutable.PEReader(File.OpenRead(Path.Combine(dir, "SafeDeploy.Engine.dll")));
        var md = System.Reflection.Metadata.PEReaderExtensions.GetMetadataReader(engine);
        var runtime = md.AssemblyReferences.Select(md.GetAssemblyReference).Single(r => md.GetString(r.Name) == "System.Runtime");
        Assert.Equal(8, runtime.Version.Major);
        // And the host loads it: its engine step answers (a request it does not know is an error result, not a crash).
        using var step = HostProcess.StartProgram("sh", ["-c", "echo '{\"op\":\"none\",\"done\":\"/nonexistent/x\"}' | exec \"$0\" -FleetStep", RepoPaths.HostExecutable],
            new Dictionary<string, string?> { ["SAFEDEPLOY_MODULE"] = RepoPaths.ModuleManifest });
        var o = step.Wait(TimeSpan.FromMinutes(1));
        Assert.True(o.ExitCode == 0, o.ToString());
        Assert.StartsWith("SAFEDEPLOY-RESULT status=Error ", o.StdOut);
    }

    [Fact]
    public void TheSolution_HoldsEveryProject_AndOnlyTheTestProjectIsATestProject()
    {
        var solution = XDocument.Load(Path.Combine(RepoPaths.Root, "SafeDeploy.slnx"));
        var projects = solution.Descendants("Project").Select(p => p.Attribute("Path")!.Value).ToList();
        Assert.Contains("bench/SafeDeploy.Bench/SafeDeploy.Bench.csproj", projects);
        var onDisk = Directory.GetFiles(RepoPaths.Root, "*.csproj", SearchOption.AllDirectories)
            .Select(p => Path.GetRelativePath(RepoPaths.Root, p)).Where(p => !p.StartsWith("out/") && !p.Contains("/obj/") && !p.Contains("/bin/")).Order().ToList();
        Assert.Equal(onDisk, projects.Order().ToList());
        var testProjects = projects.Where(p => File.ReadAllText(Path.Combine(RepoPaths.Root, p)).Contains("<IsTestProject>true</IsTestProject>")).ToList();
        Assert.Equal(["tests/SafeDeploy.Tests/SafeDeploy.Tests.csproj"], testProjects);
    }

    static string Git(params string[] args)
    {
        var psi = new ProcessStartInfo("git") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = RepoPaths.Root };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(TimeSpan.FromSeconds(30))) { p.Kill(); throw new TimeoutException("git " + string.Join(' ', args)); }
        return output;
    }
}
