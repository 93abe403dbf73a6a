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
public sealed record ModelFetchOptions
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
public sealed class ModelFetcher
{
    static readonly HttpClient sharedClient = new(new SocketsHttpHandler
    {
        AutomaticDecompression = DecompressionMethods.None, // the bytes hashed are the bytes served
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
        var source = CreateSource(entry.Uri, request.Headers, request.Uri);
        cache.EnsureExists();
        SecureDirectory.Ensure(entry.Directory, 0x1ED);
        var display = ModelCache.DisplayUri(entry.Uri);

        var lockOptions = new LockOptions { Reporter = reporter, Purpose = $"Get-ModelLocked {display}" };
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
            using (var reading = Lock(entry, lockOptions with { Shared = true, Timeout = Remaining(request.LockTimeout, clock) }, request.Uri, display, token))
            {
                waited = reading.WaitTime;
                if (!request.Force && CheckCached(entry, expected, request.Verify, reporter, token) is { } cached)
                {
                    reporter.Verbose($"Got the cache entry of '{display}' after waiting {reading.WaitTime.TotalSeconds:0.###} s for {reading.WaitedFor?.Describe() ?? "another process"}.");
                    result = CachedResult(entry, cached) with { LockWait = waited };
                }
            }
            held = result is null ? Lock(entry, lockOptions with { Timeout = Remaining(request.LockTimeout, clock) }, request.Uri, display, token) : null;
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
        new() { Path = entry.FilePath, Uri = entry.Uri, Sha256 = sha256, Length = length, Source = ModelSource.Cached };

    IModelSource CreateSource(string canonicalUri, IReadOnlyDictionary<string, string> headers, string target)
    {
        var u = new Uri(canonicalUri);
        return u.IsFile ? new FileModelSource(u.LocalPath, target) : new HttpModelSource(client, canonicalUri, headers, target);
    }

    async Task<ModelFile> FetchLockedAsync(ModelEntryPaths entry, IModelSource source, string? expected, ModelRequest request,
        IOperationReporter reporter, CancellationToken token)
    {
        if (!request.Force && CheckCached(entry, expected, request.Verify, reporter, token) is { } cached)
            return CachedResult(entry, cached);
        var previous = ModelCache.ReadMetadata(entry.MetadataPath);
        var done = await DownloadAsync(entry, source, expected, request.Uri, reporter, token).ConfigureAwait(false);
        // A file cached under another -Name before is replaced by this one: do not leave it orphaned.
        if (previous is not null && previous.Name != entry.Name)
            try { File.Delete(Path.Combine(entry.Directory, previous.Name)); } catch (IOException) { }
        return new ModelFile
        {
            Path = entry.FilePath, Uri = entry.Uri, Sha256 = done.Sha256, Length = done.Length,
            Source = done.Resumed ? ModelSource.Resumed : ModelSource.Downloaded, BytesTransferred = done.Transferred,
        };
    }

    /// <summary>The cached entry's sidecar when the file is there and valid; null when it must be fetched (again).</summary>
    static ModelEntryMetadata? CheckCached(ModelEntryPaths entry, string? expected, bool verify, IOperationReporter reporter, CancellationToken token)
    {
        var meta = ModelCache.ReadMetadata(entry.MetadataPath);
        var st = Native.Stat(entry.FilePath);
        if (st is null) return null;
        if (meta is null || meta.Uri != entry.Uri || meta.Name != entry.Name || meta.Inode != st.Inode)
        {
            reporter.Verbose($"'{entry.FilePath}' has no sidecar that vouches for it; fetching it again.");
            return null;
        }
        if (st.Size != meta.Length)
        {
            reporter.Warning($"The cached '{entry.FilePath}' is {st.Size} bytes, but {meta.Length} were recorded: it is damaged, so it is fetched again.");
            return null;
        }
        if (expected is not null && !string.Equals(meta.Sha256, expected, StringComparison.OrdinalIgnoreCase))
        {
            reporter.Verbose($"The cached '{entry.FilePath}' has SHA-256 {meta.Sha256}, not the {expected} asked for; fetching it again.");
            return null;
        }
        if (verify)
        {
            var actual = HashFile(entry.FilePath, reporter, token);
            if (actual != meta.Sha256)
            {
                reporter.Warning($"The cached '{entry.FilePath}' has SHA-256 {actual}, but {meta.Sha256} was recorded when it was fetched: it is corrupt, so it is fetched again.");
                return null;
            }
            reporter.Verbose($"Verified '{entry.FilePath}': SHA-256 {actual}.");
        }
        return meta;
    }

    /// <summary>SHA-256 of a file in one streaming pass (for -Verify).</summary>
    public static string HashFile(string path, IOperationReporter? reporter = null, CancellationToken token = default)
    {
        using var fd = Native.Open(path, Native.O_RDONLY | Native.O_NOCTTY);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        HashInto(fd, hash, Native.Fstat(fd).Size, $"Verifying {Path.GetFileName(path)}", reporter ?? NullReporter.Instance, token);
        return Convert.ToHexString(hash.GetHashAndReset()).ToLowerInvariant();
    }

    static void HashInto(SafeFileHandle fd, IncrementalHash hash, long length, string activity, IOperationReporter reporter, CancellationToken token)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(1 << 20);
        int id = ProgressIds.Next();
        var report = Stopwatch.StartNew();
        try
        {
            long offset = 0;
            while (offset < length)
            {
                token.ThrowIfCancellationRequested();
                int n = RandomAccess.Read(fd, buffer.AsSpan(0, (int)Math.Min(buffer.Length, length - offset)), offset);
                if (n == 0) break;
                hash.AppendData(buffer, 0, n);
                offset += n;
                if (report.ElapsedMilliseconds >= 250)
                {
                    report.Restart();
                    reporter.Progress(new ProgressUpdate(id, activity, $"{Size(offset)} of {Size(length)}", (int)(offset * 100 / Math.Max(1, length))));
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            reporter.Progress(new ProgressUpdate(id, activity, "done", Completed: true));
        }
    }

    sealed record Downloaded(string Sha256, long Length, bool Resumed, long Transferred);

    /// <summary>One writer's partial file and the hash of the bytes in it.</summary>
    sealed class Partial : IDisposable
    {
        public required string Path { get; init; }
        public required SafeFileHandle Fd { get; init; }
        public IncrementalHash Hash { get; private set; } = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        public long Length;
        public long Transferred;
        public bool Resumed;
        public string? Validator, ETag, LastModified;
        public long? Total;

        public void Restart()
        {
            Native.Truncate(Fd, 0);
            Hash.Dispose();
            Hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            Length = 0;
            Resumed = false;
        }

        public void Delete()
        {
            Dispose();
            try { File.Delete(Path); } catch (IOException) { }
            try { File.Delete(ModelEntryPaths.PartialMetadataPath(Path)); } catch (IOException) { }
        }

        public void Dispose()
        {
            Fd.Dispose();
            Hash.Dispose();
        }
    }

    async Task<Downloaded> DownloadAsync(ModelEntryPaths entry, IModelSource source, string? expected, string target, IOperationReporter reporter, CancellationToken token)
    {
        var display = ModelCache.DisplayUri(entry.Uri);
        var partial = ClaimPartial(entry, reporter, token) ?? NewPartial(entry);
        int activityId = ProgressIds.Next();
        int attempts = 0;
        var pipeline = new ResiliencePipelineBuilder().AddRetry(new RetryStrategyOptions
        {
            ShouldHandle = new PredicateBuilder().Handle<TransientFetchException>(),
            MaxRetryAttempts = Math.Max(1, options.MaxRetries),
            Delay = options.RetryBaseDelay,
            BackoffType = DelayBackoffType.Exponential,
            UseJitter = true,
            OnRetry = args =>
            {
                reporter.Verbose($"Attempt {args.AttemptNumber + 1} to fetch '{display}' failed: {args.Outcome.Exception?.Message}; retrying in {args.RetryDelay.TotalSeconds:0.0} s.");
                return default;
            },
        }).Build();
        bool keepPartial = false;
        try
        {
            await pipeline.ExecuteAsync(async ct =>
            {
                attempts++;
                await AttemptAsync(entry, source, partial, reporter, activityId, ct).ConfigureAwait(false);
            }, token).ConfigureAwait(false);

            Native.Fsync(partial.Fd, partial.Path);
            var actual = Convert.ToHexString(partial.Hash.GetHashAndReset()).ToLowerInvariant();
            if (expected is not null && actual != expected)
                throw new SafeDeployException("ChecksumMismatch", ErrorKind.InvalidData, target,
                    $"The file fetched from '{display}' has SHA-256 {actual}, but {expected} was expected. It was discarded; the cached file, if any, is unchanged.",
                    "Check the -Sha256 value against the publisher's, and the source (a proxy or mirror may serve other bytes).");
            var inode = Native.Fstat(partial.Fd).Inode;
            partial.Fd.Dispose();
            var now = DateTimeOffset.UtcNow;
            // The sidecar names the partial's inode, which the rename keeps: until the rename lands, it vouches for nothing.
            ModelCache.WriteMetadata(entry.MetadataPath, new ModelEntryMetadata(entry.Uri, entry.Name, partial.Length, actual,
                partial.ETag, partial.LastModified, expected is not null, now, now, inode));
            try { AtomicFile.Replace(partial.Path, entry.FilePath); }
            catch (IOException e) { throw AtomicFile.Translate(e, entry.FilePath, "move the download into"); }
            try { File.Delete(ModelEntryPaths.PartialMetadataPath(partial.Path)); } catch (IOException) { }
            reporter.Verbose($"Fetched '{display}' into '{entry.FilePath}': {partial.Length} bytes, SHA-256 {actual}{(expected is null ? " (recorded)" : " (verified)")}.");
            return new Downloaded(actual, partial.Length, partial.Resumed, partial.Transferred);
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            keepPartial = true; // Ctrl+C: the next call resumes from here
            throw;
        }
        catch (TransientFetchException e)
        {
            keepPartial = true;
            throw new SafeDeployException("DownloadFailed", ErrorKind.ConnectionError, target,
                $"Cannot fetch '{display}' after {attempts} attempts: {e.Message}. {(partial.Length > 0 ? $"The {partial.Length} bytes received are kept; the next call resumes from there." : "Nothing was written to the cache.")}",
                "Check that the server is up and reachable, then run the command again.", e);
        }
        catch (SafeDeployException e) when (e.ErrorId is "ModelAccessDenied")
        {
            keepPartial = true; // new credentials can resume it
            throw;
        }
        catch (IOException e)
        {
            throw AtomicFile.Translate(e, entry.FilePath, "download into");
        }
        finally
        {
            reporter.Progress(new ProgressUpdate(activityId, $"Downloading {entry.Name}", "done", Completed: true));
            if (keepPartial && partial.Length > 0) partial.Dispose();
            else if (File.Exists(partial.Path)) partial.Delete();
            else partial.Dispose();
        }
    }

    Partial NewPartial(ModelEntryPaths entry)
    {
        var path = entry.NewPartialPath();
        try { return new Partial { Path = path, Fd = Native.Open(path, Native.O_RDWR | Native.O_CREAT | Native.O_EXCL, 0x180) }; }
        catch (IOException e) { throw AtomicFile.Translate(e, path, "create the partial download"); }
    }

    /// <summary>
    /// Takes over the largest partial a dead writer left (by renaming it to a name of our own, which only one process
    /// can do) and hashes the bytes already in it, so that the rest can be appended.
    /// </summary>
    static Partial? ClaimPartial(ModelEntryPaths entry, IOperationReporter reporter, CancellationToken token)
    {
        Partial? claimed = null;
        foreach (var p in ModelCache.Partials(entry.Directory).Select(p => new FileInfo(p)).OrderByDescending(f => f.Length).ToList())
        {
            var meta = ModelCache.ReadPartialMetadata(ModelEntryPaths.PartialMetadataPath(p.FullName));
            bool usable = claimed is null && meta is not null && meta.Uri == entry.Uri && p.Length > 0;
            if (!usable)
            {
                // Leftovers of crashed writers; one that was written in the last minute may belong to a live writer
                // on a filesystem where flock does nothing, so it is left alone.
                if (DateTime.UtcNow - p.LastWriteTimeUtc > TimeSpan.FromMinutes(1) || (meta is not null && meta.Uri != entry.Uri))
                {
                    try { File.Delete(p.FullName); File.Delete(ModelEntryPaths.PartialMetadataPath(p.FullName)); } catch (IOException) { }
                }
                continue;
            }
            var mine = entry.NewPartialPath();
            try { File.Move(p.FullName, mine); }
            catch (FileNotFoundException) { continue; }
            try { File.Move(ModelEntryPaths.PartialMetadataPath(p.FullName), ModelEntryPaths.PartialMetadataPath(mine)); }
            catch (FileNotFoundException) { try { File.Delete(mine); } catch (IOException) { } continue; }
            var fd = Native.Open(mine, Native.O_RDWR | Native.O_NOCTTY);
            var partial = new Partial { Path = mine, Fd = fd, Validator = meta!.Validator, Total = meta.TotalLength };
            partial.Length = Native.Fstat(fd).Size;
            HashInto(fd, partial.Hash, partial.Length, $"Checking the partial download of {entry.Name}", reporter, token);
            reporter.Verbose($"Found {partial.Length} bytes of an interrupted download of '{ModelCache.DisplayUri(entry.Uri)}'.");
            claimed = partial;
        }
        return claimed;
    }

    async Task AttemptAsync(ModelEntryPaths entry, IModelSource source, Partial partial, IOperationReporter reporter, int activityId, CancellationToken token)
    {
        var display = ModelCache.DisplayUri(entry.Uri);
        SourceResponse response;
        try { response = await source.OpenAsync(partial.Length, partial.Validator, token).ConfigureAwait(false); }
        catch (TransientFetchException e) when (e.RestartFromZero)
        {
            partial.Restart();
            partial.Validator = null;
            throw;
        }
        using var _ = response;
        if (response.Offset != partial.Length)
        {
            reporter.Verbose(partial.Validator is null
                ? $"Fetching '{display}' from byte 0: the {partial.Length} bytes kept have no validator to resume them safely."
                : $"Fetching '{display}' from byte 0: the source changed since the partial download, or it ignores ranges.");
            partial.Restart();
        }
        else if (partial.Length > 0)
        {
            partial.Resumed = true;
            reporter.Verbose($"Resuming '{display}' at byte {partial.Length}.");
        }
        if (response.Offset == 0)
        {
            partial.Validator = response.Validator;
            partial.Total = response.TotalLength;
            partial.ETag = response.ETag;
            partial.LastModified = response.LastModified;
            ModelCache.WritePartialMetadata(ModelEntryPaths.PartialMetadataPath(partial.Path),
                new PartialMetadata(entry.Uri, partial.Validator, partial.Total, DateTimeOffset.UtcNow));
        }
        else
        {
            partial.ETag ??= response.ETag;
            partial.LastModified ??= response.LastModified;
        }

        // Two buffers: while one is hashed and written, the next is read from the network. Hashing and writing read the
        // same buffer, so they run side by side (SHA-256 on one core, the copy into the page cache on another), and
        // what was written is flushed to the disk in the background while the download goes on.
        var pool = ArrayPool<byte>.Shared;
        byte[][] buffers = [pool.Rent(options.BufferSize), pool.Rent(options.BufferSize)];
        Task pending = Task.CompletedTask;
        int current = 0;
        var rate = Stopwatch.StartNew();
        long rateBase = partial.Transferred;
        var lastReport = Stopwatch.StartNew();
        long queued = partial.Length;
        var writeback = new Writeback(partial.Fd, partial.Path, partial.Length);
        bool completed = false;
        try
        {
            using var stall = CancellationTokenSource.CreateLinkedTokenSource(token);
            while (true)
            {
                // Fill the buffer before handing it on: a socket read returns whatever has arrived (a few hundred KiB
                // on loopback), and handing on each of those costs two thread-pool hops for little work. Whatever
                // arrived before a failure (a dropped connection, Ctrl+C) is still written, so a resume starts after it.
                // On a slow link the buffer is handed on after 100 ms however full, so progress and the partial keep up.
                int n = 0, got = 0;
                Exception? failure = null;
                long fillStarted = Stopwatch.GetTimestamp();
                do
                {
                    stall.CancelAfter(options.StallTimeout);
                    try { got = await response.Body.ReadAsync(buffers[current].AsMemory(n, options.BufferSize - n), stall.Token).ConfigureAwait(false); }
                    catch (OperationCanceledException e) when (!token.IsCancellationRequested)
                    {
                        failure = new TransientFetchException($"no data for {options.StallTimeout.TotalSeconds:0} s", e);
                        break;
                    }
                    catch (OperationCanceledException e) { failure = e; break; }
                    catch (Exception e) when (e is IOException or HttpRequestException)
                    {
                        failure = new TransientFetchException(e.Message, e);
                        break;
                    }
                    n += got;
                } while (got > 0 && n < options.BufferSize && Stopwatch.GetElapsedTime(fillStarted).TotalMilliseconds < 100);
                await pending.ConfigureAwait(false);
                if (n == 0)
                {
                    if (failure is not null) ExceptionDispatchInfo.Throw(failure);
                    completed = true;
                    break;
                }
                var buffer = buffers[current];
                long offset = queued;
                queued += n;
                var hashing = Task.Run(() => partial.Hash.AppendData(buffer, 0, n), CancellationToken.None);
                var writing = Task.Run(() =>
                {
                    RandomAccess.Write(partial.Fd, buffer.AsSpan(0, n), offset);
                    writeback.Written(offset + n);
                }, CancellationToken.None);
                pending = Task.WhenAll(hashing, writing).ContinueWith(t =>
                {
                    t.GetAwaiter().GetResult(); // a failed write (ENOSPC) or hash surfaces here
                    partial.Length = offset + n;
                    partial.Transferred += n;
                }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
                current ^= 1;
                if (failure is not null) ExceptionDispatchInfo.Throw(failure); // after handing on what arrived
                if (lastReport.ElapsedMilliseconds >= 250)
                {
                    lastReport.Restart();
                    double bytesPerSec = (partial.Transferred - rateBase) / Math.Max(rate.Elapsed.TotalSeconds, 1e-3);
                    long? total = partial.Total;
                    reporter.Progress(new ProgressUpdate(activityId, $"Downloading {entry.Name}",
                        $"{Size(queued)} of {(total is { } t ? Size(t) : "?")} at {bytesPerSec / 1e6:0.0} MB/s",
                        total is { } t2 && t2 > 0 ? (int)(queued * 100 / t2) : -1,
                        SecondsRemaining: total is { } t3 && bytesPerSec > 0 ? (int)((t3 - queued) / bytesPerSec) : -1));
                }
            }
        }
        finally
        {
            try { await pending.ConfigureAwait(false); } // a write failure (ENOSPC) outranks the read failure that got us here
            finally
            {
                try { await writeback.Finish(observe: completed).ConfigureAwait(false); } // no fdatasync outlives the attempt
                finally
                {
                    pool.Return(buffers[0]);
                    pool.Return(buffers[1]);
                }
            }
        }
        if (partial.Total is { } expectedLength && partial.Length != expectedLength)
            throw new TransientFetchException($"the connection closed after {partial.Length} of {expectedLength} bytes");
    }

    /// <summary>
    /// Flushes a streaming write to the disk while it runs: each time another window has been written and no flush is
    /// under way, an fdatasync starts in the background. On a disk whose flush costs grow with the data written since
    /// the last one (0.4 s per GiB on this project's VMs), the closing fsync then has about one window left, instead
    /// of the whole model. A background flush's error is kept and raised by <see cref="Finish"/>: the kernel reports
    /// a writeback error to one fsync only, so it must not be lost.
    /// </summary>
    sealed class Writeback(SafeFileHandle fd, string path, long start)
    {
        const long Window = 64L << 20;
        long flushed = start;
        Task flushing = Task.CompletedTask;

        /// <summary>Called by the (one at a time) writer after each write that ends at <paramref name="end"/>.</summary>
        public void Written(long end)
        {
            if (end - flushed < Window || !flushing.IsCompleted) return;
            flushing.GetAwaiter().GetResult();
            flushing = Task.Run(() =>
            {
                Native.Fdatasync(fd, path);
                flushed = end;
            });
        }

        /// <summary>Waits for the flush under way; rethrows its failure when <paramref name="observe"/>.</summary>
        public async Task Finish(bool observe)
        {
            try { await flushing.ConfigureAwait(false); }
            catch (IOException) when (!observe) { }
        }
    }

    static string Size(long bytes) => bytes switch
    {
        >= 1L << 30 => $"{bytes / (double)(1L << 30):0.00} GiB",
        >= 1L << 20 => $"{bytes / (double)(1L << 20):0.0} MiB",
        >= 1L << 10 => $"{bytes / 1024.0:0.0} KiB",
        _ => $"{bytes} B",
    };
}

