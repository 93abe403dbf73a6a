using Microsoft.Win32.SafeHandles;
using SafeDeploy.Engine.Errors;

namespace SafeDeploy.Engine.Platform;

// How a relative path is resolved: openat2 beneath this directory (or inside its jail), else one component at a time
// with every symlink and ".." refused.
internal sealed partial class SafeDirectory
{
    int Resolve(string relative, int flags, out SafeFileHandle? fd)
    {
        fd = null;
        if (relative.Length == 0) { fd = Dup(flags); return 0; }
        if (Jail is not null) return Jail.Resolve(System.IO.Path.Join(RelativeToJail, relative), flags, out fd);
        ulong resolve = IsJail ? Native.RESOLVE_IN_ROOT | Native.RESOLVE_NO_MAGICLINKS
                               : Native.RESOLVE_BENEATH | Native.RESOLVE_NO_SYMLINKS | Native.RESOLVE_NO_MAGICLINKS;
        int rc = Native.TryOpenat2(Handle, relative, flags, 0, resolve, out fd);
        if (rc != Native.ENOSYS) return rc;
        return WalkWithoutLinks(relative, flags, out fd);
    }

    // Without openat2: one component at a time, refusing every symlink and "..": never outside, never followed.
    int WalkWithoutLinks(string relative, int flags, out SafeFileHandle? fd)
    {
        fd = null;
        var parts = relative.Split('/');
        var cur = Dup();
        for (int i = 0; i < parts.Length; i++)
        {
            if (parts[i] == "..") { cur.Dispose(); return Native.EXDEV; }
            bool last = i == parts.Length - 1;
            int rc = Native.TryOpenAt(cur, parts[i], (last ? flags : Native.O_PATH | Native.O_DIRECTORY) | Native.O_NOFOLLOW, 0, out var next);
            cur.Dispose();
            if (rc != 0) return rc;
            cur = next!;
        }
        fd = cur;
        return 0;
    }

    SafeFileHandle Dup(int flags = Native.O_RDONLY | Native.O_DIRECTORY)
    {
        int rc = Native.TryOpenAt(Handle, ".", flags, 0, out var fd);
        if (rc == Native.EACCES) rc = Native.TryOpenAt(Handle, ".", Native.O_PATH | Native.O_DIRECTORY, 0, out fd);
        if (rc != 0) throw IoErrors.FromErrno(rc, Path, "open the directory");
        return fd!;
    }

    SafeDirectory Child(SafeFileHandle fd, string relative) =>
        new(fd, FullPath(relative), isJail: false, (Jail ?? (IsJail ? this : null))?.CloneRoot());

    SafeDirectory CloneRoot() => new(Dup(), Path, isJail: true);

    static string Normalise(string relative)
    {
        var parts = relative.Split('/', StringSplitOptions.RemoveEmptyEntries).Where(p => p != ".").ToArray();
        return string.Join('/', parts);
    }

    static (string Parent, string Name) Split(string relative)
    {
        int slash = relative.LastIndexOf('/');
        var name = slash < 0 ? relative : relative[(slash + 1)..];
        if (name is ".." ) throw new SafeDeployException("InvalidPath", ErrorKind.InvalidArgument, relative,
            $"'{relative}' ends in '..': name the file itself.", "Write the path without '..'.");
        return (slash < 0 ? "" : relative[..slash], name);
    }
}
