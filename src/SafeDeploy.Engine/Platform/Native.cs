using System.ComponentModel;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace SafeDeploy.Engine.Platform;

/// <summary>Thin POSIX bindings (glibc, Linux) used where .NET has no equivalent: flock, *at calls, statx, statfs.</summary>
internal static unsafe partial class Native
{
    public const int O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2;
    public const int O_CREAT = 0x40, O_EXCL = 0x80, O_NOCTTY = 0x100, O_TRUNC = 0x200, O_APPEND = 0x400;
    public const int O_DIRECTORY = 0x10000, O_NOFOLLOW = 0x20000, O_CLOEXEC = 0x80000, O_PATH = 0x200000;
    public const int LOCK_SH = 1, LOCK_EX = 2, LOCK_NB = 4, LOCK_UN = 8;
    public const int AT_FDCWD = -100, AT_SYMLINK_NOFOLLOW = 0x100, AT_EMPTY_PATH = 0x1000;
    public const int EINTR = 4, ENOENT = 2, EACCES = 13, EEXIST = 17, ENOTDIR = 20, EWOULDBLOCK = 11, ELOOP = 40, ENOSPC = 28, EPERM = 1, ESRCH = 3;
    public const int ENXIO = 6, EBADF = 9, ENOTSUP = 95;
    public const uint S_IFMT = 0xF000, S_IFDIR = 0x4000, S_IFLNK = 0xA000, S_IFREG = 0x8000;
    const uint STATX_BASIC_STATS = 0x7FF;

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int sys_open(string path, int flags, uint mode);

