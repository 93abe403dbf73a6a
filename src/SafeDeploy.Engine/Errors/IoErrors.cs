using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Errors;

/// <summary>
/// The one mapping from an errno to an error a user can act on. Callers pass the errno they read right after the
/// failing call, never one read later (another call in between would have replaced it).
/// </summary>
public static class IoErrors
{
    /// <summary>An exception for <paramref name="errno"/> from <paramref name="doing"/> (e.g. "create", "fsync") on <paramref name="path"/>.</summary>
    public static SafeDeployException FromErrno(int errno, string path, string doing) => errno switch
    {
        Native.ENOSPC or Native.EDQUOT => new SafeDeployException("DiskFull", ErrorKind.ResourceUnavailable, path,
            $"Cannot {doing} '{path}': {(errno == Native.EDQUOT ? "the disk quota is exhausted" : "no space (or no free inode) left")} on the filesystem {FileSystemOf(path)}. Nothing was replaced.",
            $"Free space on {FileSystemOf(path)} (df -h; df -i for inodes), then run the command again."),
        Native.EIO => new SafeDeployException("IOError", doing.StartsWith("read", StringComparison.Ordinal) ? ErrorKind.ReadError : ErrorKind.WriteError, path,
            $"Cannot {doing} '{path}': an input/output error (EIO): the disk or its filesystem reported a failure, so the data may not be on disk. Nothing was replaced.",
            $"Check the disk holding '{path}' (dmesg, smartctl), then run the command again."),
        Native.EACCES or Native.EPERM or Native.EROFS => new SafeDeployException("AccessDenied", ErrorKind.PermissionDenied, path,
            $"Cannot {doing} '{path}': {(errno == Native.EROFS ? "the filesystem is read-only" : "permission denied")}.",
            "Run as a user who may write there (or remount it read-write), or choose another path."),
        Native.ENOENT or Native.ENOTDIR => new SafeDeployException("DirectoryNotFound", ErrorKind.ObjectNotFound, path,
            $"Cannot {doing} '{path}': it or one of its directories does not exist.",
            "Create the directory first (Initialize-StateDirectory creates SafeDeploy's own), or correct the path."),
        Native.ELOOP => new SafeDeployException("SymlinkRefused", ErrorKind.SecurityError, path,
            $"Cannot {doing} '{path}': it is reached through a symbolic link SafeDeploy does not follow there (someone else could have placed it).",
            "Use the link's real target as the path, or remove the link."),
        Native.EXDEV => new SafeDeployException("PathOutsideRoot", ErrorKind.SecurityError, path,
            $"Cannot {doing} '{path}': resolving it would leave the directory it must stay beneath.",
            "Remove the symlink or '..' that leads outside, or choose a path inside the root."),
        _ => new SafeDeployException("IOError", ErrorKind.WriteError, path,
            $"Cannot {doing} '{path}': {Describe(errno)}.", "Check the path and the filesystem holding it, then run the command again."),
    };

    /// <summary>The C library's text for an errno, with its number.</summary>
    public static string Describe(int errno) => $"{new System.ComponentModel.Win32Exception(errno).Message} (errno {errno})";

    /// <summary>The mount point holding <paramref name="path"/> (the longest matching mount in /proc/self/mounts), quoted.</summary>
    public static string FileSystemOf(string path)
    {
        try
        {
            string best = "/";
            foreach (var line in File.ReadLines("/proc/self/mounts"))
            {
                var parts = line.Split(' ');
                if (parts.Length < 2) continue;
                var mount = parts[1].Replace("\\040", " ");
                if ((path == mount || path.StartsWith(mount.TrimEnd('/') + "/", StringComparison.Ordinal)) && mount.Length > best.Length) best = mount;
            }
            return $"'{best}'";
        }
        catch (IOException) { return "holding it"; }
    }
}
