using Microsoft.Win32.SafeHandles;
using SafeDeploy.Engine.Errors;

namespace SafeDeploy.Engine.Platform;

/// <summary>
/// The one way SafeDeploy opens an absolute path outside a deployment root. It walks from "/" one component at a
/// time without following links (O_PATH|O_NOFOLLOW), and follows a symlink only when no one else could have placed
/// it: the link is owned by root or the caller and sits in a directory owned by root or the caller that others
/// cannot write (or that is sticky, like /tmp, where others cannot replace our entries). The kernel's
/// fs.protected_symlinks is not relied on. Everything below the directory it returns is opened with *at() calls.
/// The strict walk of SafeDeploy's own directories is an option of this walk (<see cref="WalkOptions.Strict"/>).
/// </summary>
internal static class SafePath
{
    const int MaxLinks = 40;
    static readonly uint Me = Native.GetEffectiveUserId();

    /// <summary>Opens the directory <paramref name="absolutePath"/>, creating missing components with <paramref name="mode"/> when asked.</summary>
    public static SafeDirectory OpenDirectory(string absolutePath, bool create = false, uint mode = 0x1ED, IList<string>? created = null) =>
        OpenDirectory(absolutePath, new WalkOptions { Create = create, Mode = mode, Created = created });

    /// <summary>Opens the directory <paramref name="absolutePath"/> as <paramref name="options"/> say.</summary>
    public static SafeDirectory OpenDirectory(string absolutePath, WalkOptions options)
    {
        var (fd, path) = Walk(absolutePath, options);
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
        var options = new WalkOptions { Create = createParents, Mode = dirMode, Created = created };
        var dir = OpenDirectory(parent, options);
        // A trusted symlink in the last place (e.g. /etc/resolv.conf -> ../run/...) is followed here, so the caller
        // opens the real file with O_NOFOLLOW in the directory that really holds it.
        for (int hops = 0; hops < MaxLinks; hops++)
        {
            var st = Native.StatAt(dir.Handle, fileName, followSymlinks: false);
            if (st is null || !st.IsSymlink || !Trusted(dir.Status) || !TrustedOwner(st.Uid)) return dir;
            var target = Native.ReadLinkAt(dir.Handle, fileName, out _);
            if (target is null) return dir;
            var next = System.IO.Path.GetFullPath(target, dir.Path);
            dir.Dispose();
            dir = OpenDirectory(System.IO.Path.GetDirectoryName(next) ?? "/", options);
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
    public static bool Trusted(FileStatus dir) => TrustedOwner(dir.Uid) && (!dir.IsGroupOrWorldWritable || dir.IsSticky);

    static bool TrustedOwner(uint uid, uint? alsoTrusted = null) => uid == 0 || uid == Me || uid == alsoTrusted;

    // Textual, as the user reads it ("a/../b" is "b"); ".." inside a trusted link's target is resolved by the walk.
    static string Absolute(string path) => System.IO.Path.GetFullPath(path);

    static (SafeFileHandle Fd, string Path) Walk(string absolutePath, WalkOptions o)
    {
        var full = Absolute(absolutePath);
        var pending = new Stack<string>(Enumerable.Reverse(full.Split('/', StringSplitOptions.RemoveEmptyEntries)));
        var cur = OpenRootDirectory();
        var curStatus = Native.Fstat(cur);
        var curPath = new List<string>();
        int links = 0;
        try
        {
            while (pending.Count > 0)
            {
                var name = pending.Pop();
                if (name == ".") continue;
                string here = "/" + string.Join('/', curPath.Append(name));
                bool made = false;
                int rc = Native.TryOpenAt(cur, name, Native.O_PATH | Native.O_NOFOLLOW, 0, out var next);
                if (rc == Native.ENOENT && o.Create && name != "..")
                {
                    int mk = Native.MkdirAt(cur, name, o.Mode & 0x1FF);
                    if (mk != 0 && mk != Native.EEXIST) throw IoErrors.FromErrno(mk, here, "create the directory");
                    if (mk == 0) { made = true; o.Created?.Add(here); } // listed at once: a failure below must still let the caller remove it
                    // Ours to set up: opened readable (fchmod and fchown need more than O_PATH), never through a link.
                    rc = Native.TryOpenAt(cur, name, (made ? Native.O_RDONLY | Native.O_DIRECTORY : Native.O_PATH) | Native.O_NOFOLLOW, 0, out next);
                }
                if (rc != 0) throw IoErrors.FromErrno(rc, here, "open the directory");
                var st = Native.Fstat(next!);
                if (st.IsSymlink)
                {
                    if (!Trusted(curStatus) || !TrustedOwner(st.Uid)) { next!.Dispose(); throw UntrustedLink(here, st, curStatus, o.Strict); }
                    var target = Native.ReadLinkAt(next!, "", out int lerr); // the very link we checked, not the name again
                    next!.Dispose();
                    if (target is null) throw IoErrors.FromErrno(lerr, here, "read the link");
                    if (++links > MaxLinks) throw IoErrors.FromErrno(Native.ELOOP, full, "open");
                    foreach (var part in Enumerable.Reverse(target.Split('/', StringSplitOptions.RemoveEmptyEntries))) pending.Push(part);
                    if (target.StartsWith('/')) { cur.Dispose(); cur = OpenRootDirectory(); curStatus = Native.Fstat(cur); curPath.Clear(); }
                    continue;
                }
                if (!st.IsDirectory)
                {
                    next!.Dispose();
                    throw new SafeDeployException("NotADirectory", ErrorKind.InvalidArgument, here,
                        $"'{here}' exists and is not a directory.", "Move that file away or choose another path.");
                }
                cur.Dispose();
                cur = next!;
                // Made by us only if it is still ours: in a directory others may write, it may have been swapped meanwhile.
                if (made && st.Uid == Me) st = SetUp(cur, here, o);
                else if (o.Strict) CheckStrict(st, here, o.OwnerUid);
                curStatus = st;
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

    // A directory this walk made: exactly the asked mode (the umask has no say) and owner.
    static FileStatus SetUp(SafeFileHandle dir, string here, WalkOptions o)
    {
        try { Native.Fchmod(dir, o.Mode, here); }
        catch (NativeIOException e) { throw IoErrors.From(e.Errno, here, "set the mode of the new directory", inner: e); }
        var st = Native.Fstat(dir);
        if (o.OwnerUid is not { } uid || (st.Uid == uid && (o.OwnerGid is not { } g || st.Gid == g))) return st;
        int c = Native.Fchown(dir, uid, o.OwnerGid ?? st.Gid);
        if (c != 0) throw new SafeDeployException("ChownFailed", ErrorKind.PermissionDenied, here,
            $"Created '{here}' but cannot give it to uid {uid} ({Native.Describe(c)}).", "Run as root to create directories for another owner.");
        return Native.Fstat(dir);
    }

    static void CheckStrict(FileStatus st, string here, uint? trustedOwner)
    {
        if (!TrustedOwner(st.Uid, trustedOwner))
            throw new SafeDeployException("UntrustedDirectory", ErrorKind.SecurityError, here,
                $"'{here}' is owned by uid {st.Uid}, another user, who could swap its contents for symlinks.",
                "Use a directory you or root own (check $HOME, XDG_STATE_HOME and XDG_CACHE_HOME), or choose another -Path.");
        if (st.IsWorldWritable && !st.IsSticky)
            throw new SafeDeployException("InsecureDirectory", ErrorKind.SecurityError, here,
                $"'{here}' is world-writable without the sticky bit: any user could replace what SafeDeploy creates there.",
                $"Tighten it (chmod o-w '{here}' or chmod +t) or choose another -Path.");
    }

    static SafeDeployException UntrustedLink(string here, FileStatus link, FileStatus parent, bool strict) =>
        new(strict ? "UntrustedSymlink" : "UntrustedPath", ErrorKind.SecurityError, here,
            $"'{here}' is a symbolic link {(TrustedOwner(link.Uid) ? $"in a directory another user can write (owner uid {parent.Uid}, mode {Convert.ToString(parent.Permissions, 8)})" : $"owned by uid {link.Uid}, another user")}: " +
            $"following it would let them choose what {(Me == 0 ? "root opens" : "you open")}.",
            "Give the link's real target as the path (readlink -f), or remove the link (or have its owner remove it).");

    static SafeFileHandle OpenRootDirectory() =>
        Native.TryOpenAt(null, "/", Native.O_RDONLY | Native.O_DIRECTORY, 0, out var fd) == 0 ? fd! : throw IoErrors.FromErrno(Native.LastErrno, "/", "open");
}
