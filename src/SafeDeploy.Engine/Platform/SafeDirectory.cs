using Microsoft.Win32.SafeHandles;
using SafeDeploy.Engine.Errors;

namespace SafeDeploy.Engine.Platform;

/// <summary>
/// An open directory from which every further call is an *at() call on its descriptor: paths are resolved by the
/// kernel beneath it (in a jail: inside it, absolute symlinks and ".." included), never re-resolved from a string.
/// Made by <see cref="SafePath"/> (a trusted walk of an absolute path) or <see cref="OpenRoot"/> (a -Root jail).
/// </summary>
internal sealed partial class SafeDirectory : IDisposable
{
    static readonly uint Me = Native.GetEffectiveUserId();

    internal SafeDirectory(SafeFileHandle handle, string path, bool isJail, SafeDirectory? jail = null)
    {
        Handle = handle;
        Path = path.Length > 1 ? path.TrimEnd('/') : path;
        IsJail = isJail;
        Jail = jail;
        Status = Native.Fstat(handle);
    }

    /// <summary>The directory's descriptor (O_RDONLY|O_DIRECTORY, or O_PATH where it may not be read).</summary>
    public SafeFileHandle Handle { get; }
    /// <summary>The absolute path it was opened as: for messages and external commands, never opened again by us.</summary>
    public string Path { get; }
    /// <summary>True for a -Root jail: relative paths resolve inside it, symlinks included.</summary>
    public bool IsJail { get; }
    public FileStatus Status { get; }
    // A subdirectory of a jail keeps resolving from the jail's root, so absolute links inside it stay in the root. It holds
    // its own descriptor of that root, so it stays usable after the directory it was opened from is disposed.
    readonly SafeDirectory? Jail;
    string? RelativeToJail => Jail is null ? null : System.IO.Path.GetRelativePath(Jail.Path, Path);

    /// <summary>Opens a -Root sandbox: a directory owned by root or the caller that no one else may write.</summary>
    public static SafeDirectory OpenRoot(string rootPath)
    {
        var dir = SafePath.OpenDirectory(System.IO.Path.GetFullPath(rootPath));
        var st = dir.Status;
        if ((st.Uid != 0 && st.Uid != Me) || st.IsGroupOrWorldWritable)
        {
            dir.Dispose();
            throw new SafeDeployException("UntrustedRoot", ErrorKind.SecurityError, rootPath,
                $"The root '{rootPath}' is {(st.IsGroupOrWorldWritable ? $"writable by others (mode {Convert.ToString(st.Permissions, 8)})" : $"owned by uid {st.Uid}, another user")}: they could plant links and files in the tree SafeDeploy deploys into.",
                "Use a root directory owned by you or root with mode 0755 or tighter (chmod go-w).");
        }
        return new SafeDirectory(dir.TakeHandle(), dir.Path, isJail: true);
    }

    SafeFileHandle TakeHandle() => Handle; // the new owner disposes it; this wrapper is dropped without Dispose

    /// <summary>The absolute path of <paramref name="relative"/> below this directory (for messages and external commands).</summary>
    public string FullPath(string relative) =>
        relative.Length == 0 || relative == "." ? Path : System.IO.Path.Join(Path, relative.TrimStart('/'));

    /// <summary>Opens (optionally creating, with <paramref name="mode"/>) the directory <paramref name="relative"/> below this one.</summary>
    public SafeDirectory OpenDirectory(string relative, bool create = false, uint mode = 0x1ED, IList<string>? created = null)
    {
        relative = Normalise(relative);
        if (relative.Length == 0) return IsJail ? new SafeDirectory(Dup(), Path, isJail: true) : new SafeDirectory(Dup(), Path, false, Jail?.CloneRoot());
        var parts = relative.Split('/');
        for (int attempt = 0; ; attempt++)
        {
            int rc = Resolve(relative, Native.O_RDONLY | Native.O_DIRECTORY, out var fd);
            if (rc == Native.EACCES) rc = Resolve(relative, Native.O_PATH | Native.O_DIRECTORY, out fd);
            if (rc == 0) return Child(fd!, relative);
            if (rc != Native.ENOENT || !create || attempt > parts.Length + 2) throw IoErrors.FromErrno(rc, FullPath(relative), "open the directory");
            // Find the deepest existing prefix, resolved from this directory each time, and create the next component.
            int have = parts.Length - 1;
            SafeFileHandle? parent = null;
            for (; have > 0; have--)
            {
                if (Resolve(string.Join('/', parts[..have]), Native.O_RDONLY | Native.O_DIRECTORY, out parent) == 0) break;
            }
            using (var p = have == 0 ? Dup() : parent!)
            {
                var name = parts[have];
                int mk = Native.MkdirAt(p, name, mode & 0x1FF);
                if (mk == Native.EEXIST) continue; // made meanwhile (or a link that resolves nowhere: the next attempt says so)
                if (mk != 0) throw IoErrors.FromErrno(mk, FullPath(string.Join('/', parts[..(have + 1)])), "create the directory");
                if (Native.TryOpenAt(p, name, Native.O_RDONLY | Native.O_DIRECTORY | Native.O_NOFOLLOW, 0, out var made) == 0)
                    using (made) Native.Fchmod(made!, mode, FullPath(name)); // explicit: the umask has no say
                created?.Add(FullPath(string.Join('/', parts[..(have + 1)])));
            }
        }
    }

