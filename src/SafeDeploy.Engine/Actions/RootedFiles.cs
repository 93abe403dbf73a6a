using System.Globalization;
using System.Security.Cryptography;
using SafeDeploy.Engine.Files;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Actions;

/// <summary>
/// File changes of a deployment, made only with *at() calls on a <see cref="RootedPath"/>'s directory: an atomic
/// replacement (the one writer, <see cref="AtomicReplace"/>: temporary file journaled first, written, fsynced — an fsync
/// error fails it — given its mode and owner, renamed over the target, the directory fsynced) and a read that never
/// follows a symlink or opens a FIFO.
/// </summary>
internal static class RootedFiles
{
    /// <summary>Test hook (see <see cref="AtomicReplace.CrashBeforeRenameVariable"/>).</summary>
    public const string CrashBeforeRenameVariable = AtomicReplace.CrashBeforeRenameVariable;

    /// <summary>
    /// Replaces the file atomically with what <paramref name="write"/> writes. <paramref name="mode"/> null keeps an
    /// existing regular file's mode (else 0644); its owner is kept. <paramref name="temporary"/> is told the temporary
    /// file's full path before it exists (the journal records it, so recovery can remove it).
    /// </summary>
    public static void Replace(RootedPath at, Action<Stream> write, uint? mode, Action<string> temporary) =>
        AtomicReplace.Write(at.Directory, at.Name, write, new AtomicWriteOptions { Mode = mode, Temporary = temporary }, at.Display);

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
