using Microsoft.Win32.SafeHandles;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Models;

/// <summary>
/// Flushes a streaming write to the disk while it runs: each time another window has been written and no flush is
/// under way, an fdatasync starts in the background. On a disk whose flush costs grow with the data written since
/// the last one (0.4 s per GiB on this project's VMs), the closing fsync then has about one window left, instead
/// of the whole model. A background flush's error is kept and raised by <see cref="Finish"/>: the kernel reports
/// a writeback error to one fsync only, so it must not be lost.
/// </summary>
internal sealed class Writeback(SafeFileHandle fd, string path, long start)
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
