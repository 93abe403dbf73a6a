using Microsoft.Win32.SafeHandles;
using SafeDeploy.Engine.Errors;

namespace SafeDeploy.Engine.Platform;

/// <summary>
/// The one way SafeDeploy opens an absolute path outside a deployment root. It walks from "/" one component at a
/// time without following links (O_PATH|O_NOFOLLOW), and follows a symlink only when no one else could have placed
/// it: the link is owned by root or the caller and sits in a directory owned by root or the caller that others
/// cannot write (or that is sticky, like /tmp, where others cannot replace our entries). The kernel's
/// fs.protected_symlinks is not relied on. Everything below the directory it returns is opened with *at() calls.
/// </summary>
public static class SafePath
{
    const int MaxLinks = 40;
    static readonly uint Me = Native.GetEffectiveUserId();

    /// <summary>Opens the directory <paramref name="absolutePath"/>, creating missing components with <paramref name="mode"/> when asked.</summary>
    public static SafeDirectory OpenDirectory(string absolutePath, bool create = false, uint mode = 0x1ED, IList<string>? created = null)
    {
        var (fd, path) = Walk(absolutePath, create, mode, created);
        return new SafeDirectory(fd, path, isJail: false);
    }

    /// <summary>Opens the directory holding <paramref name="absolutePath"/> and gives the last component's name.</summary>
    public static SafeDirectory OpenParent(string absolutePath, out string fileName, bool createParents = false, uint dirMode = 0x1ED, IList<string>? created = null)
    {
        var full = Absolute(absolutePath);
        var parent = System.IO.Path.GetDirectoryName(full) ?? "/";
        fileName = System.IO.Path.GetFileName(full);
        if (fileName.Length == 0) throw new SafeDeployException("InvalidPath", ErrorKind.InvalidArgument, absolutePath,
            $"'{absolutePath}' names a directory, not a file.", "Give the path of a file.");
        var dir = OpenDirectory(parent, createParents, dirMode, created);
        // A trusted symlink in the last place (e.g. /etc/resolv.conf -> ../run/...) is followed here, so the caller
        // opens the real file with O_NOFOLLOW in the directory that really holds it.
        for (int hops = 0; hops < MaxLinks; hops++)
        {
            var st = Native.StatAt(dir.Handle, fileName, followSymlinks: false);
            if (st is null || !st.IsSymlink || !Trusted(dir.Status) || (st.Uid != 0 && st.Uid != Me)) return dir;
            var target = Native.ReadLinkAt(dir.Handle, fileName, out _);
            if (target is null) return dir;
            var next = System.IO.Path.GetFullPath(target, dir.Path);
            dir.Dispose();
            dir = OpenDirectory(System.IO.Path.GetDirectoryName(next) ?? "/", createParents, dirMode, created);
            fileName = System.IO.Path.GetFileName(next);
        }
        dir.Dispose();
        throw IoErrors.FromErrno(Native.ELOOP, absolutePath, "open");
    }

    /// <summary>Opens a regular file at an absolute path; see <see cref="SafeDirectory.OpenFile(string, SafeOpen, uint, out bool)"/>.</summary>
    public static SafeFileHandle OpenFile(string absolutePath, SafeOpen how, uint createMode, out bool created)
    {
        using var dir = OpenParent(absolutePath, out var name);
        return dir.OpenHere(name, how, createMode, out created);
    }

    /// <summary>A directory whose entries only root or the caller can replace.</summary>
    public static bool Trusted(FileStatus dir) =>
        (dir.Uid == 0 || dir.Uid == Me) && (!dir.IsGroupOrWorldWritable || dir.IsSticky);

    static string Absolute(string path)
    {
        if (!System.IO.Path.IsPathRooted(path)) path = System.IO.Path.GetFullPath(path);
        return path;
    }

    static (SafeFileHandle Fd, string Path) Walk(string absolutePath, bool create, uint mode, IList<string>? created)
    {
        var pending = new Stack<string>(Enumerable.Reverse(Absolute(absolutePath).Split('/', StringSplitOptions.RemoveEmptyEntries)));
        var cur = OpenRootDirectory();
        var curPath = new List<string>();
        int links = 0;
        try
        {
            while (pending.Count > 0)
            {
                var name = pending.Pop();
                if (name == ".") continue;
                string here = "/" + string.Join('/', curPath.Append(name));
                int rc = Native.TryOpenAt(cur, name, Native.O_PATH | Native.O_NOFOLLOW, 0, out var next);
                if (rc == Native.ENOENT && create && name != "..")
                {
                    int mk = Native.MkdirAt(cur, name, mode & 0x1FF);
                    if (mk != 0 && mk != Native.EEXIST) throw IoErrors.FromErrno(mk, here, "create the directory");
                    if (mk == 0)
                    {
                        if (Native.TryOpenAt(cur, name, Native.O_RDONLY | Native.O_DIRECTORY | Native.O_NOFOLLOW, 0, out var made) == 0)
                            using (made) Native.Fchmod(made!, mode, here); // explicit: the umask has no say
                        created?.Add(here);
                    }
                    rc = Native.TryOpenAt(cur, name, Native.O_PATH | Native.O_NOFOLLOW, 0, out next);
                }
                if (rc != 0) throw IoErrors.FromErrno(rc, here, "open the directory");
                var st = Native.Fstat(next!);
                if (st.IsSymlink)
                {
                    var parentStatus = Native.Fstat(cur);
                    if (!Trusted(parentStatus) || (st.Uid != 0 && st.Uid != Me))
                    {
                        next!.Dispose();
                        throw new SafeDeployException("UntrustedPath", ErrorKind.SecurityError, absolutePath,
                            $"'{here}' is a symbolic link {(st.Uid != 0 && st.Uid != Me ? $"owned by uid {st.Uid}, another user" : "in a directory another user can write")}: following it would let them choose what {(Me == 0 ? "root" : "you")} open(s).",
                            "Use the link's real target as the path, or remove the link (or have its owner remove it).");
                    }
                    var target = Native.ReadLinkAt(next!, "", out int lerr);
                    next!.Dispose();
                    if (target is null) throw IoErrors.FromErrno(lerr, here, "read the link");
                    if (++links > MaxLinks) throw IoErrors.FromErrno(Native.ELOOP, absolutePath, "open");
                    foreach (var part in Enumerable.Reverse(target.Split('/', StringSplitOptions.RemoveEmptyEntries))) pending.Push(part);
                    if (target.StartsWith('/')) { cur.Dispose(); cur = OpenRootDirectory(); curPath.Clear(); }
                    continue;
                }
                if (!st.IsDirectory)
                {
                    next!.Dispose();
                    throw IoErrors.FromErrno(Native.ENOTDIR, here, "open the directory");
                }
                cur.Dispose();
                cur = next!;
                if (name == "..") { if (curPath.Count > 0) curPath.RemoveAt(curPath.Count - 1); }
                else curPath.Add(name);
            }
            // Reopen readable (fsync and directory listing need it); O_PATH stays where we may only search.
            var path = "/" + string.Join('/', curPath);
            int orc = Native.TryOpenAt(cur, ".", Native.O_RDONLY | Native.O_DIRECTORY, 0, out var readable);
            if (orc == 0) { cur.Dispose(); return (readable!, path); }
            return (cur, path);
        }
        catch
        {
            cur.Dispose();
            throw;
        }
    }

    static SafeFileHandle OpenRootDirectory() =>
        Native.TryOpenAt(null, "/", Native.O_RDONLY | Native.O_DIRECTORY, 0, out var fd) == 0 ? fd! : throw IoErrors.FromErrno(Native.LastErrno, "/", "open");
}
