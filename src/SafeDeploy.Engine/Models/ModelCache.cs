using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Files;
using SafeDeploy.Engine.Locking;
using SafeDeploy.Engine.Platform;
using SafeDeploy.Engine.StateDirectories;

namespace SafeDeploy.Engine.Models;

/// <summary>The files of one cache entry: a directory per URI holding the model, its sidecar, its lock and any partials.</summary>
public sealed record ModelEntryPaths(string Uri, string Key, string Directory, string Name)
{
    public string FilePath => System.IO.Path.Combine(Directory, Name);
    public string MetadataPath => System.IO.Path.Combine(Directory, ".entry.json");
    /// <summary>The per-entry flock; never deleted, so every process always locks the same inode.</summary>
    public string LockPath => System.IO.Path.Combine(Directory, ".entry.lock");
    public string NewPartialPath() =>
        System.IO.Path.Combine(Directory, $".{Convert.ToHexString(RandomNumberGenerator.GetBytes(6)).ToLowerInvariant()}.partial");
    public static string PartialMetadataPath(string partial) => partial + ".json";
}

/// <summary>
/// A directory of cached models. Each entry lives in a directory named after the SHA-256 of its canonical URI, so two
/// URIs whose file names are equal never collide; internal files start with '.', which a model name may not.
/// </summary>
public sealed class ModelCache
{
    static readonly Regex validName = new("^[A-Za-z0-9_+@=,~-][A-Za-z0-9._+@=,~-]*$", RegexOptions.CultureInvariant);

    public ModelCache(string directory) => Directory = System.IO.Path.GetFullPath(directory);

    public string Directory { get; }

    /// <summary>The default cache: the 'models' folder of SafeDeploy's state cache directory (created on first use).</summary>
    public static ModelCache Default(IOperationReporter? reporter = null) =>
        new(System.IO.Path.Combine(StateDirectoryManager.Default(reporter).CacheDir, "models"));

    /// <summary>Creates the cache directory safely (no untrusted symlinks, no world-writable parents).</summary>
    public void EnsureExists() => SecureDirectory.Ensure(Directory, 0x1ED /* 0755: models are shared read-only */);

    /// <summary>Turns user input (URL, file:// URI, plain path) into the canonical URI that keys the cache.</summary>
    public static string CanonicalUri(string input)
    {
        if (string.IsNullOrWhiteSpace(input))
            throw new SafeDeployException("InvalidUri", ErrorKind.InvalidArgument, input ?? "", "The model URI is empty.", "Give an http(s):// or file:// URI or a path.");
        if (System.Uri.TryCreate(input, UriKind.Absolute, out var u) && u.Scheme is "http" or "https" or "file")
            return u.Scheme == "file" ? new System.Uri(u.LocalPath).AbsoluteUri : u.AbsoluteUri;
        if (input.Contains("://", StringComparison.Ordinal))
            throw new SafeDeployException("UnsupportedUri", ErrorKind.InvalidArgument, input,
                $"'{DisplayUri(input)}' is not an http://, https:// or file:// URI.", "Use one of those schemes or a plain path.");
        return new System.Uri(System.IO.Path.GetFullPath(input)).AbsoluteUri;
    }

    /// <summary>The URI without user:password, for messages.</summary>
    public static string DisplayUri(string uri) =>
        System.Uri.TryCreate(uri, UriKind.Absolute, out var u) && !string.IsNullOrEmpty(u.UserInfo)
            ? new UriBuilder(u) { UserName = "", Password = "" }.Uri.AbsoluteUri
            : uri;

