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
    /// <summary>Owner (uid, gid) for a new file (an existing file's owner is kept); null: the caller's.</summary>
    public (uint Uid, uint Gid)? NewFileOwner { get; init; }
    /// <summary>Create missing parent directories (mode <see cref="DirectoryMode"/>); each one created is added to <see cref="CreatedDirectories"/>.</summary>
    public bool CreateParents { get; init; }
    public uint DirectoryMode { get; init; } = 0x1ED; // 0755
    public IList<string>? CreatedDirectories { get; init; }
}

/// <summary>
/// The one atomic-write helper: a temporary file created O_EXCL|O_NOFOLLOW in the target's directory (opened once by
/// <see cref="SafePath"/>, then only *at() calls on it), written, fsynced (checked), given the target's mode and owner,
/// renamed over the target, and the directory fsynced (checked). Readers see the old bytes or the new, never a mix;
/// any failure before the rename leaves the old file and no temporary file.
/// </summary>
public static class AtomicFile
{
    internal const string Unchanged = "The previous file, if any, is unchanged.";

    public static void WriteAllBytes(string path, ReadOnlySpan<byte> content, AtomicWriteOptions? options = null)
    {
        using var pending = Begin(path, options);
        try { pending.Stream.Write(content); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw IoErrors.From(e, pending.TargetPath, "write", Unchanged); }
        pending.Commit();
    }

    public static void WriteAllText(string path, string content, AtomicWriteOptions? options = null) =>
        WriteAllBytes(path, Encoding.UTF8.GetBytes(content), options);

    /// <summary>Starts an atomic replacement of <paramref name="path"/>: write to <see cref="PendingFile.Stream"/>, then Commit.</summary>
    public static PendingFile Begin(string path, AtomicWriteOptions? options = null)
    {
        options ??= new AtomicWriteOptions();
        path = System.IO.Path.GetFullPath(path);
        var dir = SafePath.OpenParent(path, out var name, options.CreateParents, options.DirectoryMode, options.CreatedDirectories);
        try
        {
            var existing = Native.StatAt(dir.Handle, name, followSymlinks: false);
            if (existing is { IsDirectory: true })
                throw new SafeDeployException("NotARegularFile", ErrorKind.InvalidArgument, path, $"'{path}' is a directory, not a file.", "Give the path of a file.");
            var temp = $".{name}.{Convert.ToHexString(RandomNumberGenerator.GetBytes(6)).ToLowerInvariant()}.tmp";
            int rc = Native.TryOpenAt(dir.Handle, temp, Native.O_WRONLY | Native.O_CREAT | Native.O_EXCL | Native.O_NOFOLLOW | Native.O_NOCTTY,
                0x180 /* 0600 until committed */, out var fd);
            if (rc != 0) throw IoErrors.From(rc, path, "create a temporary file beside", Unchanged);
            return new PendingFile(path, dir, name, temp, fd!, options);
        }
        catch { dir.Dispose(); throw; }
    }

    /// <summary>Renames an already written file over <paramref name="target"/> (fsyncing it first), keeping the target's mode and owner.</summary>
    public static void Replace(string tempPath, string target, AtomicWriteOptions? options = null)
    {
        options ??= new AtomicWriteOptions();
        target = System.IO.Path.GetFullPath(target);
        using var fromDir = SafePath.OpenParent(tempPath, out var tempName);
        using var toDir = SafePath.OpenParent(target, out var name);
        using (var fd = fromDir.TryOpenHere(tempName, SafeOpen.Read, 0, out _)
                        ?? throw IoErrors.From(Native.ENOENT, tempPath, "open"))
        {
            ApplyModeAndOwner(fd, toDir, name, tempPath, options);
            Native.Fsync(fd, tempPath);
        }
        int rc = Native.RenameAt(fromDir.Handle, tempName, toDir.Handle, name);
        if (rc != 0) throw IoErrors.From(rc, target, "rename into", Unchanged);
        SyncDirectory(toDir, target);
        if (!fromDir.Status.SameFileAs(toDir.Status)) SyncDirectory(fromDir, tempPath);
    }

