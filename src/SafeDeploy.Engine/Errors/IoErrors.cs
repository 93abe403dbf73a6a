using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Errors;

/// <summary>
/// The one mapping from a failed file-system call (its errno, captured the moment it failed) to an error a user can act
/// on: a full disk says which filesystem to free, an I/O error names the file, a permission says who may. Everyone maps
/// I/O failures through here; nothing reaches the user as a raw .NET exception or stack trace.
/// </summary>
internal static class IoErrors
{
    /// <summary>
    /// Maps <paramref name="errno"/> of an operation on <paramref name="path"/>. <paramref name="doing"/> completes
    /// "Cannot {doing} '{path}'"; <paramref name="outcome"/> (e.g. "The previous file is unchanged.") is appended.
    /// </summary>
    public static SafeDeployException From(int errno, string path, string doing, string? outcome = null, bool reading = false,
        Exception? inner = null)
    {
        string tail = outcome is null ? "" : " " + outcome;
        switch (errno)
        {
            case Native.ENOSPC or Native.EDQUOT:
                var fs = MountOf(path);
                string what = errno == Native.EDQUOT ? "the disk quota is exceeded" : "no space left";
                return new SafeDeployException("DiskFull", ErrorKind.ResourceUnavailable, path,
                    $"Cannot {doing} '{path}': {what} on {fs}.{tail}",
                    $"Free space on {fs}{(errno == Native.EDQUOT ? " (or raise the quota)" : "")}, then run again.", inner);
            case Native.EIO:
                return new SafeDeployException("IOError", reading ? ErrorKind.ReadError : ErrorKind.WriteError, path,
                    $"Cannot {doing} '{path}': input/output error (the disk or filesystem under it reported a failure).{tail}",
                    $"Check the disk holding '{path}' (dmesg, the filesystem's health), then run again.", inner);
            case Native.EACCES or Native.EPERM:
                return new SafeDeployException("AccessDenied", ErrorKind.PermissionDenied, path,
                    $"Cannot {doing} '{path}': permission denied.{tail}", "Run as a user who may write there, or choose another path.", inner);
            case Native.EROFS:
                return new SafeDeployException("AccessDenied", ErrorKind.PermissionDenied, path,
                    $"Cannot {doing} '{path}': the filesystem {MountOf(path)} is read-only.{tail}", "Remount it read-write, or choose another path.", inner);
            case Native.ENOENT or Native.ENOTDIR:
                return new SafeDeployException("DirectoryNotFound", ErrorKind.ObjectNotFound, path,
                    $"Cannot {doing} '{path}': its directory does not exist.{tail}",
                    "Create the directory first (Initialize-StateDirectory creates SafeDeploy's own), or check the path.", inner);
            case Native.EXDEV:
                return new SafeDeployException("PathOutsideRoot", ErrorKind.SecurityError, path,
                    $"Cannot {doing} '{path}': resolving it would leave the directory it must stay beneath.{tail}",
                    "Remove the symlink or '..' that leads outside, or choose a path inside the root.", inner);
            case Native.ELOOP:
                return new SafeDeployException("SymlinkRefused", ErrorKind.SecurityError, path,
                    $"Cannot {doing} '{path}': it is a symbolic link, which SafeDeploy does not follow there.{tail}",
                    "Give the real path of the file (readlink -f), or remove the link.", inner);
            case Native.ENXIO or Native.EISDIR:
                return new SafeDeployException("NotARegularFile", ErrorKind.InvalidArgument, path,
                    $"Cannot {doing} '{path}': it is not a regular file.{tail}", "Give the path of a regular file.", inner);
            default:
                return new SafeDeployException("IOError", reading ? ErrorKind.ReadError : ErrorKind.WriteError, path,
                    $"Cannot {doing} '{path}': {Native.Describe(errno)} (errno {errno}).{tail}", null, inner);
        }
    }

    /// <summary>The same mapping for callers that only have the errno (a read when <paramref name="doing"/> starts with "read").</summary>
    public static SafeDeployException FromErrno(int errno, string path, string doing) =>
        From(errno, path, doing, reading: doing.StartsWith("read", StringComparison.Ordinal));

    /// <summary>The C library's text for an errno, with its number.</summary>
    public static string Describe(int errno) => $"{Native.Describe(errno)} (errno {errno})";

    /// <summary>Maps a caught exception: a <see cref="NativeIOException"/> by its errno; .NET's own I/O exceptions by kind.</summary>
    public static Exception From(Exception e, string path, string doing, string? outcome = null, bool reading = false) => e switch
    {
        SafeDeployException => e,
        NativeIOException n => From(n.Errno, path, doing, outcome, reading, e),
        UnauthorizedAccessException => From(Native.EACCES, path, doing, outcome, reading, e),
        FileNotFoundException or DirectoryNotFoundException => From(Native.ENOENT, path, doing, outcome, reading, e),
        // .NET on Unix puts the raw errno into HResult for the I/O errors it has no exception type for (ENOSPC, EIO, ...).
        IOException io when io.HResult is > 0 and < 4096 => From(io.HResult, path, doing, outcome, reading, e),
        IOException => new SafeDeployException("IOError", reading ? ErrorKind.ReadError : ErrorKind.WriteError, path,
            $"Cannot {doing} '{path}': {e.Message}{(outcome is null ? "" : " " + outcome)}", null, e),
        _ => e,
    };

    /// <summary>"/mnt/scratch (tmpfs)": the mount point holding <paramref name="path"/> and its type, for messages.</summary>
    public static string MountOf(string path)
    {
        try
        {
            string full = System.IO.Path.GetFullPath(path);
            string best = "/", type = "";
            foreach (var line in File.ReadLines("/proc/self/mountinfo"))
            {
                // "36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw,errors=continue"
                var f = line.Split(' ');
                if (f.Length < 10) continue;
                var mountPoint = Unescape(f[4]);
                int dash = Array.IndexOf(f, "-", 6);
                bool under = full == mountPoint || full.StartsWith(mountPoint == "/" ? "/" : mountPoint + "/", StringComparison.Ordinal);
                if (under && mountPoint.Length >= best.Length) { best = mountPoint; type = dash > 0 && dash + 1 < f.Length ? f[dash + 1] : ""; }
            }
            return type.Length > 0 ? $"{best} ({type})" : best;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return "the filesystem holding it"; }
    }

    static string Unescape(string s) => s.Replace("\\040", " ").Replace("\\011", "\t").Replace("\\012", "\n").Replace("\\134", "\\");
}
