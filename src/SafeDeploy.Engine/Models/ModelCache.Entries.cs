using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Locking;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Models;

/// <summary>What the caller says to one proposed eviction (ShouldProcess): remove it, keep it, or -WhatIf (count it as removed, touch nothing).</summary>
internal enum EvictAnswer { Remove, Keep, WhatIf }

// Listing, removal and eviction. Each acts only on entry directories that CacheEntryDirectory trusts, and only on file
// names that validate, through the opened directory: a sidecar someone else planted cannot make root delete anything
// outside the cache.
internal sealed partial class ModelCache
{
    /// <summary>Every trusted entry, ready or partial.</summary>
    public IReadOnlyList<ModelCacheEntry> List(IOperationReporter? reporter = null)
    {
        var result = new List<ModelCacheEntry>();
        if (!System.IO.Directory.Exists(Directory)) return result;
        foreach (var dir in System.IO.Directory.EnumerateDirectories(Directory).Order(StringComparer.Ordinal))
        {
            using var opened = CacheEntryDirectory.Open(this, dir, reporter);
            if (opened is not null && Describe(opened) is { } entry) result.Add(entry);
        }
        return result;
    }

    /// <summary>The entry of a URI, or null when it is not cached.</summary>
    public ModelCacheEntry? Find(string uri)
    {
        using var opened = CacheEntryDirectory.Open(this, System.IO.Path.Combine(Directory, KeyOf(CanonicalUri(uri))));
        return opened is null ? null : Describe(opened);
    }

    /// <summary>The one error for a URI that is not in the cache.</summary>
    public SafeDeployException NotCached(string uri) => ErrorCatalog.ModelNotCached(DisplayUri(uri), DisplayUri(uri), Directory);

    static ModelCacheEntry? Describe(CacheEntryDirectory dir)
    {
        var meta = dir.ReadMetadata();
        if (meta is not null && !IsValidName(meta.Name)) meta = null; // a sidecar naming a path is no sidecar of ours
        var partials = dir.PartialNames().Select(p => (Name: p, Status: dir.Stat(p))).Where(p => p.Status is { IsRegularFile: true }).ToList();
        long partialBytes = partials.Sum(p => p.Status!.Size);
        bool inUse = LockInspector.Inspect(System.IO.Path.Combine(dir.Path, ".entry.lock")).IsHeld;
        if (meta is not null && dir.Stat(meta.Name) is { IsRegularFile: true } st)
            return new ModelCacheEntry
            {
                Uri = DisplayUri(meta.Uri), Path = System.IO.Path.Combine(dir.Path, meta.Name), Length = st.Size, Sha256 = meta.Sha256,
                LastUsed = LastUsed(dir, meta), InUse = inUse, State = "Ready", PartialLength = partialBytes, Directory = dir.Path,
            };
        var pmeta = partials.Select(p => dir.ReadPartialMetadata(p.Name)).FirstOrDefault(m => m is not null);
        if (pmeta is null) return null;
        return new ModelCacheEntry
        {
            Uri = DisplayUri(pmeta.Uri), Path = System.IO.Path.Combine(dir.Path, partials.MaxBy(p => p.Status!.Size).Name), Length = 0, Sha256 = null,
            LastUsed = partials.Max(p => p.Status!.LastWrite), InUse = inUse, State = "Partial", PartialLength = partialBytes, Directory = dir.Path,
        };
    }

    // A cached hit touches the sidecar instead of rewriting it, so the later of the two is the last use.
    static DateTimeOffset LastUsed(CacheEntryDirectory dir, ModelEntryMetadata meta) =>
        dir.Stat(".entry.json")?.LastWrite is { } t && t > meta.LastUsed ? t : meta.LastUsed;

    /// <summary>
    /// Removes an entry's model, sidecar and partials if no other process holds its lock (a fetch, a reader, or a server
    /// holding it with a shared lock); the lock file itself stays (deleting it could give two processes the lock on
    /// different inodes). Returns false when the entry is in use (or is no trusted entry).
    /// </summary>
    public bool TryRemove(ModelCacheEntry entry, IOperationReporter? reporter = null)
    {
        using var dir = CacheEntryDirectory.Open(this, entry.Directory, reporter);
        if (dir is null) return false;
        using var held = FileLock.TryAcquire(dir.Through(".entry.lock"), new LockOptions { Create = false, RecordHolder = false });
        if (held is null) return false;
        var meta = dir.ReadMetadata();
        // The sidecar goes first: a model without its sidecar is never trusted, so a crash here cannot leave a lie.
        dir.Delete(".entry.json");
        if (meta is not null && IsValidName(meta.Name)) dir.Delete(meta.Name);
        foreach (var p in dir.PartialNames())
        {
            dir.Delete(p);
            dir.Delete(ModelEntryPaths.PartialMetadataPath(p));
        }
        dir.Fsync();
        reporter?.Verbose($"Removed cache entry for {DisplayUri(entry.Uri)} ({entry.Length + entry.PartialLength} bytes).");
        return true;
    }

    /// <summary>Removes the entry of <paramref name="uri"/>; throws ModelNotCached or ModelInUse.</summary>
    public ModelCacheEntry Remove(string uri, IOperationReporter? reporter = null)
    {
        var entry = Find(uri) ?? throw NotCached(uri);
        if (!TryRemove(entry, reporter))
        {
            var holder = LockInspector.Inspect(System.IO.Path.Combine(entry.Directory, ".entry.lock"));
            throw new SafeDeployException("ModelInUse", ErrorKind.ResourceBusy, DisplayUri(uri),
                $"The cache entry for '{DisplayUri(uri)}' is in use by {holder.Describe()}; it was not removed.",
                "Try again when that process has finished.");
        }
        return entry;
    }

    /// <summary>
    /// Evicts least-recently-used entries until the cache holds at most <paramref name="maxBytes"/>: never an entry whose
    /// lock another process holds, never <paramref name="keepKey"/> (the one just fetched). <paramref name="ask"/> is
    /// asked once per entry that would go (ShouldProcess); an answer of WhatIf counts it as gone without removing it,
    /// so -WhatIf names exactly the entries the real run removes. Returns what was (or, under WhatIf, would be) removed.
    /// </summary>
    public IReadOnlyList<ModelCacheEntry> Evict(long maxBytes, string? keepKey = null, Func<ModelCacheEntry, EvictAnswer>? ask = null,
        IOperationReporter? reporter = null)
    {
        var entries = List(reporter);
        long total = entries.Sum(e => e.Length + e.PartialLength);
        var removed = new List<ModelCacheEntry>();
        foreach (var e in entries.OrderBy(e => e.LastUsed ?? DateTimeOffset.MinValue))
        {
            if (total <= maxBytes) break;
            if (keepKey is not null && System.IO.Path.GetFileName(e.Directory) == keepKey) continue;
            if (e.InUse)
            {
                reporter?.Verbose($"Not evicting {DisplayUri(e.Uri)}: another process holds its lock.");
                continue;
            }
            var answer = ask?.Invoke(e) ?? EvictAnswer.Remove;
            if (answer == EvictAnswer.Keep) continue;
            if (answer == EvictAnswer.Remove && !TryRemove(e, reporter))
            {
                reporter?.Verbose($"Not evicting {DisplayUri(e.Uri)}: another process holds its lock.");
                continue;
            }
            total -= e.Length + e.PartialLength;
            removed.Add(e);
        }
        if (total > maxBytes)
            reporter?.Warning($"The model cache '{Directory}' still holds {total} bytes, more than the {maxBytes} asked: the rest is in use, was kept, or was just fetched.");
        return removed;
    }
}