    /// <summary>lstat of <paramref name="relative"/> (its last component not followed); null when it does not exist.</summary>
    public FileStatus? Stat(string relative)
    {
        var (parentPath, name) = Split(Normalise(relative));
        if (name.Length == 0) return Status;
        int rc = Resolve(parentPath, Native.O_PATH | Native.O_DIRECTORY, out var parent);
        if (rc is Native.ENOENT or Native.ENOTDIR) return null;
        if (rc != 0) throw IoErrors.FromErrno(rc, FullPath(parentPath), "open the directory");
        using (parent) return Native.StatAt(parent, name, followSymlinks: false);
    }

    /// <summary>The target of the symlink <paramref name="relative"/>, or null when it is absent or not a link.</summary>
    public string? ReadLink(string relative)
    {
        var (parentPath, name) = Split(Normalise(relative));
        using var parent = OpenDirectory(parentPath);
        return Native.ReadLinkAt(parent.Handle, name, out _);
    }

    /// <summary>Creates a symlink <paramref name="relative"/> pointing to <paramref name="target"/> (the text is not resolved).</summary>
    public void Symlink(string target, string relative)
    {
        var (parentPath, name) = Split(Normalise(relative));
        using var parent = OpenDirectory(parentPath);
        int rc = Native.SymlinkAt(target, parent.Handle, name);
        if (rc != 0) throw IoErrors.FromErrno(rc, FullPath(relative), "create the symlink");
    }

    /// <summary>rename(2) of one entry over another, both resolved below this directory.</summary>
    public void Rename(string fromRelative, string toRelative)
    {
        var (fromParent, fromName) = Split(Normalise(fromRelative));
        var (toParent, toName) = Split(Normalise(toRelative));
        using var from = OpenDirectory(fromParent);
        using var to = fromParent == toParent ? null : OpenDirectory(toParent);
        int rc = Native.RenameAt(from.Handle, fromName, (to ?? from).Handle, toName);
        if (rc != 0) throw IoErrors.FromErrno(rc, FullPath(toRelative), "rename into place");
    }

    /// <summary>Removes a file or link (never what a link points to); false when it was not there.</summary>
    public bool Delete(string relative) => Remove(relative, directory: false);

    /// <summary>Removes an empty directory; false when it was not there or is not empty.</summary>
    public bool DeleteDirectory(string relative) => Remove(relative, directory: true);

    bool Remove(string relative, bool directory)
    {
        var (parentPath, name) = Split(Normalise(relative));
        int prc = Resolve(parentPath, Native.O_PATH | Native.O_DIRECTORY, out var parent);
        if (prc is Native.ENOENT or Native.ENOTDIR) return false;
        if (prc != 0) throw IoErrors.FromErrno(prc, FullPath(parentPath), "open the directory");
        using (parent)
        {
            int rc = Native.UnlinkAt(parent!, name, directory);
            if (rc == 0) return true;
            if (rc is Native.ENOENT || (directory && rc is Native.ENOTEMPTY or Native.EEXIST)) return false;
            throw IoErrors.FromErrno(rc, FullPath(relative), "remove");
        }
    }

    /// <summary>fsync of the directory, so that a rename or creation inside it survives a crash; an I/O error throws.</summary>
    public void Fsync()
    {
        int rc = Native.TryFsync(Handle);
        // EINVAL: a filesystem that cannot sync directories; EBADF: opened O_PATH (not readable): nothing more to do.
        if (rc is not (0 or Native.EINVAL or 9)) throw IoErrors.FromErrno(rc, Path, "flush the directory");
    }

    public void Dispose()
    {
        Handle.Dispose();
        Jail?.Dispose();
    }
}
