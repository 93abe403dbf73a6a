using System.ComponentModel;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace SafeDeploy.Engine.Platform;

/// <summary>Thin POSIX bindings (glibc, Linux) used where .NET has no equivalent: flock, *at calls, statx, statfs.</summary>
public static unsafe partial class Native
{
    public const int O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2;
    public const int O_CREAT = 0x40, O_EXCL = 0x80, O_NOCTTY = 0x100, O_TRUNC = 0x200, O_APPEND = 0x400;
    public const int O_DIRECTORY = 0x10000, O_NOFOLLOW = 0x20000, O_CLOEXEC = 0x80000, O_PATH = 0x200000;
    public const int LOCK_SH = 1, LOCK_EX = 2, LOCK_NB = 4, LOCK_UN = 8;
    public const int AT_FDCWD = -100, AT_SYMLINK_NOFOLLOW = 0x100, AT_EMPTY_PATH = 0x1000;
    public const int EINTR = 4, ENOENT = 2, EACCES = 13, EEXIST = 17, ENOTDIR = 20, EWOULDBLOCK = 11, ELOOP = 40, ENOSPC = 28, EPERM = 1, ESRCH = 3;
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

    /// <summary>Throws a Win32Exception (errno + message) for the last failed call, naming what was being done.</summary>
    public static Exception Error(string what, string path) =>
        new IOException($"{what} '{path}': {new Win32Exception(Marshal.GetLastPInvokeError()).Message}", Marshal.GetLastPInvokeError());

    public static int LastErrno => Marshal.GetLastPInvokeError();

    /// <summary>open(2) without any of the implicit flock that .NET's FileStream takes on Unix.</summary>
    public static SafeFileHandle Open(string path, int flags, uint mode = 0x1A4 /* 0644 */)
    {
        int fd;
        do { fd = sys_open(path, flags | O_CLOEXEC, mode); } while (fd < 0 && LastErrno == EINTR);
        if (fd < 0) throw Error("cannot open", path);
        return new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>Like <see cref="Open"/> but returns the errno instead of throwing.</summary>
    public static int TryOpenAt(SafeHandle? dir, string name, int flags, uint mode, out SafeFileHandle? handle)
    {
        int dirfd = dir is null ? AT_FDCWD : (int)dir.DangerousGetHandle();
        int fd;
        do { fd = sys_openat(dirfd, name, flags | O_CLOEXEC, mode); } while (fd < 0 && LastErrno == EINTR);
        handle = fd < 0 ? null : new SafeFileHandle(fd, ownsHandle: true);
        return fd < 0 ? LastErrno : 0;
    }

    /// <summary>mkdirat(2); returns 0 or the errno.</summary>
    public static int MkdirAt(SafeHandle dir, string name, uint mode) =>
        sys_mkdirat((int)dir.DangerousGetHandle(), name, mode) == 0 ? 0 : LastErrno;

    /// <summary>flock(2). Returns 0 or the errno (EWOULDBLOCK when non-blocking and held elsewhere).</summary>
    public static int Flock(SafeHandle fd, int op)
    {
        int rc;
        do { rc = sys_flock((int)fd.DangerousGetHandle(), op); } while (rc < 0 && LastErrno == EINTR);
        return rc == 0 ? 0 : LastErrno;
    }

    public static void Fsync(SafeHandle fd, string pathForErrors)
    {
        if (sys_fsync((int)fd.DangerousGetHandle()) != 0) throw Error("cannot fsync", pathForErrors);
    }

    /// <summary>fdatasync(2): the file's data (and the size needed to read it back) reach the disk.</summary>
    public static void Fdatasync(SafeHandle fd, string pathForErrors)
    {
        if (sys_fdatasync((int)fd.DangerousGetHandle()) != 0) throw Error("cannot fdatasync", pathForErrors);
    }

    /// <summary>fsync a directory so that a rename inside it is durable; best effort where the filesystem refuses.</summary>
    public static void FsyncDirectory(string directory)
    {
        int fd = sys_open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
        if (fd < 0) return;
        using var h = new SafeFileHandle(fd, true);
        sys_fsync(fd);
    }

    public static void Fchmod(SafeHandle fd, uint mode, string pathForErrors)
    {
        if (sys_fchmod((int)fd.DangerousGetHandle(), mode & 0xFFF) != 0) throw Error("cannot set the mode of", pathForErrors);
    }

    public static void Truncate(SafeHandle fd, long length)
    {
        if (sys_ftruncate((int)fd.DangerousGetHandle(), length) != 0) throw Error("cannot truncate", "fd");
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
                if (n < 0) { if (LastErrno == EINTR) continue; throw Error("cannot write", pathForErrors); }
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
            if (LastErrno is ENOENT or ENOTDIR) return null;
            throw Error("cannot stat", name);
        }
        return new FileStatus(b.stx_mode, b.stx_uid, b.stx_gid, (long)b.stx_size, b.stx_ino,
            b.stx_dev_major, b.stx_dev_minor, DateTimeOffset.FromUnixTimeSeconds(b.stx_mtime.tv_sec).AddTicks(b.stx_mtime.tv_nsec / 100))
        { Nlink = b.stx_nlink };
    }

    public static FileStatus Fstat(SafeHandle fd) => StatAt(fd, "", true) ?? throw new IOException("fstat failed");

    /// <summary>Filesystem magic number of the filesystem holding <paramref name="path"/>, and bytes available to unprivileged users.</summary>
    public static (long Type, long AvailableBytes) StatFs(string path)
    {
        StatfsBuf b;
        if (sys_statfs(path, &b) != 0) throw Error("cannot statfs", path);
        return (b.f_type, (long)b.f_bavail * b.f_bsize);
    }

    /// <summary>kill(2): 0 on success or the errno (ESRCH: no such process).</summary>
    public static int Kill(int pid, int signal) => sys_kill(pid, signal) == 0 ? 0 : LastErrno;

    public static bool ProcessExists(int pid) => pid > 0 && Kill(pid, 0) is 0 or EPERM;
}

/// <summary>What statx(2) says of a file.</summary>
public sealed record FileStatus(uint Mode, uint Uid, uint Gid, long Size, ulong Inode, uint DevMajor, uint DevMinor, DateTimeOffset LastWrite)
{
    public bool IsDirectory => (Mode & Native.S_IFMT) == Native.S_IFDIR;
    public bool IsSymlink => (Mode & Native.S_IFMT) == Native.S_IFLNK;
    public bool IsRegularFile => (Mode & Native.S_IFMT) == Native.S_IFREG;
    public uint Permissions => Mode & 0xFFF;
    public bool IsWorldWritable => (Mode & 0x2) != 0;
    public bool IsSticky => (Mode & 0x200) != 0;
    /// <summary>Hard links to the file: a file with more than one may also be someone else's file under another name.</summary>
    public uint Nlink { get; init; } = 1;
    public bool IsGroupOrWorldWritable => (Mode & 0x12) != 0;
}
