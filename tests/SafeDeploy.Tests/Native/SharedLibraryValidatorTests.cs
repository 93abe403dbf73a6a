using System.Diagnostics;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.SharedLibraries;
using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.NativeShim;

public class SharedLibraryValidatorTests
{
    static SharedLibraryReport Check(string path, bool canary = true, string[]? symbols = null, string[]? probes = null, double timeout = 10) =>
        SharedLibraryValidator.Validate(path, new SharedLibraryCheckOptions
        {
            Canary = canary, Symbols = symbols ?? ["shim_version"], Probes = probes ?? [], Timeout = TimeSpan.FromSeconds(timeout),
        });

    [Fact]
    public void GoodShim_IsValid_WithItsSymbol_AndBothCanariesPassing()
    {
        var r = Check(ShimFixtures.Good);
        Assert.True(r.IsValid, string.Join("\n", r.Problems));
        Assert.True(r.IsElf);
        Assert.Equal("ELF64", r.Class);
        Assert.Equal("x86-64", r.Machine);
        Assert.Equal(r.HostMachine, r.Machine);
        Assert.Equal("ET_DYN", r.Type);
        Assert.Equal("SharedLibrary", r.Kind);
        Assert.True(r.IsSharedObject);
        Assert.Equal(["shim_version"], r.SymbolsFound);
        Assert.Empty(r.SymbolsMissing);
        Assert.Contains("libc.so.6", r.Needed);
        Assert.Equal(["/bin/true", "/bin/sh -c true"], r.Canary.Select(c => c.Program));
        Assert.All(r.Canary, c => { Assert.True(c.Passed); Assert.Equal(0, c.ExitCode); Assert.Null(c.Signal); Assert.False(c.TimedOut); });
        Assert.Equal(64, r.Sha256!.Length);
    }

    [Fact]
    public void NoSymbolVariant_IsInvalid_NamingTheMissingSymbol()
    {
        var r = Check(ShimFixtures.NoSymbol, symbols: ["shim_version", "shim_init_count"]);
        Assert.False(r.IsValid);
        Assert.Equal(["shim_init_count"], r.SymbolsFound);
        Assert.Equal(["shim_version"], r.SymbolsMissing);
        Assert.Contains(r.Problems, p => p.Contains("shim_version"));
        Assert.All(r.Canary, c => Assert.True(c.Passed)); // it loads fine: only the symbol check catches it
    }

    [Fact]
    public void CrashingConstructor_IsReportedAsSigsegv()
    {
        var r = Check(ShimFixtures.Crash);
        Assert.False(r.IsValid);
        var c = r.Canary[0];
        Assert.False(c.Passed);
        Assert.Equal(11, c.Signal);
        Assert.Equal(139, c.ExitCode);
        Assert.Contains("SIGSEGV", c.Problem);
        Assert.Contains(r.Problems, p => p.Contains("SIGSEGV"));
    }

    [Fact]
    public void HangingConstructor_IsKilledAtTheTimeout_AndReported()
    {
        var clock = Stopwatch.StartNew();
        var r = Check(ShimFixtures.Hang, timeout: 1);
        Assert.False(r.IsValid);
        Assert.All(r.Canary, c => { Assert.True(c.TimedOut); Assert.False(c.Passed); Assert.Contains("hangs", c.Problem); });
    }

    [Fact]
    public void UnresolvedDependency_ShowsTheLoadersComplaint()
    {
        var r = Check(ShimFixtures.NeedsMissing);
        Assert.False(r.IsValid);
        Assert.Contains("libshimdep_gone.so", r.Needed);
        var c = r.Canary[0];
        Assert.False(c.Passed);
        Assert.Equal(127, c.ExitCode);
        Assert.Contains("libshimdep_gone.so", c.StdErr);
        Assert.Contains("loader", c.Problem);
    }

    [Fact]
    public void WrongArchitectureAndClass_AreInvalid_AndNeverLoadedByACanary()
    {
        using var dir = new TempDir("val");
        var arm = ShimFixtures.PatchedCopy(ShimFixtures.Good, dir["libshim-arm64.so"], 18, 183);
        foreach (var lib in new[] { arm, ShimFixtures.Shim32 }.OfType<string>())
        {
            var r = Check(lib);
            Assert.False(r.IsValid);
            Assert.True(r.IsElf);
            Assert.False(r.MatchesHost);
            Assert.NotEqual(r.HostMachine, r.Machine);
            Assert.Empty(r.Canary);
            Assert.Contains(r.Problems, p => p.Contains("would not load it"));
        }
        if (ShimFixtures.Shim32 is { } s32) Assert.Equal("ELF32", Check(s32).Class);
    }

