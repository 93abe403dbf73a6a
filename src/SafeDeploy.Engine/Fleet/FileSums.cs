using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using SafeDeploy.Engine.Files;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Fleet;

/// <summary>
/// The SHA-256 of each file the controller stages, remembered in its cache directory with the file's identity (device,
/// inode, size, mtime and ctime), so that a rollout does not read the whole one-file host (about 150 MB) again at every
/// run. A file whose identity changed is read again; so is one changed in the last two seconds, which is then not
/// remembered (a write within the clock's resolution could leave its times as they were). Each host still checks every
/// file against the sums when it unpacks them; a wrong or lost cache costs a read, never a wrong file.
/// </summary>
internal sealed class FileSums(string? cacheFile)
{
    static readonly TimeSpan settled = TimeSpan.FromSeconds(2);
    readonly object gate = new();
    readonly Dictionary<string, (string Identity, string Sum)> known = Load(cacheFile);
    readonly Dictionary<string, (string Identity, string Sum)> used = new(StringComparer.Ordinal);

    /// <summary>The file's SHA-256 (lower-case hex).</summary>
    public string Of(string path)
    {
        var full = Path.GetFullPath(path);
        var before = Native.Stat(full) ?? throw new FileNotFoundException($"'{full}' does not exist.", full);
        var identity = Identity(before);
        lock (gate)
            if (known.TryGetValue(full, out var k) && k.Identity == identity) { used[full] = k; return k.Sum; }
        string sum;
        using (var s = File.OpenRead(full)) sum = Convert.ToHexString(SHA256.HashData(s)).ToLowerInvariant();
        // Remembered only when nothing moved while it was read, and its last change is old enough to be told from a new one.
        if (Native.Stat(full) is { } after && Identity(after) == identity && DateTimeOffset.UtcNow - after.Changed > settled)
            lock (gate) used[full] = (identity, sum);
        return sum;
    }

    /// <summary>Writes what this run used (and only that: the cache never grows past one rollout's files); best effort.</summary>
    public void Save()
    {
        if (cacheFile is null) return;
        var sb = new StringBuilder();
        lock (gate)
            foreach (var (path, (identity, sum)) in used.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                sb.Append(identity).Append('\t').Append(sum).Append('\t').Append(path).Append('\n');
        try { AtomicFile.WriteAllText(cacheFile, sb.ToString()); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or Errors.SafeDeployException) { } // the next run reads the files again
    }

    static string Identity(FileStatus s) => string.Create(CultureInfo.InvariantCulture,
        $"{s.DevMajor}:{s.DevMinor}:{s.Inode}:{s.Size}:{s.LastWrite.UtcTicks}:{s.Changed.UtcTicks}");

    static Dictionary<string, (string, string)> Load(string? file)
    {
        var d = new Dictionary<string, (string, string)>(StringComparer.Ordinal);
        if (file is null || !File.Exists(file)) return d;
        try
        {
            foreach (var line in File.ReadLines(file))
                if (line.Split('\t', 3) is [var identity, var sum, var path] && sum.Length == 64) d[path] = (identity, sum);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { d.Clear(); }
        return d;
    }
}
