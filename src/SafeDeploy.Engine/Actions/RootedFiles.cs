using System.Globalization;
using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Actions;

/// <summary>
/// File changes of a deployment, made only with *at() calls on a <see cref="RootedPath"/>'s directory: an atomic
/// replacement (temporary file journaled first, written, fsynced — an fsync error fails it — given its mode and
/// owner, renamed over the target, the directory fsynced) and a read that never follows a symlink or opens a FIFO.
/// </summary>
public static class RootedFiles
{
    /// <summary>Test hook: set to N, the process kills itself with SIGKILL at its N-th replacement, after the temporary file's fsync and before its rename.</summary>
    public const string CrashBeforeRenameVariable = "SAFEDEPLOY_TEST_CRASH_BEFORE_RENAME";

    static readonly int crashAt = int.TryParse(Environment.GetEnvironmentVariable(CrashBeforeRenameVariable), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : 0;
    static int replacements;

    /// <summary>
    /// Replaces the file atomically with what <paramref name="write"/> writes. <paramref name="mode"/> null keeps an
    /// existing regular file's mode (else 0644); its owner is kept. <paramref name="temporary"/> is told the temporary
    /// file's full path before it exists (the journal records it, so recovery can remove it).
    /// </summary>
    public static void Replace(RootedPath at, Action<Stream> write, uint? mode, Action<string> temporary)
    {
        var existing = at.Stat() is { IsRegularFile: true } st ? st : null;
        var temp = $".{at.Name}.{Convert.ToHexString(RandomNumberGenerator.GetBytes(6)).ToLowerInvariant()}.tmp";
        temporary(at.Directory.FullPath(temp));
        bool renamed = false;
        try
        {
            using (var fd = at.Directory.OpenFile(temp, SafeOpen.CreateNew | SafeOpen.Write, 0x180, out _))
            {
                using (var stream = new FileStream(new SafeFileHandle(fd.DangerousGetHandle(), ownsHandle: false), FileAccess.Write, 1 << 16))
                {
                    write(stream);
                    stream.Flush();
                }
                Native.Fchmod(fd, mode ?? existing?.Permissions ?? 0x1A4, at.Directory.FullPath(temp));
                if (existing is not null && Native.Fstat(fd) is var mine && (mine.Uid != existing.Uid || mine.Gid != existing.Gid))
                    Native.Fchown(fd, existing.Uid, existing.Gid);
                Native.Fsync(fd, at.Directory.FullPath(temp)); // throws on EIO/ENOSPC: the old file stays
            }
            if (crashAt > 0 && Interlocked.Increment(ref replacements) == crashAt) Native.Kill(Environment.ProcessId, 9);
            at.Directory.Rename(temp, at.Name);
            renamed = true;
            at.Directory.Fsync();
        }
        finally
        {
            if (!renamed) try { at.Directory.Delete(temp); } catch (Exception e) when (e is IOException or Errors.SafeDeployException) { }
        }
    }

    public static void Replace(RootedPath at, byte[] content, uint? mode, Action<string> temporary) =>
        Replace(at, s => s.Write(content), mode, temporary);

    /// <summary>The bytes of the regular file (its last component not followed); null when it does not exist.</summary>
    public static byte[]? Read(RootedPath at)
    {
        if (at.Stat() is null) return null;
        using var fd = at.Directory.OpenFile(at.Name, SafeOpen.Read);
        using var stream = new FileStream(fd, FileAccess.Read);
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }

    /// <summary>Puts a symlink back as it was (removing whatever took its place).</summary>
    public static void RestoreLink(RootedPath at, string target)
    {
        if (at.Directory.ReadLink(at.Name) == target) return;
        at.Directory.Delete(at.Name);
        at.Directory.Symlink(target, at.Name);
        at.Directory.Fsync();
    }

    /// <summary>A unique name for a backup copy.</summary>
    public static string BackupName(int n, string name) =>
        $"{n.ToString("D4", CultureInfo.InvariantCulture)}-{Convert.ToHexString(RandomNumberGenerator.GetBytes(3)).ToLowerInvariant()}-{name}";
}
