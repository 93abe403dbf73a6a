using System.Buffers;
using System.Diagnostics;
using System.Net;
using System.Runtime.ExceptionServices;
using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;
using Polly;
using Polly.Retry;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Files;
using SafeDeploy.Engine.Locking;
using SafeDeploy.Engine.Platform;
using SafeDeploy.Engine.StateDirectories;

namespace SafeDeploy.Engine.Models;

/// <summary>Tuning of downloads (tests shorten the waits).</summary>
internal sealed record ModelFetchOptions
{
    /// <summary>Further attempts after a transient failure (dropped connection, 5xx, refused connection).</summary>
    public int MaxRetries { get; init; } = 4;
    /// <summary>First retry delay; doubled each attempt, with jitter.</summary>
    public TimeSpan RetryBaseDelay { get; init; } = TimeSpan.FromMilliseconds(250);
    /// <summary>A connection that delivers nothing for this long counts as dropped.</summary>
    public TimeSpan StallTimeout { get; init; } = TimeSpan.FromSeconds(60);
    /// <summary>Bytes handed to hashing and writing at a time (two such buffers): 4 MiB fetched 1 GiB in 1.3 s on
    /// this project's 2-core VMs, against 1.8 s with 1 MiB and 1.9 s with 8 MiB.</summary>
    public int BufferSize { get; init; } = 4 << 20;
}

/// <summary>
/// Fetches a model into a <see cref="ModelCache"/> exactly once across processes: per-entry flock, a partial of its
/// own per writer, SHA-256 computed while streaming, fsync, verification, then an atomic rename. Resumes with
/// Range + If-Range; a partial is never renamed into place before its hash is known, so even where flock does
/// nothing the worst case is a duplicate transfer, never a corrupt entry.
/// </summary>
internal sealed partial class ModelFetcher
{
    static readonly HttpClient sharedClient = new(new SocketsHttpHandler
    {
        AutomaticDecompression = DecompressionMethods.None, // the bytes hashed are the bytes served
        AllowAutoRedirect = false, // HttpModelSource follows redirects itself, dropping the caller's headers off-origin
        ConnectTimeout = TimeSpan.FromSeconds(30),
        PooledConnectionLifetime = TimeSpan.FromMinutes(2),
    }) { Timeout = Timeout.InfiniteTimeSpan };

    readonly ModelCache cache;
    readonly ModelFetchOptions options;
    readonly HttpClient client;

    public ModelFetcher(ModelCache cache, ModelFetchOptions? options = null, HttpClient? client = null)
    {
        this.cache = cache;
        this.options = options ?? new ModelFetchOptions();
        this.client = client ?? sharedClient;
    }

    /// <summary>Returns the verified cached file for <paramref name="request"/>, downloading or resuming it if needed.</summary>
    public async Task<ModelFile> GetAsync(ModelRequest request, IOperationReporter? reporter = null, CancellationToken token = default)
    {
        reporter ??= NullReporter.Instance;
        var clock = Stopwatch.StartNew();
        string? expected = null;
        if (request.Sha256 is { } given)
        {
            expected = given.Trim().ToLowerInvariant();
            if (expected.Length != 64 || !expected.All(char.IsAsciiHexDigit))
                throw new SafeDeployException("InvalidSha256", ErrorKind.InvalidArgument, given,
                    $"'{given}' is not a SHA-256: expected 64 hexadecimal digits.", "Copy the checksum from the model's publisher (sha256sum prints it).");
        }
        var entry = cache.PathsFor(request.Uri, request.Name);
        // Errors, messages and lock records name the URI without userinfo or query string: either may be a credential.
        var target = ModelCache.DisplayUri(request.Uri);
        var source = CreateSource(entry, request.Headers, target);
        cache.EnsureExists();
        cache.EnsureEntryDirectory(entry.Directory);
        var display = entry.Uri;

        // The holder record keeps no command line: it may hold the URL's token or a header's value.
        var lockOptions = new LockOptions { Reporter = reporter, Purpose = $"Get-ModelLocked {display}", RecordCommandLine = false, CreateMode = cache.PrivateMode };
        var held = FileLock.TryAcquire(entry.LockPath, lockOptions);
        ModelFile? result = null;
        var waited = TimeSpan.Zero;
        if (held is null)
        {
            // Someone else is fetching. Wait for them with a shared lock: when the writer lets go, the kernel grants
            // every shared waiter at once, so all of them check the landed file together instead of one by one
            // through the exclusive lock. A writer can never hold the lock while any of them reads.
            // Meanwhile, the check the waiter makes on waking is run once (read-only, its answer ignored), and the code
            // that takes the lock and builds the result is compiled: the first run of that code compiles it, which would
            // otherwise stand between the landing and every waiter's return.
            _ = Task.Run(() =>
            {
                try
                {
                    ModelCache.PrepareMetadataCode();
                    CheckCached(entry, expected, verify: false, NullReporter.Instance, CancellationToken.None);
                    FileLock.PrepareWakeUp();
                    _ = ResultFor(entry, "", 0) with { LockWait = TimeSpan.Zero, Duration = TimeSpan.Zero };
                }
                catch (IOException) { }
                catch (UnauthorizedAccessException) { }
            }, CancellationToken.None);
            using (var reading = Lock(entry, lockOptions with { Shared = true, Timeout = Remaining(request.LockTimeout, clock) }, target, display, token))
            {
                waited = reading.WaitTime;
                if (!request.Force && CheckCached(entry, expected, request.Verify, reporter, token) is { } cached)
                {
                    reporter.Verbose($"Got the cache entry of '{display}' after waiting {reading.WaitTime.TotalSeconds:0.###} s for {reading.WaitedFor?.Describe() ?? "another process"}.");
                    result = CachedResult(entry, cached) with { LockWait = waited };
                }
            }
            held = result is null ? Lock(entry, lockOptions with { Timeout = Remaining(request.LockTimeout, clock) }, target, display, token) : null;
        }
        if (held is not null)
        {
            using (held)
            {
                result = await FetchLockedAsync(entry, source, expected, request, reporter, token).ConfigureAwait(false);
                result = result with { LockWait = waited + held.WaitTime };
            }
        }
        if (request.MaxCacheBytes is { } max) cache.Evict(max, entry.Key, null, reporter);
        return result! with { Duration = clock.Elapsed };
    }

