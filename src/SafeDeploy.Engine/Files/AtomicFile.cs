using System.Security.Cryptography;
using System.Text;
using Microsoft.Win32.SafeHandles;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Files;

/// <summary>Options for an atomic write.</summary>
public sealed record AtomicWriteOptions
{
    /// <summary>Mode for a new file (an existing file's mode is kept). Set explicitly, never from the umask.</summary>
    public uint NewFileMode { get; init; } = 0x1A4; // 0644
    /// <summary>Force this mode even when the file exists.</summary>
    public uint? Mode { get; init; }
}

/// <summary>
/// The one atomic-write helper: write a temporary file in the target's directory, fsync it, give it the target's
/// mode and owner, rename it over the target and fsync the directory. Readers see the old bytes or the new, never a mix.
/// </summary>
public static class AtomicFile
{
    public static void WriteAllBytes(string path, ReadOnlySpan<byte> content, AtomicWriteOptions? options = null)
    {
        using var pending = Begin(path, options);
        pending.Stream.Write(content);
        pending.Commit();
    }

    public static void WriteAllText(string path, string content, AtomicWriteOptions? options = null) =>
        WriteAllBytes(path, Encoding.UTF8.GetBytes(content), options);

    /// <summary>Starts an atomic replacement of <paramref name="path"/>: write to <see cref="PendingFile.Stream"/>, then Commit.</summary>
    public static PendingFile Begin(string path, AtomicWriteOptions? options = null)
    {
        path = System.IO.Path.GetFullPath(path);
        var dir = System.IO.Path.GetDirectoryName(path)!;
        var temp = System.IO.Path.Combine(dir, $".{System.IO.Path.GetFileName(path)}.{Convert.ToHexString(RandomNumberGenerator.GetBytes(6)).ToLowerInvariant()}.tmp");
        SafeFileHandle fd;
        try { fd = Native.Open(temp, Native.O_WRONLY | Native.O_CREAT | Native.O_EXCL, 0x180 /* 0600 until committed */); }
        catch (IOException e) { throw Translate(e, path, "create a temporary file beside"); }
        return new PendingFile(path, temp, fd, options ?? new AtomicWriteOptions());
    }

    /// <summary>Renames an already written and flushed file over <paramref name="target"/>, keeping the target's mode and owner.</summary>
    public static void Replace(string tempPath, string target, AtomicWriteOptions? options = null)
    {
        using (var fd = Native.Open(tempPath, Native.O_RDONLY))
        {
            ApplyModeAndOwner(fd, tempPath, target, options ?? new AtomicWriteOptions());
            Native.Fsync(fd, tempPath);
        }
        File.Move(tempPath, target, overwrite: true);
        Native.FsyncDirectory(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(target))!);
    }

    internal static void ApplyModeAndOwner(SafeFileHandle fd, string tempPath, string target, AtomicWriteOptions options)
    {
        var existing = Native.Stat(target);
        uint mode = options.Mode ?? existing?.Permissions ?? options.NewFileMode;
        Native.Fchmod(fd, mode, tempPath);
        if (existing is not null)
        {
            var mine = Native.Fstat(fd);
            if (mine.Uid != existing.Uid || mine.Gid != existing.Gid)
                Native.Fchown(fd, existing.Uid, existing.Gid); // only root may give a file away; otherwise the owner becomes ours
        }
    }

    /// <summary>Maps an I/O failure to an error that says what to do (a full disk, a permission, a missing directory).</summary>
    public static Exception Translate(IOException e, string path, string doing) => e.HResult switch
    {
        Native.ENOSPC or 122 /* EDQUOT */ => new SafeDeployException("DiskFull", ErrorKind.WriteError, path,
            $"Cannot {doing} '{path}': no space left on the filesystem. The previous file, if any, is unchanged.",
            "Free space on that filesystem (or raise the quota), then run the command again.", e),
        Native.EACCES or Native.EPERM or 30 /* EROFS */ => new SafeDeployException("AccessDenied", ErrorKind.PermissionDenied, path,
            $"Cannot {doing} '{path}': {e.Message}", "Run as a user who may write that directory.", e),
        Native.ENOENT or Native.ENOTDIR => new SafeDeployException("DirectoryNotFound", ErrorKind.ObjectNotFound, path,
            $"Cannot {doing} '{path}': its directory does not exist.", "Create the directory first (Initialize-StateDirectory creates SafeDeploy's own).", e),
        _ => e,
    };
}

/// <summary>A temporary file that becomes the target on <see cref="Commit"/> and vanishes if disposed before.</summary>
public sealed class PendingFile : IDisposable
{
    readonly SafeFileHandle handle;
    readonly AtomicWriteOptions options;
    bool committed;

    internal PendingFile(string target, string temp, SafeFileHandle handle, AtomicWriteOptions options)
    {
        TargetPath = target;
        TempPath = temp;
        this.handle = handle;
        this.options = options;
        Stream = new FileStream(handle, FileAccess.Write, 1 << 16);
    }

    public string TargetPath { get; }
    public string TempPath { get; }
    public FileStream Stream { get; }

    public void Commit()
    {
        try
        {
            Stream.Flush(flushToDisk: true);
            AtomicFile.ApplyModeAndOwner(handle, TempPath, TargetPath, options);
            Stream.Dispose();
            File.Move(TempPath, TargetPath, overwrite: true);
            committed = true;
            Native.FsyncDirectory(System.IO.Path.GetDirectoryName(TargetPath)!);
        }
        catch (IOException e) { throw AtomicFile.Translate(e, TargetPath, "write"); }
    }

    public void Dispose()
    {
        try { Stream.Dispose(); } catch (IOException) { }
        if (!committed) try { File.Delete(TempPath); } catch (IOException) { }
    }
}
