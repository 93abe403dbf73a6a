using System.IO.Compression;
using System.Reflection;
using System.Security.Cryptography;

namespace SafeDeploy.Host;

/// <summary>
/// Where SafeDeploy.psd1 is: $SAFEDEPLOY_MODULE; a SafeDeploy/ folder beside the program; the module carried inside the
/// program (the single-file build embeds it, unpacked once per version into the user's cache); or the checkout the
/// program was built in (a folder above it holding SafeDeploy.psd1 and the built bin/SafeDeploy.dll).
/// </summary>
static class ModuleLocator
{
    /// <summary>The embedded resource name (SafeDeploy.Host.csproj, EmbedModule).</summary>
    const string EmbeddedName = "SafeDeploy.Module.zip";

    public static string? Find()
    {
        var env = Environment.GetEnvironmentVariable("SAFEDEPLOY_MODULE");
        if (!string.IsNullOrEmpty(env)) return File.Exists(env) ? Path.GetFullPath(env) : null;
        var beside = Path.Combine(AppContext.BaseDirectory, "SafeDeploy", "SafeDeploy.psd1");
        if (File.Exists(beside)) return beside;
        if (Unpack() is { } inside) return inside;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var psd1 = Path.Combine(dir.FullName, "SafeDeploy.psd1");
            if (File.Exists(psd1) && File.Exists(Path.Combine(dir.FullName, "bin", "SafeDeploy.dll"))) return psd1;
        }
        return null;
    }

    /// <summary>
    /// Unpacks the embedded module into ~/.cache/safedeploy/module-&lt;hash&gt;/ (mode 0700) unless it is already there: into
    /// a fresh temporary folder beside it first, then renamed into place, so a concurrent start never sees half a module.
    /// </summary>
    static string? Unpack()
    {
        using var zip = Assembly.GetExecutingAssembly().GetManifestResourceStream(EmbeddedName);
        if (zip is null) return null;
        var bytes = new byte[zip.Length];
        zip.ReadExactly(bytes);
        var hash = Convert.ToHexStringLower(SHA256.HashData(bytes))[..16];
        var parent = Path.Combine(CacheHome(), "safedeploy");
        Directory.CreateDirectory(parent, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var target = Path.Combine(parent, "module-" + hash);
        var psd1 = Path.Combine(target, "SafeDeploy.psd1");
        if (File.Exists(psd1)) return psd1;
        var temp = Path.Combine(parent, $".unpack-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(temp, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        try
        {
            using (var archive = new ZipArchive(new MemoryStream(bytes), ZipArchiveMode.Read)) archive.ExtractToDirectory(temp);
            try { Directory.Move(temp, target); }
            catch (IOException) when (File.Exists(psd1)) { } // another process unpacked the same version first
        }
        finally { if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true); }
        return psd1;
    }

    static string CacheHome()
    {
        var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        if (!string.IsNullOrEmpty(xdg) && Path.IsPathRooted(xdg)) return xdg;
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        if (string.IsNullOrEmpty(home)) throw new IOException("neither XDG_CACHE_HOME nor HOME is set.");
        return Path.Combine(home, ".cache");
    }
}