    static TimeSpan? Remaining(TimeSpan? timeout, Stopwatch clock) =>
        timeout is { } t ? (t - clock.Elapsed > TimeSpan.Zero ? t - clock.Elapsed : TimeSpan.Zero) : null;

    static FileLock Lock(ModelEntryPaths entry, LockOptions options, string target, string display, CancellationToken token)
    {
        try { return FileLock.Acquire(entry.LockPath, options, token); }
        catch (SafeDeployException e) when (e.ErrorId == "LockTimeout")
        {
            throw new SafeDeployException("LockTimeout", ErrorKind.ResourceBusy, target,
                $"{e.Message} That lock guards the cache entry of '{display}'; its download goes on untouched.", e.RecommendedAction, e);
        }
    }

    static ModelFile CachedResult(ModelEntryPaths entry, ModelEntryMetadata cached)
    {
        // Touching the sidecar records the use without a rewrite and an fsync, so a cached hit stays cheap.
        File.SetLastWriteTimeUtc(entry.MetadataPath, DateTime.UtcNow);
        return ResultFor(entry, cached.Sha256, cached.Length);
    }

    static ModelFile ResultFor(ModelEntryPaths entry, string sha256, long length) =>
        new() { Path = entry.FilePath, Uri = entry.Uri, Sha256 = sha256, Length = length, Source = ModelSource.Cached, LockPath = entry.LockPath };

    IModelSource CreateSource(ModelEntryPaths entry, IReadOnlyDictionary<string, string> headers, string target)
    {
        var u = new Uri(entry.FetchUri);
        if (u.IsFile) return new FileModelSource(u.LocalPath, target);
        // user:password in the URI travels as Basic authorization, like curl's, and like a caller's header it is not
        // sent on to another origin.
        if (entry.UserInfoAuthorization is { } basic && !headers.Keys.Any(k => k.Equals("Authorization", StringComparison.OrdinalIgnoreCase)))
            headers = new Dictionary<string, string>(headers) { ["Authorization"] = basic };
        return new HttpModelSource(client, entry.FetchUri, headers, target);
    }

    async Task<ModelFile> FetchLockedAsync(ModelEntryPaths entry, IModelSource source, string? expected, ModelRequest request,
        IOperationReporter reporter, CancellationToken token)
    {
        if (!request.Force && CheckCached(entry, expected, request.Verify, reporter, token) is { } cached)
            return CachedResult(entry, cached);
        var previous = ModelCache.ReadMetadata(entry.MetadataPath);
        Downloaded done;
        for (int round = 1; ; round++)
        {
            try
            {
                done = await DownloadAsync(entry, source, expected, ModelCache.DisplayUri(request.Uri), reporter, token).ConfigureAwait(false);
                break;
            }
            catch (PartialLostException) when (round < 4)
            {
                if (CheckCached(entry, expected, request.Verify, reporter, token) is { } landed)
                {
                    reporter.Verbose($"Another writer (on another node) landed '{entry.Uri}' first; using its file.");
                    return CachedResult(entry, landed);
                }
                reporter.Verbose($"The partial download of '{entry.Uri}' was taken by another writer; fetching again.");
            }
        }
        // A file cached under another -Name before is replaced by this one: do not leave it orphaned.
        if (previous is not null && previous.Name != entry.Name && ModelCache.IsValidName(previous.Name))
            try { File.Delete(Path.Combine(entry.Directory, previous.Name)); } catch (IOException) { }
        return new ModelFile
        {
            Path = entry.FilePath, Uri = entry.Uri, Sha256 = done.Sha256, Length = done.Length,
            Source = done.Resumed ? ModelSource.Resumed : ModelSource.Downloaded, BytesTransferred = done.Transferred, LockPath = entry.LockPath,
        };
    }
}
