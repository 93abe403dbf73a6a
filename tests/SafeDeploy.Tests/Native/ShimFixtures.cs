using System.Diagnostics;
using SafeDeploy.Tests.Infrastructure;

// Namespace NativeShim (folder Native/): a namespace "SafeDeploy.Tests.Native" would shadow the engine's Platform.Native
// class for every test namespace beside it. The filter FullyQualifiedName~SafeDeploy.Tests.Native still selects these.
namespace SafeDeploy.Tests.NativeShim;

/// <summary>
/// The shim fixtures of tests/fixtures/shim built with the real gcc and make, once per test run, into a folder under the
/// test output (never beside the sources).
/// </summary>
public static class ShimFixtures
{
    static readonly Lazy<string> built = new(Build, LazyThreadSafetyMode.ExecutionAndPublication);

    public static string Source => Path.Combine(RepoPaths.Fixtures, "shim");
    /// <summary>The folder holding every built fixture.</summary>
    public static string Dir => built.Value;
    public static string Good => Path.Combine(Dir, "libshim.so");
    public static string GoodV2 => Path.Combine(Dir, "libshim-v2.so");
    public static string NoSymbol => Path.Combine(Dir, "libshim-nosymbol.so");
    public static string Crash => Path.Combine(Dir, "libshim-crash.so");
    public static string Hang => Path.Combine(Dir, "libshim-hang.so");
    public static string Unhealthy => Path.Combine(Dir, "libshim-unhealthy.so");
    public static string NeedsMissing => Path.Combine(Dir, "libshim-needs-missing.so");
    /// <summary>A real 32-bit library when gcc -m32 can link one here; null otherwise (tests then use a hand-made header).</summary>
    public static string? Shim32 => File.Exists(Path.Combine(Dir, "libshim32.so")) ? Path.Combine(Dir, "libshim32.so") : null;
    public static string Executable => Path.Combine(Dir, "hello");
    public static string PieExecutable => Path.Combine(Dir, "hello-pie");
    public static string Service => Path.Combine(Dir, "service");
    public static string Harness => Path.Combine(Dir, "harness");

    static string Build()
    {
        var output = Path.Combine(AppContext.BaseDirectory, "shim-fixtures");
        if (Directory.Exists(output)) Directory.Delete(output, recursive: true);
        Directory.CreateDirectory(output);
        Make(output, "all");
        Make(output, "shim", "VERSION=2", "SHIM=libshim-v2.so");
        Make(output, "shim32", allowFailure: true);
        return output;
    }

    /// <summary>Runs make in the fixture sources with OUT=<paramref name="output"/>; returns (exit code, output).</summary>
    public static (int ExitCode, string Output) Make(string output, string target, params string[] vars) => Make(output, target, false, vars);

    public static (int ExitCode, string Output) Make(string output, string target, bool allowFailure, params string[] vars)
    {
        var psi = new ProcessStartInfo("make") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "-s", "-C", Source, "OUT=" + output, target }.Concat(vars)) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        var text = stdout + stderr.Result;
        if (p.ExitCode != 0 && !allowFailure) throw new InvalidOperationException($"make {target} failed:\n{text}");
        return (p.ExitCode, text);
    }

    /// <summary>A copy of a fixture with some bytes changed (little-endian 16-bit value at <paramref name="offset"/>).</summary>
    public static string PatchedCopy(string source, string destination, int offset, ushort value)
    {
        var bytes = File.ReadAllBytes(source);
        BitConverter.TryWriteBytes(bytes.AsSpan(offset, 2), value);
        File.WriteAllBytes(destination, bytes);
        return destination;
    }
}
