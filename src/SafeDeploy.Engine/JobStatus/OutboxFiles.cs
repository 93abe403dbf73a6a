using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.JobStatus;

/// <summary>
/// Every file operation on a clone's .git/safedeploy directory, in one place. Someone else may be able to write in
/// that directory (a clone shared by a group), so no symlink in it is ever followed, only regular files are read,
/// records are created new (O_EXCL) and renamed into place, and deletions unlink names without following them.
/// </summary>
internal sealed class OutboxFiles(string directory)
{
    const int O_NONBLOCK = 0x800;

    public string Directory { get; } = directory;

    public string FullPath(string name) => Path.Combine(Directory, name);

    /// <summary>A subdirectory (created with <paramref name="mode"/> less the umask when asked); a symlink in its place is refused.</summary>
    public OutboxFiles Sub(string name, bool create, uint mode = 0x1FF, bool exclusive = false)
    {
        var path = FullPath(name);
        if (create) CreateDirectory(path, mode, exclusive);
        return new OutboxFiles(path);
    }

    /// <summary>Ensures this directory exists (0777 less the umask, as before, so a group-shared clone keeps working).</summary>
    public void Create(uint mode = 0x1FF) => CreateDirectory(Directory, mode);

    static void CreateDirectory(string path, uint mode, bool exclusive = false)
    {
        var parent = Path.GetDirectoryName(path)!;
        using (var p = OpenDirectoryHandle(parent, mustExist: true)!)
        {
            int err = Native.MkdirAt(p, Path.GetFileName(path), mode);
            if (err != 0 && (exclusive || err != Native.EEXIST)) throw Io(path, err);
        }
        using var _ = OpenDirectoryHandle(path, mustExist: true); // refuses a symlink planted in its place
    }

    static SafeFileHandle? OpenDirectoryHandle(string path, bool mustExist)
    {
        int err = Native.TryOpenAt(null, path, Native.O_RDONLY | Native.O_DIRECTORY | Native.O_NOFOLLOW, 0, out var h);
        if (err == 0) return h;
        if (err == Native.ENOENT && !mustExist) return null;
        if (err is Native.ELOOP or Native.ENOTDIR)
            throw new SafeDeployException("SymlinkRefused", ErrorKind.SecurityError, path,
                $"'{path}' is a symlink or not a directory; SafeDeploy never follows a link there, because someone else may have placed it.",
                "Remove it (and check who created it); Sync-JobStatus recreates the directory.");
        throw Io(path, err);
    }

    /// <summary>File names in this directory (none when it does not exist).</summary>
    public IReadOnlyList<string> Names()
    {
        using var h = OpenDirectoryHandle(Directory, mustExist: false);
        if (h is null) return [];
        // The open descriptor, not the path string, is listed.
        return System.IO.Directory.EnumerateFileSystemEntries($"/proc/self/fd/{h.DangerousGetHandle()}").Select(Path.GetFileName).OfType<string>().ToList();
    }

    public bool Exists(string name) => Native.StatAt(null, FullPath(name), followSymlinks: false) is not null;

    /// <summary>The bytes of a regular file (not a symlink, FIFO or device; at most <paramref name="maxBytes"/>), or null when absent.</summary>
    public byte[]? ReadRegular(string name, int maxBytes, out string? refusal)
    {
        refusal = null;
        int err = Native.TryOpenAt(null, FullPath(name), Native.O_RDONLY | Native.O_NOFOLLOW | O_NONBLOCK | Native.O_NOCTTY, 0, out var h);
        if (err == Native.ENOENT) return null;
        if (err == Native.ELOOP) { refusal = "it is a symlink"; return null; }
        if (err != 0) { refusal = $"it cannot be opened (errno {err})"; return null; }
        using (h)
        {
            var st = Native.Fstat(h!);
            if (!st.IsRegularFile) { refusal = "it is not a regular file"; return null; }
            if (st.Size > maxBytes) { refusal = $"it is larger than {maxBytes} bytes"; return null; }
            using var s = new FileStream(h!, FileAccess.Read, 1, false);
            var buffer = new byte[st.Size];
            int n = 0, r;
            while (n < buffer.Length && (r = s.Read(buffer, n, buffer.Length - n)) > 0) n += r;
            return buffer[..n];
        }
    }

