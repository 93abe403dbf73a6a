using Polly;
using Polly.Retry;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Files;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Models;

// One download: retries, then the landing (fsync, checksum, sidecar, atomic rename).
public sealed partial class ModelFetcher
{
    sealed record Downloaded(string Sha256, long Length, bool Resumed, long Transferred);

    async Task<Downloaded> DownloadAsync(ModelEntryPaths entry, IModelSource source, string? expected, string target, IOperationReporter reporter, CancellationToken token)
    {
        var display = ModelCache.DisplayUri(entry.Uri);
        var partial = PartialDownload.Claim(entry, reporter, token) ?? PartialDownload.New(entry);
        int activityId = Interlocked.Increment(ref nextActivityId);
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
}