    [Fact]
    public void Executables_AreNotSharedObjects()
    {
        var exec = Check(ShimFixtures.Executable, symbols: []);
        Assert.False(exec.IsValid);
        Assert.Equal("ET_EXEC", exec.Type);
        Assert.False(exec.IsSharedObject);
        var pie = Check(ShimFixtures.PieExecutable, symbols: []);
        Assert.False(pie.IsValid);
        Assert.Equal("ET_DYN", pie.Type);
        Assert.Equal("PieExecutable", pie.Kind);
        Assert.Contains(pie.Problems, p => p.Contains("position-independent executable"));
    }

    [Fact]
    public void TextFileAndTruncatedCopy_AreReported_NotThrown()
    {
        using var dir = new TempDir("val");
        var text = Check(dir.Write("libfake.so", "this is not a library\n"));
        Assert.False(text.IsValid);
        Assert.False(text.IsElf);
        Assert.Contains(text.Problems, p => p.Contains("not an ELF file"));
        Assert.Equal(["shim_version"], text.SymbolsMissing);

        var bytes = File.ReadAllBytes(ShimFixtures.Good);
        File.WriteAllBytes(dir["libcut.so"], bytes[..(bytes.Length / 3)]);
        var cut = Check(dir["libcut.so"]);
        Assert.False(cut.IsValid);
        Assert.Contains(cut.Problems, p => p.Contains("truncated"));
        Assert.Empty(cut.Canary);
    }

    [Fact]
    public void MissingFile_Throws_ObjectNotFound()
    {
        var e = Assert.Throws<SafeDeployException>(() => Check("/nonexistent/libshim.so"));
        Assert.Equal("LibraryNotFound", e.ErrorId);
        Assert.Equal(ErrorKind.ObjectNotFound, e.Kind);
        Assert.Equal("/nonexistent/libshim.so", e.Target);
    }

    [Fact]
    public void Probes_RunWherePresent_ComparedWithTheirOwnBaseline()
    {
        var r = Check(ShimFixtures.Good, probes: ["sh -c 'exit 3'", "no-such-program-xyz --version"]);
        Assert.True(r.IsValid, string.Join("\n", r.Problems));
        var probe = r.Canary.Single(c => c.Program == "sh -c 'exit 3'");
        Assert.Equal(3, probe.ExitCode);
        Assert.Equal(3, probe.BaselineExitCode);
        Assert.True(probe.Passed);
        Assert.True(r.Canary.Single(c => c.Program.StartsWith("no-such")).Skipped);

        var crash = Check(ShimFixtures.Crash, probes: ["sh -c 'exit 3'"]);
        var crashedProbe = crash.Canary.Single(c => c.Program == "sh -c 'exit 3'");
        Assert.False(crashedProbe.Passed);
        Assert.Equal(3, crashedProbe.BaselineExitCode);
        Assert.Equal(11, crashedProbe.Signal);
    }

    [Fact]
    public void UnhealthyVariant_PassesValidation_ItIsTheHealthCheckThatCatchesIt()
    {
        Assert.True(Check(ShimFixtures.Unhealthy).IsValid);
    }

    [Fact]
    public void TwentyThreadsDlopenAtOnce_TheConstructorRunsExactlyOnce()
    {
        var psi = new ProcessStartInfo(ShimFixtures.Harness, [ShimFixtures.Good]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        Assert.True(p.WaitForExit(30_000));
        Assert.Equal(0, p.ExitCode);
        Assert.Contains("threads=20 init_count=1", output);
    }

    [Fact]
    public void BrokenVariant_DoesNotCompile()
    {
        using var dir = new TempDir("val");
        var (code, output) = ShimFixtures.Make(dir.Path, "broken", allowFailure: true);
        Assert.NotEqual(0, code);
        Assert.Contains("broken.c", output);
        Assert.False(File.Exists(dir["libshim-broken.so"]));
    }
}
