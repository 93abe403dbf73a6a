using System.Text.Json.Serialization;

namespace SafeDeploy.Engine.Models;

/// <summary>Where the bytes of a returned model came from in this call.</summary>
public enum ModelSource { Downloaded, Cached, Resumed }

/// <summary>A verified model file in the cache, as Get-ModelLocked returns it.</summary>
public sealed record ModelFile
{
    public required string Path { get; init; }
    public required string Uri { get; init; }
    public required string Sha256 { get; init; }
    public long Length { get; init; }
    public ModelSource Source { get; init; }
    /// <summary>How long this call waited for another process that held the entry's lock.</summary>
    public TimeSpan LockWait { get; init; }
    public TimeSpan Duration { get; init; }
    /// <summary>Bytes received from the source in this call (0 for a cached file).</summary>
    public long BytesTransferred { get; init; }
    /// <summary>
    /// The entry's lock file. A process that holds a shared flock on it keeps the model in use: eviction and
    /// Remove-ModelCache leave it alone (<c>flock -s $m.LockPath llama-server -m $m.Path</c>).
    /// </summary>
    public string? LockPath { get; init; }
}

/// <summary>A cached model held in use (a shared lock on its entry) until disposed: no eviction or removal meanwhile.</summary>
internal sealed class ModelHold : IDisposable
{
    readonly Locking.FileLock held;

    internal ModelHold(ModelFile file, Locking.FileLock held)
    {
        File = file;
        this.held = held;
    }

    public ModelFile File { get; }

    public void Dispose() => held.Dispose();
}

/// <summary>One entry of the model cache, as Get-ModelCache lists it.</summary>
public sealed record ModelCacheEntry
{
    public required string Uri { get; init; }
    public required string Path { get; init; }
    public long Length { get; init; }
    public string? Sha256 { get; init; }
    public DateTimeOffset? LastUsed { get; init; }
    /// <summary>True when some process holds the entry's lock (downloading, or reading it under the lock).</summary>
    public bool InUse { get; init; }
    /// <summary>Ready (a verified file) or Partial (only an interrupted download that the next call resumes).</summary>
    public required string State { get; init; }
    /// <summary>Bytes of interrupted downloads kept for resuming.</summary>
    public long PartialLength { get; init; }
    /// <summary>The entry's directory (named after the SHA-256 of its URI, so equal file names never collide).</summary>
    public required string Directory { get; init; }
}

/// <summary>What to fetch and how.</summary>
internal sealed record ModelRequest
{
    /// <summary>http://, https://, file:// or a plain (absolute or relative) path.</summary>
    public required string Uri { get; init; }
    /// <summary>Expected SHA-256 (hex); null records the computed hash instead.</summary>
    public string? Sha256 { get; init; }
    /// <summary>File name in the cache; defaults to the last segment of the URI.</summary>
    public string? Name { get; init; }
    /// <summary>Request headers (e.g. Authorization); sent, never logged or stored.</summary>
    public IReadOnlyDictionary<string, string> Headers { get; init; } = new Dictionary<string, string>();
    /// <summary>Bounds only the wait for the entry's lock; null waits until cancelled.</summary>
    public TimeSpan? LockTimeout { get; init; }
    /// <summary>Fetch again even when a valid cached file exists (it stays until the new one is verified).</summary>
    public bool Force { get; init; }
    /// <summary>Rehash a cached file fully instead of the cheap size-and-recorded-hash check.</summary>
    public bool Verify { get; init; }
    /// <summary>After fetching, evict least-recently-used entries until the cache holds at most this many bytes.</summary>
    public long? MaxCacheBytes { get; init; }
}

/// <summary>The sidecar beside a cached file: what it is, where it came from, and the inode it describes (so a sidecar never vouches for another file).</summary>
internal sealed record ModelEntryMetadata(
    string Uri, string Name, long Length, string Sha256, string? ETag, string? LastModified,
    bool ChecksumGiven, DateTimeOffset Fetched, DateTimeOffset LastUsed, ulong Inode);

/// <summary>The sidecar beside a partial download: what validates a resume of it.</summary>
internal sealed record PartialMetadata(string Uri, string? Validator, long? TotalLength, DateTimeOffset Started);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true)]
[JsonSerializable(typeof(ModelEntryMetadata))]
[JsonSerializable(typeof(PartialMetadata))]
internal partial class ModelJson : JsonSerializerContext { }
