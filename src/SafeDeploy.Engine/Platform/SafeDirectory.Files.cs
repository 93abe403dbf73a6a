using Microsoft.Win32.SafeHandles;
using SafeDeploy.Engine.Errors;

namespace SafeDeploy.Engine.Platform;

/// <summary>How <see cref="SafeDirectory.OpenFile(string, SafeOpen, uint, out bool)"/> opens a file.</summary>
[Flags]
internal enum SafeOpen
{
    Read = 0,
    Write = 1,
    ReadWrite = 2,
    /// <summary>Create the file when it does not exist (O_CREAT).</summary>
    Create = 0x40,
    /// <summary>Create the file; fail when it exists (O_CREAT|O_EXCL).</summary>
    CreateNew = 0x40 | 0x80,
    Append = 0x400,
    /// <summary>Cut the file to length 0, but only after it passed every check (a refused file is never truncated).</summary>
    Truncate = 0x200,
}

// Opening the regular files of a directory: never through a link, never a FIFO or device, never a file another user
// could swap, created with the asked mode whatever the umask.
internal sealed partial class SafeDirectory
{
    /// <summary>
    /// Opens the regular file <paramref name="relative"/>. Its last component is never followed; a FIFO, device or
    /// directory is refused before it could block or be written; a file owned by another non-root user in a
    /// directory that user controls is refused. <paramref name="created"/> says whether this call made it.
    /// </summary>
    public SafeFileHandle OpenFile(string relative, SafeOpen how, uint createMode, out bool created)
    {
        var (parentPath, name) = Split(Normalise(relative));
        using var parent = OpenDirectory(parentPath);
        return parent.OpenHere(name, how, createMode, out created);
    }

    /// <summary>Opens without creating; see <see cref="OpenFile(string, SafeOpen, uint, out bool)"/>.</summary>
    public SafeFileHandle OpenFile(string relative, SafeOpen how = SafeOpen.Read) => OpenFile(relative, how & ~SafeOpen.CreateNew, 0, out _);

    internal SafeFileHandle OpenHere(string name, SafeOpen how, uint createMode, out bool created) =>
        TryOpenHere(name, how, createMode, out created) ?? throw IoErrors.FromErrno(Native.ENOENT, FullPath(name), "open");

    /// <summary>
    /// Opens the entry <paramref name="name"/> of this directory as <see cref="OpenFile(string, SafeOpen, uint, out bool)"/> does;
    /// null when it does not exist and <paramref name="how"/> does not create.
    /// </summary>
    public SafeFileHandle? TryOpenHere(string name, SafeOpen how, uint createMode, out bool created)
    {
        int access = (int)how & 3;
        int flags = access | Native.O_NOFOLLOW | Native.O_NONBLOCK | Native.O_NOCTTY | ((int)how & Native.O_APPEND);
        bool create = (how & SafeOpen.Create) != 0, exclusive = (how & SafeOpen.CreateNew) == SafeOpen.CreateNew;
        string full = FullPath(name);
        SafeFileHandle? fd = null;
        int rc = 0;
        created = false;
        for (int attempt = 0; attempt < 16; attempt++)
        {
            if (create)
            {
                rc = Native.TryOpenAt(Handle, name, flags | Native.O_CREAT | Native.O_EXCL, createMode & 0xFFF, out fd);
                if (rc == 0) { created = true; break; }
                if (rc != Native.EEXIST || exclusive) break;
            }
            rc = Native.TryOpenAt(Handle, name, flags, 0, out fd);
            if (rc != Native.ENOENT || !create) break; // removed between the two opens: create it after all
        }
        if (rc == Native.ENOENT && !create) return null;
        if (rc != 0 || fd is null)
        {
            // Say what is there rather than the errno of the refusal (a FIFO without a reader answers ENXIO).
            var there = rc is Native.ELOOP or 6 /* ENXIO */ or Native.EISDIR ? Native.StatAt(Handle, name, followSymlinks: false) : null;
            if (rc == Native.ELOOP || there?.IsSymlink == true) throw Refused(full, "SymlinkRefused", "is a symbolic link");
            if (there is { IsRegularFile: false }) throw Refused(full, "NotARegularFile", there.IsDirectory ? "is a directory" : "is not a regular file (a FIFO, socket or device)");
            throw IoErrors.FromErrno(rc, full, create ? "create" : "open");
        }
        try
        {
            var st = Native.Fstat(fd);
            if (!st.IsRegularFile) throw Refused(full, "NotARegularFile", st.IsDirectory ? "is a directory" : "is not a regular file (a FIFO, socket or device)");
            if (!created && st.Uid != 0 && st.Uid != Me && (Status.Uid == st.Uid || (Status.IsGroupOrWorldWritable && !Status.IsSticky)))
                throw new SafeDeployException("UntrustedFile", ErrorKind.SecurityError, full,
                    $"'{full}' belongs to uid {st.Uid}, another user, in a directory that user controls: they could swap it for a link to any file at any moment.",
                    "Run the command as that user, or move the file to a directory only you or root can write.");
            if (created) Native.Fchmod(fd, createMode, full); // explicit: the umask has no say
            int cl = Native.ClearNonBlocking(fd);
            if (cl != 0) throw IoErrors.FromErrno(cl, full, "open");
            if ((how & SafeOpen.Truncate) != 0 && !created) Native.Truncate(fd, 0);
            return fd;
        }
        catch
        {
            fd.Dispose();
            if (created) Native.UnlinkAt(Handle, name, directory: false);
            throw;
        }
    }

    static SafeDeployException Refused(string path, string id, string what) =>
        new(id, ErrorKind.SecurityError, path, $"'{path}' {what}; SafeDeploy does not follow or write through it there, because someone else could have placed it.",
            id == "SymlinkRefused" ? "Use the link's real target as the path, or remove the link." : "Remove it or choose another path.");
}
