using Polly;
using Polly.Retry;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Files;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Models;

// One download: retries, then the landing (fsync, checksum, sidecar, atomic rename).
internal sealed partial class ModelFetcher
{
    sealed record Downloaded(string Sha256, long Length, bool Resumed, long Transferred);

    /// <summary>
    /// Our partial vanished under us: on a shared filesystem whose flock is node-local, a fetcher on another node took
    /// or removed it. Not an error of the caller's: the fetch looks at the cache again and, if need be, downloads anew.
    /// </summary>
    sealed class PartialLostException(Exception? inner = null) : Exception("the partial download was taken by another writer", inner);

    /// <summary>
    /// How recently a partial must have been written to count as some live writer's. Where flock excludes (a local
    /// filesystem), the entry lock we hold proves no other writer lives: none. Where it may not reach other nodes
    /// (NFS, Lustre, GPFS, FUSE...), a writer stalled up to twice the stall timeout is still alive.
    /// </summary>
    TimeSpan LiveWriterWindow(ModelEntryPaths entry)
    {
        bool nodeLocal;
        try { nodeLocal = FileSystemKind.Of(entry.Directory).IsNetwork; }
        catch (IOException) { nodeLocal = true; }
        if (!nodeLocal) return TimeSpan.Zero;
        var twice = options.StallTimeout * 2;
        return twice > TimeSpan.FromMinutes(2) ? twice : TimeSpan.FromMinutes(2);
    }

    async Task<Downloaded> DownloadAsync(ModelEntryPaths entry, IModelSource source, string? expected, string target, IOperationReporter reporter, CancellationToken token)
    {
        var display = ModelCache.DisplayUri(entry.Uri);
        var partial = PartialDownload.Claim(entry, LiveWriterWindow(entry), reporter, token) ?? PartialDownload.New(entry, cache.PrivateMode);
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
            if (Native.Stat(partial.Path, followSymlinks: false) is null) throw new PartialLostException();
            var actual = Convert.ToHexString(partial.Hash.GetHashAndReset()).ToLowerInvariant();
            if (expected is not null && actual != expected)
                throw new SafeDeployException("ChecksumMismatch", ErrorKind.InvalidData, target,
                    $"The file fetched from '{display}' has SHA-256 {actual}, but {expected} was expected. It was discarded; the cached file, if any, is unchanged.",
                    "Check the -Sha256 value against the publisher's, and the source (a proxy or mirror may serve other bytes).");
            var inode = Native.Fstat(partial.Fd).Inode;
            partial.Fd.Dispose();
            var now = DateTimeOffset.UtcNow;
            // The sidecar names the partial's inode, which the rename keeps: until the rename lands, it vouches for nothing.
            cache.WriteMetadata(entry.MetadataPath, new ModelEntryMetadata(entry.Uri, entry.Name, partial.Length, actual,
                partial.ETag, partial.LastModified, expected is not null, now, now, inode));
            try { AtomicFile.Replace(partial.Path, entry.FilePath, new AtomicWriteOptions { NewFileMode = cache.ModelMode }); }
            catch (IOException e) when (e is FileNotFoundException || e.HResult == Native.ENOENT) { throw new PartialLostException(); }
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
        catch (IOException e) when (Native.Stat(partial.Path, followSymlinks: false) is null && !token.IsCancellationRequested)
        {
            throw new PartialLostException(e); // taken or removed by a writer on another node
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
}