    internal static void ApplyModeAndOwner(SafeFileHandle fd, SafeDirectory dir, string name, string tempPath, AtomicWriteOptions options)
    {
        var existing = Native.StatAt(dir.Handle, name, followSymlinks: false);
        if (existing is { IsRegularFile: false }) existing = null; // a link is replaced, never followed for its mode
        var mine = Native.Fstat(fd);
        var owner = existing is not null ? (existing.Uid, existing.Gid) : options.NewFileOwner;
        // chown before chmod: chown clears the set-id bits that chmod may set.
        if (owner is { } o && (mine.Uid != o.Uid || mine.Gid != o.Gid))
        {
            int rc = Native.Fchown(fd, o.Uid, o.Gid);
            if (rc != 0 && existing is null) // only root may give a file away; an existing file then becomes ours
                throw new SafeDeployException("ChownFailed", ErrorKind.PermissionDenied, tempPath,
                    $"Cannot give the new file to uid {o.Uid} gid {o.Gid}: {Native.Describe(rc)}.", "Run as root to create files for another owner, or leave out -Owner.");
        }
        Native.Fchmod(fd, options.Mode ?? existing?.Permissions ?? options.NewFileMode, tempPath);
    }

    /// <summary>fsync of the directory after a rename; a real I/O error is reported (the rename is done, its durability is not).</summary>
    internal static void SyncDirectory(SafeDirectory dir, string target)
    {
        try
        {
            try { Native.FsyncDirectory(dir.Handle, System.IO.Path.GetDirectoryName(target)!); }
            catch (NativeIOException e) when (e.Errno == Native.EBADF)
            {
                // The walk could only open the directory O_PATH: reopen it readable to flush it (a failure says why).
                int rc = Native.TryOpenAt(dir.Handle, ".", Native.O_RDONLY | Native.O_DIRECTORY, 0, out var readable);
                if (rc != 0) throw Native.Error("cannot open directory", System.IO.Path.GetDirectoryName(target)!, rc);
                using (readable) Native.FsyncDirectory(readable!, System.IO.Path.GetDirectoryName(target)!);
            }
        }
        catch (NativeIOException e)
        {
            throw IoErrors.From(e.Errno, target, "flush the directory holding",
                "The new content is in place, but the disk did not confirm it: it may not survive a crash of the machine.", inner: e);
        }
    }

    /// <summary>Maps an I/O failure to an error that says what to do (see <see cref="IoErrors"/>).</summary>
    public static Exception Translate(IOException e, string path, string doing) => IoErrors.From(e, path, doing, Unchanged);
}

/// <summary>A temporary file that becomes the target on <see cref="Commit"/> and vanishes if disposed before.</summary>
public sealed class PendingFile : IDisposable
{
    readonly SafeDirectory dir;
    readonly SafeFileHandle handle;
    readonly string name, tempName;
    readonly AtomicWriteOptions options;
    bool committed, disposed;

    internal PendingFile(string target, SafeDirectory dir, string name, string tempName, SafeFileHandle handle, AtomicWriteOptions options)
    {
        TargetPath = target;
        TempPath = System.IO.Path.Combine(System.IO.Path.GetDirectoryName(target)!, tempName);
        this.dir = dir;
        this.name = name;
        this.tempName = tempName;
        this.handle = handle;
        this.options = options;
        Stream = new FileStream(handle, FileAccess.Write, 1 << 16);
    }

    public string TargetPath { get; }
    public string TempPath { get; }
    public FileStream Stream { get; }

    /// <summary>fsync (checked), mode and owner, rename over the target, fsync of the directory (checked).</summary>
    public void Commit()
    {
        try
        {
            Stream.Flush();
            Native.Fsync(handle, TempPath); // FileStream.Flush(true) does not report a failed fsync: check it ourselves
            AtomicFile.ApplyModeAndOwner(handle, dir, name, TempPath, options);
            Stream.Dispose();
            int rc = Native.RenameAt(dir.Handle, tempName, dir.Handle, name);
            if (rc != 0) throw Native.Error("cannot rename into", TargetPath, rc);
            committed = true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Discard();
            throw IoErrors.From(e, TargetPath, "write", AtomicFile.Unchanged);
        }
        catch { Discard(); throw; }
        AtomicFile.SyncDirectory(dir, TargetPath);
    }

    void Discard()
    {
        try { Stream.Dispose(); } catch (IOException) { } // the failure that brought us here was already reported
        if (committed) return;
        // One retry: a transient failure of the unlink must not leave a temporary file behind.
        if (Native.UnlinkAt(dir.Handle, tempName, directory: false) is not (0 or Native.ENOENT)) Native.UnlinkAt(dir.Handle, tempName, directory: false);
        committed = true;
    }

    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        Discard();
        dir.Dispose();
    }
}
