using System.Diagnostics;

namespace SafeDeploy.Tests.Infrastructure;

/// <summary>A fresh directory under /tmp, removed (whatever its modes) on Dispose.</summary>
public sealed class TempDir : IDisposable
{
    public TempDir(string? prefix = null)
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"sdt-{prefix ?? "t"}-{Guid.NewGuid():N}"[..32]);
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string this[string relative] => System.IO.Path.Combine(Path, relative);

    public string Write(string relative, string content)
    {
        var full = this[relative];
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(full)!);
        File.WriteAllText(full, content);
        return full;
    }

    public void Dispose()
    {
        try
        {
            // chattr-free cleanup: restore owner write bits first, then remove.
            Process.Start(new ProcessStartInfo("chmod", ["-R", "u+rwX", Path]) { RedirectStandardError = true })?.WaitForExit(10_000);
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}

/// <summary>Sets environment variables for the life of a test and restores them (tests run one at a time).</summary>
public sealed class EnvScope : IDisposable
{
    readonly Dictionary<string, string?> saved = new();

    public EnvScope(params (string Name, string? Value)[] vars)
    {
        foreach (var (name, value) in vars)
        {
            saved[name] = Environment.GetEnvironmentVariable(name);
            Environment.SetEnvironmentVariable(name, value);
        }
    }

    /// <summary>A fresh HOME with no XDG overrides: nothing under it exists yet.</summary>
    public static EnvScope FreshHome(string home) =>
        new(("HOME", home), ("XDG_STATE_HOME", null), ("XDG_CACHE_HOME", null), ("XDG_RUNTIME_DIR", null));

    public void Dispose()
    {
        foreach (var (name, value) in saved) Environment.SetEnvironmentVariable(name, value);
    }
}
