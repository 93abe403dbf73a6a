using System.Buffers;
using System.Diagnostics;
using System.Runtime.ExceptionServices;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Models;

// One attempt: the bytes from the source into the partial, hashed and written side by side.
internal sealed partial class ModelFetcher
{
    async Task AttemptAsync(ModelEntryPaths entry, IModelSource source, PartialDownload partial, IOperationReporter reporter, int activityId, CancellationToken token)
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
            cache.WritePartialMetadata(ModelEntryPaths.PartialMetadataPath(partial.Path),
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
}
