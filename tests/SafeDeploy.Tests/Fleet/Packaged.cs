using SafeDeploy.Engine.Platform;
using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.Fleet;

/// <summary>
/// The package's one-file safedeploy and its native safedeploy-step beside it (build.ps1 -Task Package, which CI runs before
/// the tests). Without a package, the same two publish lines once per test run, into out/test-singlefile (the module
/// travels separately).
/// </summary>
static class Packaged
{
    static readonly Lazy<string> folder = new(FindOrBuild);

    public static string SingleFile => Path.Combine(folder.Value, "safedeploy");
    public static string NativeStep => Path.Combine(folder.Value, "safedeploy-step");

    static string FindOrBuild()
    {
        var packaged = Path.Combine(RepoPaths.Root, "out", "safedeploy", "linux-x64");
        if (File.Exists(Path.Combine(packaged, "safedeploy")) && File.Exists(Path.Combine(packaged, "safedeploy-step"))) return packaged;
        var dir = Path.Combine(RepoPaths.Root, "out", "test-singlefile");
        Publish(["publish", Path.Combine(RepoPaths.Root, "src", "SafeDeploy.Host"), "-c", RepoPaths.Configuration, "-r", "linux-x64", "--self-contained", "true",
            "-p:PublishSingleFile=true", "-p:IncludeNativeLibrariesForSelfExtract=true", "-p:PublishReadyToRunComposite=false", "-o", dir, "-nologo", "-v", "q"]);
        var step = Path.Combine(RepoPaths.Root, "out", "obj", "test-step");
        Publish(["publish", Path.Combine(RepoPaths.Root, "src", "SafeDeploy.Step"), "-c", "Release", "-r", "linux-x64", "-o", step, "-nologo", "-v", "q"]);
        File.Copy(Path.Combine(step, "safedeploy-step"), Path.Combine(dir, "safedeploy-step"), overwrite: true);
        foreach (var f in Directory.GetFiles(dir).Where(f => Path.GetFileName(f) is not ("safedeploy" or "safedeploy-step"))) File.Delete(f);
        return dir;
    }

    static void Publish(string[] arguments)
    {
        var r = new ExternalCommand { Program = "dotnet", Arguments = arguments, Timeout = TimeSpan.FromMinutes(12) }.Run();
        Assert.True(r.Succeeded, $"{r.CommandLine} exited {r.ExitCode}:\n{r.StandardOutput}\n{r.StandardError}");
    }
}
