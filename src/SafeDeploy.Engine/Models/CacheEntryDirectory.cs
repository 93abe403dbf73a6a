using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Models;

/// <summary>
/// One entry directory of a cache, opened without following a link and checked before anything in it is read or
/// removed: a real directory named like an entry key, owned by root or the caller (or, in a shared cache, by the
/// cache's group). Every later call is relative to the opened descriptor, so swapping the directory for a symlink
/// after the check changes nothing; file names come from a validated sidecar or from readdir of this descriptor.
/// </summary>
internal sealed partial class CacheEntryDirectory : IDisposable
{
    readonly SafeFileHandle fd;

    CacheEntryDirectory(string path, SafeFileHandle fd, FileStatus status)
    {
        Path = path;
        this.fd = fd;
        Status = status;
    }

    public string Path { get; }
    public FileStatus Status { get; }
    /// <summary>A path through this descriptor (/proc/self/fd/N/...): resolves to this very directory, whatever the name now points at.</summary>
    public string Through(string name) => $"/proc/self/fd/{fd.DangerousGetHandle()}/{name}";

    /// <summary>Opens <paramref name="path"/> (an entry of <paramref name="cache"/>) when it is trusted; null otherwise.</summary>
    public static CacheEntryDirectory? Open(ModelCache cache, string path, IOperationReporter? reporter = null)
    {
        var key = System.IO.Path.GetFileName(path);
        if (key.Length != 32 || !key.All(char.IsAsciiHexDigitLower)) return null;
        int rc = Native.TryOpenAt(null, path, Native.O_RDONLY | Native.O_DIRECTORY | Native.O_NOFOLLOW | Native.O_CLOEXEC, 0, out var handle);
        if (rc != 0 || handle is null)
        {
            if (rc is Native.ELOOP or Native.ENOTDIR) reporter?.Warning($"Skipping '{path}' in the model cache: it is not a directory (a symlink?), so it is no entry of ours.");
            return null;
        }
        var st = Native.Fstat(handle);
        uint me = Native.GetEffectiveUserId();
        bool trusted = st.Uid == 0 || st.Uid == me || cache.SharedGroup is { } g && st.Gid == g;
        if (!trusted)
        {
            handle.Dispose();
            reporter?.Warning($"Skipping '{path}' in the model cache: it is owned by uid {st.Uid}, not by root or you{(cache.SharedGroup is null ? "" : " nor by the cache's group")}.");
            return null;
        }
        return new CacheEntryDirectory(path, handle, st);
    }

    /// <summary>lstat of a file in the entry; null when absent.</summary>
    public FileStatus? Stat(string name) => Native.StatAt(fd, name, followSymlinks: false);

    /// <summary>Names in the entry directory matching a partial download.</summary>
    public IEnumerable<string> PartialNames() =>
        System.IO.Directory.EnumerateFiles(Through(""), ".*.partial").Select(System.IO.Path.GetFileName).OfType<string>().ToList();

    public ModelEntryMetadata? ReadMetadata() => ModelCache.ReadMetadata(Through(".entry.json"));

    public PartialMetadata? ReadPartialMetadata(string partialName) => ModelCache.ReadPartialMetadata(Through(ModelEntryPaths.PartialMetadataPath(partialName)));

    /// <summary>unlinkat(2) in this directory; false when the name was absent.</summary>
    public bool Delete(string name)
    {
        if (name.Length == 0 || name.Contains('/') || name is "." or "..") throw new ArgumentException($"'{name}' is not a file name.", nameof(name));
        if (unlinkat((int)fd.DangerousGetHandle(), name, 0) == 0) return true;
        int errno = Native.LastErrno;
        if (errno == Native.ENOENT) return false;
        throw Native.Error("cannot remove", System.IO.Path.Combine(Path, name));
    }

    public void Fsync() => Native.Fsync(fd, Path);

    public void Dispose() => fd.Dispose();

    [LibraryImport("libc", EntryPoint = "unlinkat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int unlinkat(int dirfd, string name, int flags);
}
