using System.Buffers;
using System.Diagnostics;
using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Models;

// Is a cached entry still what its sidecar says (size, recorded hash, optional full rehash)?
internal sealed partial class ModelFetcher
{
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

    internal static void HashInto(SafeFileHandle fd, IncrementalHash hash, long length, string activity, IOperationReporter reporter, CancellationToken token)
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

    static string Size(long bytes) => bytes switch
    {
        >= 1L << 30 => $"{bytes / (double)(1L << 30):0.00} GiB",
        >= 1L << 20 => $"{bytes / (double)(1L << 20):0.0} MiB",
        >= 1L << 10 => $"{bytes / 1024.0:0.0} KiB",
        _ => $"{bytes} B",
    };
}
