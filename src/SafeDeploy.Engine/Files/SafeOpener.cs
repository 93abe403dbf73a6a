using Microsoft.Win32.SafeHandles;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Platform;


namespace SafeDeploy.Engine.Files;

/// <summary>How much of a path must be trusted when walking it.</summary>
public enum WalkPolicy
{
    /// <summary>Symlinks are followed only when owned by root or the caller and held by a trusted directory.</summary>
    Links,
    /// <summary>As <see cref="Links"/>, and every existing directory must be owned by root, the caller (or the asked owner) and not world-writable unless sticky (state directories).</summary>
    Strict,
}

/// <summary>
/// The one place where the atomic writer, the lock type, the state log and the state directories open paths: a walk
/// from "/" one component at a time (O_NOFOLLOW), then only *at() calls on the directory it opened. The final component
/// is never followed, FIFOs and devices are refused, and a file another user controls is refused.
/// (This is the shape of Platform/SafePath; when it lands these methods become calls into it.)
/// </summary>
public static class SafeOpener
{
    const int MaxLinks = 40;

    /// <summary>The directory holding <paramref name="fullPath"/>, opened by the shared primitive (<see cref="SafePath.OpenParent"/>).</summary>
    public static SafeDirectory OpenParent(string fullPath, out string name, bool create = false, uint dirMode = 0x1ED,
        IList<string>? created = null) =>
        SafePath.OpenParent(System.IO.Path.GetFullPath(fullPath), out name, create, dirMode, created);

    /// <summary>
    /// The walk: opens <paramref name="path"/> (O_RDONLY|O_DIRECTORY), creating missing components with
    /// <paramref name="mode"/> (exactly, not through the umask) and the given owner when <paramref name="create"/>.
    /// </summary>
    public static SafeFileHandle OpenDirectory(string path, WalkPolicy policy = WalkPolicy.Links, bool create = false, uint mode = 0x1ED,
        IList<string>? created = null, uint? ownerUid = null, uint? ownerGid = null)
    {
        path = System.IO.Path.GetFullPath(path);
        uint me = Native.GetEffectiveUserId();
        var todo = new Stack<string>(Enumerable.Reverse(path.Split("/", StringSplitOptions.RemoveEmptyEntries)));
        var dir = Native.Open("/", Native.O_RDONLY | Native.O_DIRECTORY);
        var dirStatus = Native.Fstat(dir);
        string current = "";
        int links = 0;
        try
        {
            while (todo.Count > 0)
            {
                string part = todo.Pop();
                if (part == ".") continue;
                if (part == "..")
                {
                    // Only reached through a trusted link's target: resolve it textually from the path walked so far.
                    current = System.IO.Path.GetDirectoryName(current) ?? "";
                    var up = Native.Open(current.Length == 0 ? "/" : current, Native.O_RDONLY | Native.O_DIRECTORY | Native.O_NOFOLLOW);
                    dir.Dispose(); dir = up; dirStatus = Native.Fstat(dir);
                    continue;
                }
                string here = current + "/" + part;
                bool madeIt = false;
                int rc = Native.TryOpenAt(dir, part, Native.O_RDONLY | Native.O_DIRECTORY | Native.O_NOFOLLOW, 0, out var next);
                if (rc == Native.ENOENT && create)
                {
                    int mk = Native.MkdirAt(dir, part, mode);
                    if (mk == 0) { madeIt = true; created?.Add(here); } // listed at once: a later failure must remove it
                    else if (mk != Native.EEXIST) throw IoErrors.From(mk, here, "create directory");
                    rc = Native.TryOpenAt(dir, part, Native.O_RDONLY | Native.O_DIRECTORY | Native.O_NOFOLLOW, 0, out next);
                }
                if (rc is Native.ELOOP or Native.ENOTDIR)
                {
                    var link = Native.StatAt(dir, part, followSymlinks: false);
                    if (link is null || !link.IsSymlink)
                        throw new SafeDeployException("NotADirectory", ErrorKind.InvalidArgument, here,
                            $"'{here}' exists and is not a directory.", "Move that file away or choose another path.");
                    if (!Trusted(link.Uid, me, null) || !TrustedDirectory(dirStatus, me, null))
                        throw new SafeDeployException(policy == WalkPolicy.Strict ? "UntrustedSymlink" : "UntrustedPath", ErrorKind.SecurityError, here,
                            $"'{here}' is a symlink owned by uid {link.Uid} in '{(current.Length == 0 ? "/" : current)}' (owner uid {dirStatus.Uid}, mode {Convert.ToString(dirStatus.Permissions, 8)}): " +
                            $"following it would let another user choose where {(me == 0 ? "root" : "you")} write(s).",
                            "Give the real path (readlink -f), remove the symlink (or have its owner remove it), or choose another path.");
                    var target = Native.ReadLinkAt(dir, part, out int lerr) ?? throw IoErrors.From(lerr, here, "read the symlink");
                    if (++links > MaxLinks) throw IoErrors.From(Native.ELOOP, path, "resolve");
                    foreach (var c in Enumerable.Reverse(target.Split("/", StringSplitOptions.RemoveEmptyEntries))) todo.Push(c);
                    if (target.StartsWith('/'))
                    {
                        current = "";
                        var root = Native.Open("/", Native.O_RDONLY | Native.O_DIRECTORY);
                        dir.Dispose(); dir = root; dirStatus = Native.Fstat(dir);
                    }
                    continue;
                }
                if (rc == Native.EACCES && todo.Count > 0)
                    rc = Native.TryOpenAt(dir, part, Native.O_PATH | Native.O_DIRECTORY | Native.O_NOFOLLOW, 0, out next);
                if (rc != 0 || next is null) throw IoErrors.From(rc, here, "open directory", reading: true);

                dir.Dispose();
                dir = next;
                current = here;
                dirStatus = Native.Fstat(dir);
                if (madeIt)
                {
                    try { Native.Fchmod(dir, mode, here); } // explicit: the umask has no say
                    catch (NativeIOException e) { throw IoErrors.From(e.Errno, here, "set the mode of the new directory", inner: e); }
                    if (ownerUid is { } uid && (dirStatus.Uid != uid || (ownerGid is { } g0 && dirStatus.Gid != g0)))
                    {
                        int c = Native.Fchown(dir, uid, ownerGid ?? dirStatus.Gid);
                        if (c != 0) throw new SafeDeployException("ChownFailed", ErrorKind.PermissionDenied, here,
                            $"Created '{here}' but cannot give it to uid {uid} ({Native.Describe(c)}).", "Run as root to create directories for another owner.");
                        dirStatus = Native.Fstat(dir);
                    }
                    continue;
                }
                if (policy == WalkPolicy.Strict) CheckStrict(dirStatus, here, me, ownerUid);
            }
            var result = dir;
            dir = null!;
            return result;
        }
        finally { dir?.Dispose(); }
    }

