using Microsoft.Win32.SafeHandles;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.StateDirectories;

/// <summary>What <see cref="SecureDirectory.Ensure"/> did.</summary>
public sealed record EnsureOutcome(bool Created, IReadOnlyList<string> CreatedPaths, bool Repaired, string? Warning);

/// <summary>
/// Creates a directory path one component at a time with openat/mkdirat, never following a symlink it does not
/// trust, giving every component it creates the asked mode and owner (not only the last one, as install -d does).
/// </summary>
public static class SecureDirectory
{
    /// <summary>Ensures <paramref name="path"/> exists. <paramref name="checkMode"/>: warn about (or with repair, tighten) a looser final directory.</summary>
    public static EnsureOutcome Ensure(string path, uint mode, uint? ownerUid = null, uint? ownerGid = null,
        bool checkMode = false, bool repair = false)
    {
        path = Path.GetFullPath(path);
        uint me = Native.GetEffectiveUserId();
        var created = new List<string>();
        bool repaired = false;
        string? warning = null;
        var parts = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        SafeFileHandle dir = Native.Open("/", Native.O_RDONLY | Native.O_DIRECTORY);
        string current = "";
        try
        {
            for (int i = 0; i < parts.Length; i++)
            {
                string name = parts[i];
                current += "/" + name;
                bool last = i == parts.Length - 1;
                bool madeIt = false;
                int rc = Native.TryOpenAt(dir, name, Native.O_RDONLY | Native.O_DIRECTORY | Native.O_NOFOLLOW, 0, out var next);
                if (rc == Native.ENOENT)
                {
                    int mk = Native.MkdirAt(dir, name, mode);
                    if (mk == 0) madeIt = true;
                    else if (mk != Native.EEXIST) throw MkdirFailed(current, mk);
                    rc = Native.TryOpenAt(dir, name, Native.O_RDONLY | Native.O_DIRECTORY | Native.O_NOFOLLOW, 0, out next);
                }
                if (rc is Native.ELOOP or Native.ENOTDIR)
                {
                    var link = Native.StatAt(dir, name, followSymlinks: false);
                    if (link is null || !link.IsSymlink)
                        throw new SafeDeployException("NotADirectory", ErrorKind.InvalidArgument, current,
                            $"'{current}' exists and is not a directory.", "Move that file away or choose another -Path.");
                    if (link.Uid != 0 && link.Uid != me)
                        throw new SafeDeployException("UntrustedSymlink", ErrorKind.SecurityError, current,
                            $"'{current}' is a symlink owned by uid {link.Uid}, another user: following it would let that user choose where {(me == 0 ? "root" : "you")} write(s).",
                            "Remove the symlink (or have its owner remove it), or choose another -Path.");
                    rc = Native.TryOpenAt(dir, name, Native.O_RDONLY | Native.O_DIRECTORY, 0, out next);
                }
                if (rc == Native.EACCES && !last)
                    rc = Native.TryOpenAt(dir, name, Native.O_PATH | Native.O_DIRECTORY, 0, out next);
                if (rc != 0 || next is null) throw OpenFailed(current, rc);

                dir.Dispose();
                dir = next;
                var st = Native.Fstat(dir);
                if (madeIt)
                {
                    Native.Fchmod(dir, mode, current); // explicit: the umask has no say
                    if (ownerUid is { } uid && (st.Uid != uid || (ownerGid is { } g0 && st.Gid != g0)))
                    {
                        int c = Native.Fchown(dir, uid, ownerGid ?? st.Gid);
                        if (c != 0) throw new SafeDeployException("ChownFailed", ErrorKind.PermissionDenied, current,
                            $"Created '{current}' but cannot give it to uid {uid} (errno {c}).", "Run as root to create directories for another owner.");
                    }
                    created.Add(current);
                    continue;
                }
                uint? trustedOwner = ownerUid;
                if (st.Uid != 0 && st.Uid != me && st.Uid != trustedOwner)
                    throw new SafeDeployException("UntrustedDirectory", ErrorKind.SecurityError, current,
                        $"'{current}' is owned by uid {st.Uid}, another user, who could swap its contents for symlinks.",
                        "Use a directory you or root own (check $HOME, XDG_STATE_HOME and XDG_CACHE_HOME), or choose another -Path.");
                if (st.IsWorldWritable && !st.IsSticky)
                    throw new SafeDeployException("InsecureDirectory", ErrorKind.SecurityError, current,
                        $"'{current}' is world-writable without the sticky bit: any user could replace what SafeDeploy creates there.",
                        $"Tighten it (chmod o-w '{current}' or chmod +t) or choose another -Path.");
                if (last && checkMode && (st.Permissions & ~mode & 0x1FF) != 0)
                {
                    if (repair)
                    {
                        Native.Fchmod(dir, st.Permissions & mode, current);
                        repaired = true;
                    }
                    else
                    {
                        warning = $"'{current}' has mode {Convert.ToString(st.Permissions, 8)}, looser than {Convert.ToString(mode, 8)}; run with -Repair to tighten it.";
                    }
                }
            }
        }
        finally { dir.Dispose(); }
        return new EnsureOutcome(created.Count > 0, created, repaired, warning);
    }

    static SafeDeployException MkdirFailed(string path, int errno) => errno switch
    {
        Native.EACCES or Native.EPERM => new("AccessDenied", ErrorKind.PermissionDenied, path,
            $"Cannot create '{path}': permission denied.", "Run as a user who may write its parent, or choose another -Path (or -Scope User)."),
        Native.ENOSPC => new("DiskFull", ErrorKind.WriteError, path, $"Cannot create '{path}': no space left on the filesystem.", "Free space, then try again."),
        _ => new("CreateDirectoryFailed", ErrorKind.WriteError, path, $"Cannot create '{path}' (errno {errno}).", null),
    };

    static SafeDeployException OpenFailed(string path, int errno) => errno switch
    {
        Native.EACCES or Native.EPERM => new("AccessDenied", ErrorKind.PermissionDenied, path,
            $"Cannot open '{path}': permission denied.", "Run as a user who may read it, or choose another -Path."),
        _ => new("OpenDirectoryFailed", ErrorKind.ReadError, path, $"Cannot open directory '{path}' (errno {errno}).", null),
    };
}