    [LibraryImport("libc", EntryPoint = "openat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int sys_openat(int dirfd, string path, int flags, uint mode);

    [LibraryImport("libc", EntryPoint = "mkdirat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int sys_mkdirat(int dirfd, string path, uint mode);

    [LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
    private static partial int sys_flock(int fd, int op);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int sys_fsync(int fd);

    [LibraryImport("libc", EntryPoint = "fdatasync", SetLastError = true)]
    private static partial int sys_fdatasync(int fd);

    [LibraryImport("libc", EntryPoint = "fchmod", SetLastError = true)]
    private static partial int sys_fchmod(int fd, uint mode);

    [LibraryImport("libc", EntryPoint = "fchown", SetLastError = true)]
    private static partial int sys_fchown(int fd, uint uid, uint gid);

    [LibraryImport("libc", EntryPoint = "ftruncate", SetLastError = true)]
    private static partial int sys_ftruncate(int fd, long length);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    private static partial nint sys_write(int fd, byte* buf, nint count);

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int sys_statx(int dirfd, string path, int flags, uint mask, StatxBuf* buf);

    [LibraryImport("libc", EntryPoint = "fstatfs", SetLastError = true)]
    private static partial int sys_fstatfs(int fd, StatfsBuf* buf);

    [LibraryImport("libc", EntryPoint = "statfs", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int sys_statfs(string path, StatfsBuf* buf);

    [LibraryImport("libc", EntryPoint = "geteuid")]
    public static partial uint GetEffectiveUserId();

    [LibraryImport("libc", EntryPoint = "getegid")]
    public static partial uint GetEffectiveGroupId();

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int sys_kill(int pid, int sig);

    [LibraryImport("libc", EntryPoint = "setsid", SetLastError = true)]
    public static partial int SetSid();

    [StructLayout(LayoutKind.Sequential)]
    private struct StatxTimestamp { public long tv_sec; public uint tv_nsec; public int pad; }

    [StructLayout(LayoutKind.Sequential)]
    private struct StatxBuf
    {
        public uint stx_mask, stx_blksize; public ulong stx_attributes;
        public uint stx_nlink, stx_uid, stx_gid; public ushort stx_mode, pad1;
        public ulong stx_ino, stx_size, stx_blocks, stx_attributes_mask;
        public StatxTimestamp stx_atime, stx_btime, stx_ctime, stx_mtime;
        public uint stx_rdev_major, stx_rdev_minor, stx_dev_major, stx_dev_minor;
        public fixed ulong spare[14];
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct StatfsBuf
    {
        public long f_type, f_bsize; public ulong f_blocks, f_bfree, f_bavail, f_files, f_ffree;
        public long f_fsid; public long f_namelen, f_frsize, f_flags; public fixed long f_spare[4];
    }

    /// <summary>
    /// The failure of a call whose errno the caller captured the moment it failed (<see cref="LastErrno"/> right after
    /// the call, before anything else runs: building a message can itself make calls that overwrite it).
    /// </summary>
    public static NativeIOException Error(string what, string path, int errno) => new(errno, what, path);

    /// <summary>The errno of the last P/Invoke: read it once, immediately after the failed call, and pass the value on.</summary>
    public static int LastErrno => Marshal.GetLastPInvokeError();

    /// <summary>strerror(3) text of <paramref name="errno"/>.</summary>
    public static string Describe(int errno) => new Win32Exception(errno).Message;

    /// <summary>open(2) without any of the implicit flock that .NET's FileStream takes on Unix.</summary>
    public static SafeFileHandle Open(string path, int flags, uint mode = 0x1A4 /* 0644 */)
    {
        int fd, errno;
        do { fd = sys_open(path, flags | O_CLOEXEC, mode); errno = fd < 0 ? LastErrno : 0; } while (errno == EINTR);
        if (fd < 0) throw Error("cannot open", path, errno);
        return new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>Like <see cref="Open"/> but returns the errno instead of throwing.</summary>
    public static int TryOpenAt(SafeHandle? dir, string name, int flags, uint mode, out SafeFileHandle? handle)
    {
        int dirfd = dir is null ? AT_FDCWD : (int)dir.DangerousGetHandle();
        int fd, errno;
        do { fd = sys_openat(dirfd, name, flags | O_CLOEXEC, mode); errno = fd < 0 ? LastErrno : 0; } while (errno == EINTR);
        handle = fd < 0 ? null : new SafeFileHandle(fd, ownsHandle: true);
        return errno;
    }

    /// <summary>mkdirat(2); returns 0 or the errno.</summary>
    public static int MkdirAt(SafeHandle dir, string name, uint mode) =>
        sys_mkdirat((int)dir.DangerousGetHandle(), name, mode) == 0 ? 0 : LastErrno;

    /// <summary>flock(2). Returns 0 or the errno (EWOULDBLOCK when non-blocking and held elsewhere).</summary>
    public static int Flock(SafeHandle fd, int op)
    {
        int rc, errno;
        do { rc = sys_flock((int)fd.DangerousGetHandle(), op); errno = rc < 0 ? LastErrno : 0; } while (errno == EINTR);
        return errno;
    }

    /// <summary>fsync(2), checked: a failure means the data may not be on disk (never ignore it).</summary>
    public static void Fsync(SafeHandle fd, string pathForErrors)
    {
        int rc, errno;
        do { rc = sys_fsync((int)fd.DangerousGetHandle()); errno = rc != 0 ? LastErrno : 0; } while (errno == EINTR);
        if (rc != 0) throw Error("cannot fsync", pathForErrors, errno);
    }

    /// <summary>fdatasync(2): the file's data (and the size needed to read it back) reach the disk.</summary>
    public static void Fdatasync(SafeHandle fd, string pathForErrors)
    {
        int rc, errno;
        do { rc = sys_fdatasync((int)fd.DangerousGetHandle()); errno = rc != 0 ? LastErrno : 0; } while (errno == EINTR);
        if (rc != 0) throw Error("cannot fdatasync", pathForErrors, errno);
    }

    /// <summary>
    /// fsync of an open directory so that a rename inside it is durable. Real I/O errors are thrown; EINVAL/ENOTSUP
    /// (filesystems that cannot fsync a directory) are tolerated, since there is nothing more to make durable there.
    /// </summary>
    public static void FsyncDirectory(SafeHandle dir, string pathForErrors)
    {
        int rc, errno;
        do { rc = sys_fsync((int)dir.DangerousGetHandle()); errno = rc != 0 ? LastErrno : 0; } while (errno == EINTR);
        if (rc != 0 && errno is not (EINVAL or ENOTSUP)) throw Error("cannot fsync directory", pathForErrors, errno);
    }

    /// <summary>fsync a directory by path (see the handle overload): opening it or fsyncing it failing is an error.</summary>
    public static void FsyncDirectory(string directory)
    {
        using var h = Open(directory, O_RDONLY | O_DIRECTORY);
        FsyncDirectory(h, directory);
    }

    public static void Fchmod(SafeHandle fd, uint mode, string pathForErrors)
    {
        if (sys_fchmod((int)fd.DangerousGetHandle(), mode & 0xFFF) != 0) throw Error("cannot set the mode of", pathForErrors, LastErrno);
    }

    public static void Truncate(SafeHandle fd, long length, string pathForErrors = "fd")
    {
        if (sys_ftruncate((int)fd.DangerousGetHandle(), length) != 0) throw Error("cannot truncate", pathForErrors, LastErrno);
    }


    public static int Fchown(SafeHandle fd, uint uid, uint gid) =>
        sys_fchown((int)fd.DangerousGetHandle(), uid, gid) == 0 ? 0 : LastErrno;

    /// <summary>One write(2) call of the whole buffer (for O_APPEND log lines that must never interleave).</summary>
    public static void WriteOnce(SafeHandle fd, ReadOnlySpan<byte> data, string pathForErrors)
    {
        fixed (byte* p = data)
        {
            nint done = 0;
            while (done < data.Length)
            {
                nint n = sys_write((int)fd.DangerousGetHandle(), p + done, data.Length - done);
                if (n < 0) { int errno = LastErrno; if (errno == EINTR) continue; throw Error("cannot write", pathForErrors, errno); }
                done += n;
            }
        }
    }

    /// <summary>statx of a path (or of <paramref name="dir"/> itself with an empty name); null when it does not exist.</summary>
    public static FileStatus? Stat(string path, bool followSymlinks = true) =>
        StatAt(null, path, followSymlinks);

    public static FileStatus? StatAt(SafeHandle? dir, string name, bool followSymlinks)
    {
        StatxBuf b;
        int dirfd = dir is null ? AT_FDCWD : (int)dir.DangerousGetHandle();
        int flags = (followSymlinks ? 0 : AT_SYMLINK_NOFOLLOW) | (name.Length == 0 ? AT_EMPTY_PATH : 0);
        if (sys_statx(dirfd, name, flags, STATX_BASIC_STATS, &b) != 0)
        {
            int errno = LastErrno;
            if (errno is ENOENT or ENOTDIR) return null;
            throw Error("cannot stat", name, errno);
        }
        return new FileStatus(b.stx_mode, b.stx_uid, b.stx_gid, (long)b.stx_size, b.stx_ino,
            b.stx_dev_major, b.stx_dev_minor, DateTimeOffset.FromUnixTimeSeconds(b.stx_mtime.tv_sec).AddTicks(b.stx_mtime.tv_nsec / 100))
        { Nlink = b.stx_nlink, Changed = DateTimeOffset.FromUnixTimeSeconds(b.stx_ctime.tv_sec).AddTicks(b.stx_ctime.tv_nsec / 100) };
    }

    public static FileStatus Fstat(SafeHandle fd) => StatAt(fd, "", true) ?? throw new NativeIOException(EBADF, "cannot fstat", "fd");

    /// <summary>Filesystem magic number of the filesystem holding <paramref name="path"/>, and bytes available to unprivileged users.</summary>
    public static (long Type, long AvailableBytes) StatFs(string path)
    {
        StatfsBuf b;
        if (sys_statfs(path, &b) != 0) throw Error("cannot statfs", path, LastErrno);
        return (b.f_type, (long)b.f_bavail * b.f_bsize);
    }

    /// <summary>kill(2): 0 on success or the errno (ESRCH: no such process).</summary>
    public static int Kill(int pid, int signal) => sys_kill(pid, signal) == 0 ? 0 : LastErrno;

    public static bool ProcessExists(int pid) => pid > 0 && Kill(pid, 0) is 0 or EPERM;
}

/// <summary>What statx(2) says of a file.</summary>
internal sealed record FileStatus(uint Mode, uint Uid, uint Gid, long Size, ulong Inode, uint DevMajor, uint DevMinor, DateTimeOffset LastWrite)
{
    public bool IsFifo => (Mode & Native.S_IFMT) == 0x1000;
    /// <summary>True when both describe the same inode on the same device.</summary>
    public bool SameFileAs(FileStatus other) => Inode == other.Inode && DevMajor == other.DevMajor && DevMinor == other.DevMinor;
    public bool IsDirectory => (Mode & Native.S_IFMT) == Native.S_IFDIR;
    public bool IsSymlink => (Mode & Native.S_IFMT) == Native.S_IFLNK;
    public bool IsRegularFile => (Mode & Native.S_IFMT) == Native.S_IFREG;
    public uint Permissions => Mode & 0xFFF;
    public bool IsWorldWritable => (Mode & 0x2) != 0;
    public bool IsSticky => (Mode & 0x200) != 0;
    /// <summary>Hard links to the file: a file with more than one may also be someone else's file under another name.</summary>
    public uint Nlink { get; init; } = 1;
    /// <summary>The inode's last change (ctime): any write, chmod or rename moves it, and no user can set it back.</summary>
    public DateTimeOffset Changed { get; init; }
    public bool IsGroupOrWorldWritable => (Mode & 0x12) != 0;
}

/// <summary>A failed POSIX call: the errno captured right after it (also as HResult), what was being done, and on what.</summary>
internal sealed class NativeIOException(int errno, string what, string path)
    : IOException($"{what} '{path}': {Native.Describe(errno)}", errno)
{
    public int Errno { get; } = errno;
    public string Path { get; } = path;
}
