using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;
using SafeDeploy.Engine.Files;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Models;

/// <summary>One writer's partial file and the hash of the bytes in it.</summary>
internal sealed class PartialDownload : IDisposable
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

    /// <summary>A new, empty partial of this writer's own (O_EXCL; 0600, or 0660 in a shared cache).</summary>
    public static PartialDownload New(ModelEntryPaths entry, uint mode)
    {
        var path = entry.NewPartialPath();
        SafeFileHandle? fd = null;
        try
        {
            fd = Native.Open(path, Native.O_RDWR | Native.O_CREAT | Native.O_EXCL | Native.O_NOFOLLOW, mode);
            Native.Fchmod(fd, mode, path); // exactly: the umask would cut a shared cache's group write
            return new PartialDownload { Path = path, Fd = fd };
        }
        catch (IOException e)
        {
            fd?.Dispose();
            throw AtomicFile.Translate(e, path, "create the partial download");
        }
    }

    /// <summary>
    /// Takes over the largest partial a dead writer left (by renaming it to a name of our own, which only one process
    /// can do) and hashes the bytes already in it, so that the rest can be appended. A partial written within
    /// <paramref name="liveWindow"/> may be a live writer's on another node (where flock does not reach): it is left
    /// to that writer, and this one starts its own (at worst a duplicate transfer).
    /// </summary>
    public static PartialDownload? Claim(ModelEntryPaths entry, TimeSpan liveWindow, IOperationReporter reporter, CancellationToken token)
    {
        PartialDownload? claimed = null;
        foreach (var p in ModelCache.Partials(entry.Directory).Select(p => new FileInfo(p)).OrderByDescending(f => f.Length).ToList())
        {
            var meta = ModelCache.ReadPartialMetadata(ModelEntryPaths.PartialMetadataPath(p.FullName));
            var age = DateTime.UtcNow - p.LastWriteTimeUtc;
            bool usable = claimed is null && meta is not null && meta.Uri == entry.Uri && p.Length > 0 && age >= liveWindow;
            if (!usable)
            {
                // Leftovers of crashed writers; one that was written lately may belong to a live writer on a
                // filesystem where flock does nothing, so it is left alone.
                var stale = liveWindow > TimeSpan.FromMinutes(1) ? liveWindow : TimeSpan.FromMinutes(1);
                if (age > stale || (meta is not null && meta.Uri != entry.Uri && age > liveWindow))
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
            SafeFileHandle? fd = null;
            long length;
            try
            {
                fd = Native.Open(mine, Native.O_RDWR | Native.O_NOCTTY);
                length = Native.Fstat(fd).Size;
            }
            catch (IOException) { fd?.Dispose(); continue; } // gone again: taken by a writer on another node
            var partial = new PartialDownload { Path = mine, Fd = fd, Validator = meta!.Validator, Total = meta.TotalLength, Length = length };
            ModelFetcher.HashInto(fd, partial.Hash, partial.Length, $"Checking the partial download of {entry.Name}", reporter, token);
            reporter.Verbose($"Found {partial.Length} bytes of an interrupted download of '{ModelCache.DisplayUri(entry.Uri)}'.");
            claimed = partial;
        }
        return claimed;
    }
}