    /// <summary>Writes a new file under a temporary name (O_EXCL, mode <paramref name="mode"/>), fsyncs it and renames it to <paramref name="name"/>.</summary>
    public void WriteNew(string name, ReadOnlySpan<byte> content, uint mode)
    {
        var temp = $".{name}.{Convert.ToHexString(RandomNumberGenerator.GetBytes(6)).ToLowerInvariant()}.tmp";
        int err = Native.TryOpenAt(null, FullPath(temp), Native.O_WRONLY | Native.O_CREAT | Native.O_EXCL | Native.O_NOFOLLOW, mode, out var h);
        if (err != 0) throw Io(FullPath(temp), err);
        try
        {
            using (h)
            {
                Native.WriteOnce(h!, content, FullPath(temp));
                Native.Fsync(h!, FullPath(temp));
            }
            File.Move(FullPath(temp), FullPath(name), overwrite: false);
        }
        catch { Delete(temp); throw; }
        Native.FsyncDirectory(Directory);
    }

    /// <summary>Writes a private scratch file (O_EXCL, 0600) in a directory only we can write.</summary>
    public void WriteScratch(string name, string content)
    {
        int err = Native.TryOpenAt(null, FullPath(name), Native.O_WRONLY | Native.O_CREAT | Native.O_EXCL | Native.O_NOFOLLOW, 0x180, out var h);
        if (err != 0) throw Io(FullPath(name), err);
        using (h) Native.WriteOnce(h!, System.Text.Encoding.UTF8.GetBytes(content), FullPath(name));
    }

    /// <summary>Renames a file of this directory into <paramref name="target"/> (a symlink there is replaced, not followed).</summary>
    public bool MoveTo(string name, OutboxFiles target, string newName)
    {
        try { File.Move(FullPath(name), target.FullPath(newName), overwrite: true); return true; }
        catch (FileNotFoundException) { return false; }
        catch (DirectoryNotFoundException) { return false; }
    }

    /// <summary>Unlinks a name (a symlink itself, never its target); false when it was absent.</summary>
    public bool Delete(string name)
    {
        try
        {
            var st = Native.StatAt(null, FullPath(name), followSymlinks: false);
            if (st is null || st.IsDirectory) return false;
            File.Delete(FullPath(name));
            return true;
        }
        catch (IOException) { return false; }
        catch (UnauthorizedAccessException) { return false; }
    }

    /// <summary>Last write time of a name, without following it (null when absent).</summary>
    public DateTimeOffset? LastWrite(string name) => Native.StatAt(null, FullPath(name), followSymlinks: false)?.LastWrite;

    /// <summary>Removes this directory and the plain files in it (a directory we created for scratch files).</summary>
    public void DeleteTree()
    {
        foreach (var n in Names()) Delete(n);
        try { System.IO.Directory.Delete(Directory); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    static SafeDeployException Io(string path, int errno) => errno switch
    {
        Native.EACCES or Native.EPERM => new("AccessDenied", ErrorKind.PermissionDenied, path, $"Cannot write '{path}': permission denied.",
            "Run as the user who owns the clone, or fix the permissions of its .git/safedeploy directory."),
        Native.ENOSPC => new("DiskFull", ErrorKind.WriteError, path, $"Cannot write '{path}': no space left on the device.", "Free some space and run the command again."),
        Native.ELOOP => new("SymlinkRefused", ErrorKind.SecurityError, path, $"'{path}' is a symlink; SafeDeploy never follows a link there.", "Remove it (and check who created it)."),
        _ => new("IOError", ErrorKind.WriteError, path, $"Cannot write '{path}': {new System.ComponentModel.Win32Exception(errno).Message}.", "Check the clone's .git/safedeploy directory."),
    };
}