    public static string KeyOf(string canonicalUri) =>
        Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(canonicalUri)))[..32].ToLowerInvariant();

    /// <summary>Where the entry for <paramref name="uri"/> lives (nothing is created).</summary>
    public ModelEntryPaths PathsFor(string uri, string? name = null)
    {
        var canonical = CanonicalUri(uri);
        var key = KeyOf(canonical);
        string fileName;
        if (name is not null)
        {
            if (!IsValidName(name))
                throw new SafeDeployException("InvalidModelName", ErrorKind.InvalidArgument, name,
                    $"'{name}' is not a valid model file name: use letters, digits and . _ + @ = , ~ -, not starting with '.'.",
                    "Choose a plain file name such as 'llama-3-8b.gguf'.");
            fileName = name;
        }
        else
        {
            var last = Uri.UnescapeDataString(new Uri(canonical).AbsolutePath.TrimEnd('/').Split('/').Last());
            fileName = IsValidName(last) ? last : "model";
        }
        return new ModelEntryPaths(canonical, key, System.IO.Path.Combine(Directory, key), fileName);
    }

    static bool IsValidName(string name) => name.Length is > 0 and <= 200 && validName.IsMatch(name);

    internal static ModelEntryMetadata? ReadMetadata(string path)
    {
        try { return JsonSerializer.Deserialize(File.ReadAllBytes(path), ModelJson.Default.ModelEntryMetadata); }
        catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException) { return null; }
    }

    /// <summary>
    /// Runs the sidecar's (de)serialisation once on a sample, so that its first real use, by a waiter the moment the
    /// lock it waited for is released, does not first build the serialiser's metadata.
    /// </summary>
    internal static void PrepareMetadataCode()
    {
        var sample = new ModelEntryMetadata("file:///", "x", 0, "", null, null, false, DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch, 0);
        _ = JsonSerializer.Deserialize(JsonSerializer.SerializeToUtf8Bytes(sample, ModelJson.Default.ModelEntryMetadata), ModelJson.Default.ModelEntryMetadata);
    }

    internal static PartialMetadata? ReadPartialMetadata(string path)
    {
        try { return JsonSerializer.Deserialize(File.ReadAllBytes(path), ModelJson.Default.PartialMetadata); }
        catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException) { return null; }
    }

    internal static void WriteMetadata(string path, ModelEntryMetadata meta) =>
        AtomicFile.WriteAllBytes(path, JsonSerializer.SerializeToUtf8Bytes(meta, ModelJson.Default.ModelEntryMetadata));

    internal static void WritePartialMetadata(string path, PartialMetadata meta) =>
        AtomicFile.WriteAllBytes(path, JsonSerializer.SerializeToUtf8Bytes(meta, ModelJson.Default.PartialMetadata));

    internal static IEnumerable<string> Partials(string entryDirectory) =>
        System.IO.Directory.Exists(entryDirectory)
            ? System.IO.Directory.EnumerateFiles(entryDirectory, ".*.partial")
            : Enumerable.Empty<string>();

    /// <summary>Every entry, ready or partial.</summary>
    public IReadOnlyList<ModelCacheEntry> List()
    {
        var result = new List<ModelCacheEntry>();
        if (!System.IO.Directory.Exists(Directory)) return result;
        foreach (var dir in System.IO.Directory.EnumerateDirectories(Directory).Order(StringComparer.Ordinal))
        {
            if (Describe(dir) is { } entry) result.Add(entry);
        }
        return result;
    }

    /// <summary>The entry of a URI, or null when it is not cached.</summary>
    public ModelCacheEntry? Find(string uri) => Describe(System.IO.Path.Combine(Directory, KeyOf(CanonicalUri(uri))));

    ModelCacheEntry? Describe(string dir)
    {
        var name = System.IO.Path.GetFileName(dir);
        if (name.Length != 32 || !name.All(char.IsAsciiHexDigitLower)) return null;
        var meta = ReadMetadata(System.IO.Path.Combine(dir, ".entry.json"));
        var partials = Partials(dir).Select(p => new FileInfo(p)).ToList();
        long partialBytes = partials.Sum(p => p.Exists ? p.Length : 0);
        bool inUse = LockInspector.Inspect(System.IO.Path.Combine(dir, ".entry.lock")).IsHeld;
        if (meta is not null)
        {
            var file = System.IO.Path.Combine(dir, meta.Name);
            var st = Native.Stat(file);
            if (st is not null)
                return new ModelCacheEntry
                {
                    Uri = meta.Uri, Path = file, Length = st.Size, Sha256 = meta.Sha256, LastUsed = LastUsed(dir, meta), InUse = inUse,
                    State = "Ready", PartialLength = partialBytes, Directory = dir,
                };
        }
        if (partials.Count == 0) return null;
        var pmeta = partials.Select(p => ReadPartialMetadata(ModelEntryPaths.PartialMetadataPath(p.FullName))).FirstOrDefault(m => m is not null);
        if (pmeta is null) return null;
        return new ModelCacheEntry
        {
            Uri = pmeta.Uri, Path = partials.OrderByDescending(p => p.Length).First().FullName, Length = 0, Sha256 = null,
            LastUsed = partials.Max(p => new DateTimeOffset(p.LastWriteTimeUtc)), InUse = inUse, State = "Partial",
            PartialLength = partialBytes, Directory = dir,
        };
    }

    // A cached hit touches the sidecar instead of rewriting it, so the later of the two is the last use.
    static DateTimeOffset LastUsed(string dir, ModelEntryMetadata meta)
    {
        var touched = Native.Stat(System.IO.Path.Combine(dir, ".entry.json"))?.LastWrite;
        return touched is { } t && t > meta.LastUsed ? t : meta.LastUsed;
    }

    /// <summary>
    /// Removes an entry's model, sidecar and partials if no other process holds its lock; the lock file itself stays
    /// (deleting it could give two processes the lock on different inodes). Returns false when the entry is in use.
    /// </summary>
    public bool TryRemove(ModelCacheEntry entry, IOperationReporter? reporter = null)
    {
        var lockPath = System.IO.Path.Combine(entry.Directory, ".entry.lock");
        using var held = FileLock.TryAcquire(lockPath, new LockOptions { Purpose = "Remove-ModelCache" });
        if (held is null) return false;
        RemoveFilesLocked(entry.Directory);
        reporter?.Verbose($"Removed cache entry for {DisplayUri(entry.Uri)} ({entry.Length + entry.PartialLength} bytes).");
        return true;
    }

    /// <summary>Removes the entry of <paramref name="uri"/>; throws ModelNotCached or ModelInUse.</summary>
    public ModelCacheEntry Remove(string uri, IOperationReporter? reporter = null)
    {
        var entry = Find(uri) ?? throw ErrorCatalog.ModelNotCached(uri, DisplayUri(uri), Directory);
        if (!TryRemove(entry, reporter))
        {
            var holder = LockInspector.Inspect(System.IO.Path.Combine(entry.Directory, ".entry.lock"));
            throw new SafeDeployException("ModelInUse", ErrorKind.ResourceBusy, uri,
                $"The cache entry for '{DisplayUri(uri)}' is in use by {holder.Describe()}; it was not removed.",
                "Try again when that process has finished.");
        }
        return entry;
    }

    static void RemoveFilesLocked(string dir)
    {
        var meta = ReadMetadata(System.IO.Path.Combine(dir, ".entry.json"));
        // The sidecar goes first: a model without its sidecar is never trusted, so a crash here cannot leave a lie.
        File.Delete(System.IO.Path.Combine(dir, ".entry.json"));
        if (meta is not null) File.Delete(System.IO.Path.Combine(dir, meta.Name));
        foreach (var p in Partials(dir).ToList())
        {
            File.Delete(p);
            File.Delete(ModelEntryPaths.PartialMetadataPath(p));
        }
        Native.FsyncDirectory(dir);
    }

    /// <summary>
    /// Evicts least-recently-used entries until the cache holds at most <paramref name="maxBytes"/>: never an entry whose
    /// lock another process holds, never <paramref name="keepKey"/> (the one just fetched). <paramref name="shouldRemove"/>
    /// may veto each removal (ShouldProcess). Returns what was removed.
    /// </summary>
    public IReadOnlyList<ModelCacheEntry> Evict(long maxBytes, string? keepKey = null, Func<ModelCacheEntry, bool>? shouldRemove = null,
        IOperationReporter? reporter = null)
    {
        var entries = List();
        long total = entries.Sum(e => e.Length + e.PartialLength);
        var removed = new List<ModelCacheEntry>();
        foreach (var e in entries.OrderBy(e => e.LastUsed ?? DateTimeOffset.MinValue))
        {
            if (total <= maxBytes) break;
            if (keepKey is not null && System.IO.Path.GetFileName(e.Directory) == keepKey) continue;
            if (shouldRemove is not null && !shouldRemove(e)) continue;
            if (!TryRemove(e, reporter))
            {
                reporter?.Verbose($"Not evicting {DisplayUri(e.Uri)}: another process holds its lock.");
                continue;
            }
            total -= e.Length + e.PartialLength;
            removed.Add(e);
        }
        if (total > maxBytes)
            reporter?.Warning($"The model cache '{Directory}' still holds {total} bytes, more than the {maxBytes} asked: the rest is in use or was just fetched.");
        return removed;
    }
}
