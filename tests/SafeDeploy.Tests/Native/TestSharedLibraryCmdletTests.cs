using System.Management.Automation;
using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.NativeShim;

public class TestSharedLibraryCmdletTests
{
    [Fact]
    public void GoodShim_WithCanary_GivesAValidReport()
    {
        using var ps = new PsSession();
        var r = ps.Run("Test-SharedLibrary -Path $lib -Symbol shim_version -Canary", ("lib", ShimFixtures.Good));
        Assert.Empty(r.AllErrors);
        var report = Assert.Single(r.Output);
        Assert.Equal("SafeDeploy.Engine.SharedLibraries.SharedLibraryReport", report.TypeNames[0]);
        Assert.Equal(true, r.Prop(0, "IsValid"));
        Assert.Equal("ET_DYN", r.Prop(0, "Type"));
        Assert.Equal(2, ((System.Collections.ICollection)r.Prop(0, "Canary")!).Count);
    }

    [Fact]
    public void MissingFile_IsAnObjectNotFoundError_AndTheNextPathIsStillChecked()
    {
        using var ps = new PsSession();
        var r = ps.Run("Test-SharedLibrary -Path '/nonexistent/libshim.so', $lib", ("lib", ShimFixtures.Good));
        var error = Assert.Single(r.Errors);
        Assert.StartsWith("LibraryNotFound", error.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.ObjectNotFound, error.CategoryInfo.Category);
        Assert.Equal("/nonexistent/libshim.so", error.TargetObject);
        Assert.Single(r.Output);
        Assert.Equal(true, r.Prop(0, "IsValid"));
    }

    [Fact]
    public void BadLibraries_AreReportsWithProblems_NotErrors()
    {
        using var ps = new PsSession();
        using var dir = new TempDir("cmd");
        var text = dir.Write("notes.so", "text\n");
        var r = ps.Run("$libs | Test-SharedLibrary -Symbol shim_version -Canary -TimeoutSec 1 -Verbose",
            ("libs", new[] { ShimFixtures.Crash, ShimFixtures.Hang, ShimFixtures.NoSymbol, ShimFixtures.Executable, text }));
        Assert.Empty(r.AllErrors);
        Assert.Equal(5, r.Output.Count);
        Assert.All(Enumerable.Range(0, 5), i => Assert.Equal(false, r.Prop(i, "IsValid")));
        Assert.Contains(r.Verbose, v => v.Contains("SIGSEGV"));
        Assert.Contains(r.Verbose, v => v.Contains("hangs"));
        Assert.Equal(false, r.Prop(4, "IsElf"));
    }

    [Fact]
    public void Probe_ImpliesCanary_AndTheRelativePathResolvesFromTheCurrentLocation()
    {
        using var ps = new PsSession();
        var r = ps.Run("$null = $ExecutionContext.SessionState.Path.SetLocation($dir); Test-SharedLibrary ./libshim.so -Probe 'sh -c true'", ("dir", ShimFixtures.Dir));
        Assert.True(!r.AllErrors.Any(), r.Describe());
        Assert.Equal(ShimFixtures.Good, r.Prop(0, "Path"));
        Assert.Equal(3, ((System.Collections.ICollection)r.Prop(0, "Canary")!).Count);
    }
}
