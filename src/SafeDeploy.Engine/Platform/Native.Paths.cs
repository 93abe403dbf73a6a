using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace SafeDeploy.Engine.Platform;

/// <summary>
/// The *at() calls behind <see cref="SafeDirectory"/>. Each returns 0 or the errno, read straight after the call
/// (before anything else can run and overwrite it), so the caller reports the cause that really happened.
/// </summary>
internal static unsafe partial class Native
{
    public const int O_NONBLOCK = 0x800;
    public const int AT_REMOVEDIR = 0x200;
    public const int EIO = 5, EISDIR = 21, EXDEV = 18, EINVAL = 22, ENOSYS = 38, ENOTEMPTY = 39, EAGAIN = 11, EDQUOT = 122, EROFS = 30;
    public const ulong RESOLVE_NO_MAGICLINKS = 0x02, RESOLVE_NO_SYMLINKS = 0x04, RESOLVE_BENEATH = 0x08, RESOLVE_IN_ROOT = 0x10;
    const long SYS_openat2 = 437; // the same number on x86_64 and arm64 (the generic syscall table)
    const int F_GETFL = 3, F_SETFL = 4;

    [StructLayout(LayoutKind.Sequential)]
    struct OpenHow { public ulong flags, mode, resolve; }

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial long sys_openat2(long number, int dirfd, string path, OpenHow* how, nuint size);

    [LibraryImport("libc", EntryPoint = "readlinkat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint sys_readlinkat(int dirfd, string path, byte* buf, nint size);

    [LibraryImport("libc", EntryPoint = "symlinkat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int sys_symlinkat(string target, int dirfd, string path);

    [LibraryImport("libc", EntryPoint = "renameat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int sys_renameat(int olddirfd, string oldpath, int newdirfd, string newpath);

    [LibraryImport("libc", EntryPoint = "unlinkat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int sys_unlinkat(int dirfd, string path, int flags);

    [LibraryImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    private static partial int sys_fcntl(int fd, int cmd, int arg);

    static int Fd(SafeHandle h) => (int)h.DangerousGetHandle();

    /// <summary>False once the kernel said it has no openat2 (before 5.6, or filtered by seccomp).</summary>
    public static bool HasOpenat2 { get; internal set; } = true;

    /// <summary>openat2(2) with a RESOLVE_* mask; returns 0 or the errno (ENOSYS also clears <see cref="HasOpenat2"/>).</summary>
    public static int TryOpenat2(SafeHandle dir, string path, int flags, uint mode, ulong resolve, out SafeFileHandle? handle)
    {
        handle = null;
        if (!HasOpenat2) return ENOSYS;
        var how = new OpenHow { flags = (ulong)(uint)(flags | O_CLOEXEC), mode = (flags & O_CREAT) != 0 ? mode : 0, resolve = resolve };
        for (int attempt = 0; ; attempt++)
        {
            long fd = sys_openat2(SYS_openat2, Fd(dir), path, &how, (nuint)sizeof(OpenHow));
            int errno = fd < 0 ? LastErrno : 0;
            if (fd >= 0) { handle = new SafeFileHandle((nint)fd, ownsHandle: true); return 0; }
            if (errno == EINTR) continue;
            // RESOLVE_IN_ROOT answers EAGAIN when a rename elsewhere raced a ".." walk: the kernel asks us to retry.
            if (errno == EAGAIN && attempt < 64) continue;
            if (errno is ENOSYS or EPERM && attempt == 0 && resolve != 0 && !ProbeOpenat2()) { HasOpenat2 = false; return ENOSYS; }
            return errno;
        }
    }

    // EPERM can be a seccomp filter denying the syscall (old container runtimes) or a real permission error: tell apart.
    static bool ProbeOpenat2()
    {
        var how = new OpenHow { flags = (ulong)(O_PATH | O_CLOEXEC), resolve = RESOLVE_BENEATH };
        long fd = sys_openat2(SYS_openat2, AT_FDCWD, ".", &how, (nuint)sizeof(OpenHow));
        if (fd < 0) return LastErrno is not (ENOSYS or EPERM);
        using var _ = new SafeFileHandle((nint)fd, true);
        return true;
    }

    /// <summary>readlinkat(2): the link's target, or null with the errno.</summary>
    public static string? ReadLinkAt(SafeHandle dir, string name, out int errno)
    {
        var buf = new byte[4096];
        fixed (byte* p = buf)
        {
            nint n = sys_readlinkat(Fd(dir), name, p, buf.Length);
            errno = n < 0 ? LastErrno : 0;
            return n < 0 ? null : System.Text.Encoding.UTF8.GetString(buf, 0, (int)n);
        }
    }

    public static int SymlinkAt(string target, SafeHandle dir, string name) =>
        sys_symlinkat(target, Fd(dir), name) == 0 ? 0 : LastErrno;

    public static int RenameAt(SafeHandle fromDir, string fromName, SafeHandle toDir, string toName) =>
        sys_renameat(Fd(fromDir), fromName, Fd(toDir), toName) == 0 ? 0 : LastErrno;

    public static int UnlinkAt(SafeHandle dir, string name, bool directory) =>
        sys_unlinkat(Fd(dir), name, directory ? AT_REMOVEDIR : 0) == 0 ? 0 : LastErrno;

    /// <summary>fsync(2) returning the errno, for callers that must map it themselves.</summary>
    public static int TryFsync(SafeHandle fd)
    {
        int rc;
        do { rc = sys_fsync(Fd(fd)) == 0 ? 0 : LastErrno; } while (rc == EINTR);
        return rc;
    }

    /// <summary>Clears O_NONBLOCK (set while opening, so that a planted FIFO cannot make the open hang).</summary>
    public static int ClearNonBlocking(SafeHandle fd)
    {
        int flags = sys_fcntl(Fd(fd), F_GETFL, 0);
        if (flags < 0) return LastErrno;
        return sys_fcntl(Fd(fd), F_SETFL, flags & ~O_NONBLOCK) == 0 ? 0 : LastErrno;
    }
}