    /// <summary>
    /// Opens <paramref name="name"/> in <paramref name="dir"/> through the primitive (<see cref="SafeDirectory.OpenFile(string, SafeOpen, uint, out bool)"/>:
    /// the last component never followed, FIFOs and devices refused, another user's file in their directory refused).
    /// <paramref name="access"/>: O_RDONLY, O_WRONLY or O_RDWR, optionally | O_APPEND. Null only when the file is
    /// absent and <paramref name="create"/> is false.
    /// </summary>
    public static SafeFileHandle? OpenFile(SafeDirectory dir, string name, int access, bool create, uint mode,
        out bool created, out FileStatus status, bool exclusive = false)
    {
        var how = (SafeOpen)(access & 3) | ((access & Native.O_APPEND) != 0 ? SafeOpen.Append : 0)
                  | (exclusive ? SafeOpen.CreateNew : create ? SafeOpen.Create : 0);
        if (!create && Native.StatAt(dir.Handle, name, followSymlinks: false) is null) { created = false; status = null!; return null; }
        var fd = dir.OpenHere(name, how, mode, out created);
        status = Native.Fstat(fd);
        return fd;
    }

    static bool Trusted(uint owner, uint me, uint? alsoTrusted) => owner == 0 || owner == me || owner == alsoTrusted;

    static bool TrustedDirectory(FileStatus d, uint me, uint? alsoTrusted) =>
        Trusted(d.Uid, me, alsoTrusted) && ((d.Mode & 0x12) == 0 || d.IsSticky);

    static void CheckStrict(FileStatus st, string here, uint me, uint? trustedOwner)
    {
        if (!Trusted(st.Uid, me, trustedOwner))
            throw new SafeDeployException("UntrustedDirectory", ErrorKind.SecurityError, here,
                $"'{here}' is owned by uid {st.Uid}, another user, who could swap its contents for symlinks.",
                "Use a directory you or root own (check $HOME, XDG_STATE_HOME and XDG_CACHE_HOME), or choose another -Path.");
        if (st.IsWorldWritable && !st.IsSticky)
            throw new SafeDeployException("InsecureDirectory", ErrorKind.SecurityError, here,
                $"'{here}' is world-writable without the sticky bit: any user could replace what SafeDeploy creates there.",
                $"Tighten it (chmod o-w '{here}' or chmod +t) or choose another -Path.");
    }
}
