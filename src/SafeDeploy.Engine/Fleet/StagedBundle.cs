using System.Security.Cryptography;
using System.Text;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Fleet;

/// <summary>
/// A set of files staged to hosts by hash: the module, the one-file host, or one host's manifest and the files it
/// installs. Its folder name carries a hash of every file's SHA-256 (SHA256SUMS), so a changed file is a new folder and
/// an existing folder is the right content; a host checks every sum (sha256sum -c) before the folder is renamed into place.
/// </summary>
internal sealed class StagedBundle
{
    readonly object gate = new();
    string? tar;

    StagedBundle(string kind, string name, string baseDir, IReadOnlyList<string> files, string sums)
    {
        Kind = kind; Name = name; BaseDir = baseDir; Files = files; Sums = sums;
    }

    /// <summary>"runtime" or "payload": the folder of the host's fleet state it goes into.</summary>
    public string Kind { get; }
    /// <summary>The versioned folder name, e.g. module-0.1.0-3f2a…</summary>
    public string Name { get; }
    public string BaseDir { get; }
    /// <summary>Paths relative to <see cref="BaseDir"/>.</summary>
    public IReadOnlyList<string> Files { get; }
    /// <summary>The SHA256SUMS text (sha256sum's format).</summary>
    public string Sums { get; }
    /// <summary>The folder on a host, relative to its fleet directory.</summary>
    public string RemoteDir => Kind + "/" + Name;
    public long Bytes => Files.Sum(f => new FileInfo(Path.Combine(BaseDir, f)).Length);

    /// <summary>The bundle of <paramref name="relativeFiles"/>; <paramref name="known"/> remembers the sums of files that did not change (runtimes).</summary>
    public static StagedBundle Create(string kind, string prefix, string baseDir, IEnumerable<string> relativeFiles, FileSums? known = null)
    {
        var files = relativeFiles.Distinct(StringComparer.Ordinal).OrderBy(f => f, StringComparer.Ordinal).ToList();
        var sums = new StringBuilder();
        foreach (var f in files)
        {
            var path = Path.Combine(baseDir, f);
            string sum;
            if (known is not null) sum = known.Of(path);
            else using (var s = File.OpenRead(path)) sum = Convert.ToHexString(SHA256.HashData(s)).ToLowerInvariant();
            sums.Append(sum).Append("  ").Append(f).Append('\n');
        }
        var text = sums.ToString();
        var id = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(text))).ToLowerInvariant()[..16];
        return new StagedBundle(kind, prefix + id, baseDir, files, text);
    }

    /// <summary>Every file under <paramref name="dir"/> (relative), without debug symbols.</summary>
    public static IEnumerable<string> FilesUnder(string baseDir, string dir) =>
        Directory.Exists(Path.Combine(baseDir, dir))
            ? Directory.EnumerateFiles(Path.Combine(baseDir, dir), "*", SearchOption.AllDirectories)
                .Where(f => !f.EndsWith(".pdb", StringComparison.Ordinal)).Select(f => Path.GetRelativePath(baseDir, f))
            : [];

    /// <summary>The bundle as one tar file (made once, in <paramref name="workDir"/>), SHA256SUMS included.</summary>
    public string Tar(string workDir, CancellationToken token)
    {
        lock (gate)
        {
            if (tar is not null) return tar;
            var sumsDir = Directory.CreateDirectory(Path.Combine(workDir, Name + ".sums")).FullName;
            File.WriteAllText(Path.Combine(sumsDir, "SHA256SUMS"), Sums);
            var path = Path.Combine(workDir, $"{Name}.{Environment.ProcessId}.tar");
            var r = new ExternalCommand
            {
                Program = "tar",
                Arguments = ["-cf", path, "-C", BaseDir, .. Files, "-C", sumsDir, "SHA256SUMS"],
                Timeout = TimeSpan.FromMinutes(2),
            }.Run(token);
            if (!r.Succeeded)
                throw new SafeDeployException("StagingFailed", ErrorKind.WriteError, Name,
                    $"Packing '{Name}' for the hosts failed (tar exited with {r.ExitCode}): {r.StandardError.Trim()}", "Check that the files are readable.");
            return tar = path;
        }
    }
}
