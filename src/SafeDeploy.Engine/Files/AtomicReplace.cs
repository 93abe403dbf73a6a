using System.Globalization;
using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Files;

/// <summary>
/// The one atomic writer: replaces <c>name</c> in an already opened <see cref="SafeDirectory"/> with only *at() calls on
/// its descriptor. A temporary file <c>.&lt;name&gt;.&lt;hex&gt;.tmp</c> (O_CREAT|O_EXCL|O_NOFOLLOW, 0600) is journaled
/// through <see cref="AtomicWriteOptions.Temporary"/> before it exists, written, given its mode and owner (an existing
/// file's kept unless a mode is forced), fsynced (checked: ENOSPC/EIO become DiskFull/IOError, the temporary file is
/// removed and the old file kept), renamed over the target, and the directory fsynced (checked). Every other writer
/// (<see cref="AtomicFile"/> by path, the deployment's rooted files, the preload file, the pid file) calls this.
/// </summary>
internal static class AtomicReplace
{
    /// <summary>Test hook: set to N, the process kills itself with SIGKILL at its N-th replacement, after the temporary file's fsync and before its rename.</summary>
    public const string CrashBeforeRenameVariable = "SAFEDEPLOY_TEST_CRASH_BEFORE_RENAME";

    static readonly int crashAt = int.TryParse(Environment.GetEnvironmentVariable(CrashBeforeRenameVariable), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : 0;
    static int replacements;

    /// <summary>
    /// Starts replacing <paramref name="name"/> in <paramref name="dir"/>: write to <see cref="PendingFile.Stream"/>, then
    /// Commit (disposing it before discards the temporary file). <paramref name="ownsDirectory"/>: the pending file
    /// disposes <paramref name="dir"/>. <paramref name="display"/>: the target's path for messages (default: its path in dir).
    /// </summary>
    public static PendingFile Begin(SafeDirectory dir, string name, AtomicWriteOptions? options = null, bool ownsDirectory = false, string? display = null)
    {
        options ??= new AtomicWriteOptions();
        var target = display ?? dir.FullPath(name);
        if (Native.StatAt(dir.Handle, name, followSymlinks: false) is { IsDirectory: true })
            throw new SafeDeployException("NotARegularFile", ErrorKind.InvalidArgument, target, $"'{target}' is a directory, not a file.", "Give the path of a file.");
        var temp = TemporaryName(name);
        options.Temporary?.Invoke(dir.FullPath(temp)); // journaled before it exists: recovery removes it after a crash
        int rc = Native.TryOpenAt(dir.Handle, temp, Native.O_WRONLY | Native.O_CREAT | Native.O_EXCL | Native.O_NOFOLLOW | Native.O_NOCTTY,
            0x180 /* 0600 until committed */, out var fd);
        if (rc != 0) throw IoErrors.From(rc, target, "create a temporary file beside", AtomicFile.Unchanged);
        return new PendingFile(target, dir, name, temp, fd!, options, ownsDirectory);
    }

    /// <summary>Replaces <paramref name="name"/> in <paramref name="dir"/> with what <paramref name="write"/> writes.</summary>
    public static void Write(SafeDirectory dir, string name, Action<Stream> write, AtomicWriteOptions? options = null, string? display = null)
    {
        using var pending = Begin(dir, name, options, display: display);
        pending.Commit(write);
    }

    /// <summary>Replaces <paramref name="name"/> in <paramref name="dir"/> with <paramref name="content"/>.</summary>
    public static void Write(SafeDirectory dir, string name, byte[] content, AtomicWriteOptions? options = null, string? display = null) =>
        Write(dir, name, s => s.Write(content), options, display);

    /// <summary>A fresh temporary name beside <paramref name="name"/>.</summary>
    public static string TemporaryName(string name) => $".{name}.{Convert.ToHexString(RandomNumberGenerator.GetBytes(TemporaryRandomBytes)).ToLowerInvariant()}.tmp";

    /// <summary>Whether <paramref name="entry"/> is named as <see cref="TemporaryName"/> names a temporary file of <paramref name="name"/>.</summary>
    public static bool IsTemporaryOf(string entry, string name)
    {
        if (entry.Length != name.Length + 2 * TemporaryRandomBytes + 6 || !entry.StartsWith($".{name}.", StringComparison.Ordinal) || !entry.EndsWith(".tmp", StringComparison.Ordinal)) return false;
        return entry.AsSpan(name.Length + 2, 2 * TemporaryRandomBytes).ToString().All(char.IsAsciiHexDigitLower);
    }

    const int TemporaryRandomBytes = 6;

    /// <summary>The test hook's kill point (between the fsync and the rename).</summary>
    internal static void CrashPoint()
    {
        if (crashAt > 0 && Interlocked.Increment(ref replacements) == crashAt) Native.Kill(Environment.ProcessId, 9);
    }

    /// <summary>Mode and owner of the temporary file: an existing regular file's (a forced mode wins), else the new-file ones.</summary>
    internal static void ApplyModeAndOwner(SafeFileHandle fd, SafeDirectory dir, string name, string tempPath, AtomicWriteOptions options)
    {
        var existing = Native.StatAt(dir.Handle, name, followSymlinks: false);
        if (existing is { IsRegularFile: false }) existing = null; // a link is replaced, never followed for its mode
        var mine = Native.Fstat(fd);
        var owner = existing is not null && options.KeepOwner ? (existing.Uid, existing.Gid) : existing is null ? options.NewFileOwner : null;
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
        var where = dir.Path;
        try
        {
            try { Native.FsyncDirectory(dir.Handle, where); }
            catch (NativeIOException e) when (e.Errno == Native.EBADF)
            {
                // The directory could only be opened O_PATH: reopen it readable to flush it (a failure says why).
                int rc = Native.TryOpenAt(dir.Handle, ".", Native.O_RDONLY | Native.O_DIRECTORY, 0, out var readable);
                if (rc != 0) throw Native.Error("cannot open directory", where, rc);
                using (readable) Native.FsyncDirectory(readable!, where);
            }
        }
        catch (NativeIOException e)
        {
            throw IoErrors.From(e.Errno, target, "flush the directory holding",
                "The new content is in place, but the disk did not confirm it: it may not survive a crash of the machine.", inner: e);
        }
    }
}

/// <summary>A temporary file that becomes the target on <see cref="Commit"/> and vanishes if disposed before.</summary>
internal sealed class PendingFile : IDisposable
{
    readonly SafeDirectory dir;
    readonly SafeFileHandle handle;
    readonly string name, tempName;
    readonly AtomicWriteOptions options;
    readonly bool ownsDirectory;
    bool committed, disposed;

