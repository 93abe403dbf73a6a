using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Models;

/// <summary>
/// One entry directory of a cache, opened through the shared safe-path primitive (the cache directory by a trusted
/// walk, the entry below it with no symlink at all) and checked before anything in it is read or removed: a real
/// directory named like an entry key, owned by root or the caller (or, in a shared cache, by the cache's group). Every
/// later call is relative to the opened descriptor, so swapping the directory for a symlink after the check changes
/// nothing; file names come from a validated sidecar or from readdir of this descriptor.
/// </summary>
internal sealed class CacheEntryDirectory : IDisposable
{
    readonly SafeDirectory dir;

    CacheEntryDirectory(string path, SafeDirectory dir)
    {
        Path = path;
        this.dir = dir;
    }

    public string Path { get; }
    public FileStatus Status => dir.Status;
    /// <summary>The entry's descriptor, for *at() calls in the very directory that was checked.</summary>
    public Microsoft.Win32.SafeHandles.SafeFileHandle Handle => dir.Handle;
    /// <summary>A path through this descriptor (/proc/self/fd/N/...): resolves to this very directory, whatever the name now points at.</summary>
    public string Through(string name) => $"/proc/self/fd/{dir.Handle.DangerousGetHandle()}/{name}";

    /// <summary>Opens <paramref name="path"/> (an entry of <paramref name="cache"/>) when it is trusted; null otherwise.</summary>
    public static CacheEntryDirectory? Open(ModelCache cache, string path, IOperationReporter? reporter = null)
    {
        var key = System.IO.Path.GetFileName(path);
        if (key.Length != 32 || !key.All(char.IsAsciiHexDigitLower)) return null;
        SafeDirectory entry;
        try
        {
            using var parent = SafePath.OpenDirectory(cache.Directory);
            entry = parent.OpenDirectory(key);
        }
        catch (SafeDeployException e) when (e.Kind == ErrorKind.ObjectNotFound) { return null; }
        catch (SafeDeployException e)
        {
            reporter?.Warning($"Skipping '{path}' in the model cache: {e.Message}");
            return null;
        }
        var st = entry.Status;
        uint me = Native.GetEffectiveUserId();
        if (st.Uid == 0 || st.Uid == me || cache.SharedGroup is { } g && st.Gid == g) return new CacheEntryDirectory(path, entry);
        entry.Dispose();
        reporter?.Warning($"Skipping '{path}' in the model cache: it is owned by uid {st.Uid}, not by root or you{(cache.SharedGroup is null ? "" : " nor by the cache's group")}.");
        return null;
    }

    /// <summary>lstat of a file in the entry; null when absent.</summary>
    public FileStatus? Stat(string name) => dir.Stat(name);

    /// <summary>Names in the entry directory matching a partial download.</summary>
    public IEnumerable<string> PartialNames() =>
        System.IO.Directory.EnumerateFiles(Through(""), ".*.partial").Select(System.IO.Path.GetFileName).OfType<string>().ToList();

    public ModelEntryMetadata? ReadMetadata() => ModelCache.ReadMetadata(Through(".entry.json"));

    public PartialMetadata? ReadPartialMetadata(string partialName) => ModelCache.ReadPartialMetadata(Through(ModelEntryPaths.PartialMetadataPath(partialName)));

    /// <summary>unlinkat(2) in this directory (a link itself, never its target); false when the name was absent.</summary>
    public bool Delete(string name)
    {
        if (name.Length == 0 || name.Contains('/') || name is "." or "..") throw new ArgumentException($"'{name}' is not a file name.", nameof(name));
        return dir.Delete(name);
    }

    public void Fsync() => dir.Fsync();

    public void Dispose() => dir.Dispose();
}