    internal PendingFile(string target, SafeDirectory dir, string name, string tempName, SafeFileHandle handle, AtomicWriteOptions options, bool ownsDirectory)
    {
        TargetPath = target;
        TempPath = dir.FullPath(tempName);
        this.dir = dir;
        this.name = name;
        this.tempName = tempName;
        this.handle = handle;
        this.options = options;
        this.ownsDirectory = ownsDirectory;
        Stream = new FileStream(handle, FileAccess.Write, 1 << 16);
    }

    public string TargetPath { get; }
    /// <summary>The temporary file's full path (in the directory that really holds the target).</summary>
    public string TempPath { get; }
    public FileStream Stream { get; }

    /// <summary>Writes with <paramref name="write"/> (an I/O failure mapped, the old file kept), then <see cref="Commit()"/>.</summary>
    public void Commit(Action<Stream> write)
    {
        try { write(Stream); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw IoErrors.From(e, TargetPath, "write", AtomicFile.Unchanged); }
        Commit();
    }

    /// <summary>Mode and owner, fsync (checked), the test hook's kill point, rename over the target, fsync of the directory (checked).</summary>
    public void Commit()
    {
        try
        {
            Stream.Flush();
            AtomicReplace.ApplyModeAndOwner(handle, dir, name, TempPath, options);
            Native.Fsync(handle, TempPath); // FileStream.Flush(true) does not report a failed fsync: check it ourselves
            Stream.Dispose();
            AtomicReplace.CrashPoint();
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
        AtomicReplace.SyncDirectory(dir, TargetPath);
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
        if (ownsDirectory) dir.Dispose();
    }
}
