using System.Text;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Files;

/// <summary>Options for an atomic write.</summary>
internal sealed record AtomicWriteOptions
{
    /// <summary>Mode for a new file (an existing file's mode is kept). Set explicitly, never from the umask.</summary>
    public uint NewFileMode { get; init; } = 0x1A4; // 0644
    /// <summary>Force this mode even when the file exists.</summary>
    public uint? Mode { get; init; }
    /// <summary>Owner (uid, gid) for a new file (an existing file's owner is kept); null: the caller's.</summary>
    public (uint Uid, uint Gid)? NewFileOwner { get; init; }
    /// <summary>Create missing parent directories (mode <see cref="DirectoryMode"/>); each one created is added to <see cref="CreatedDirectories"/>.</summary>
    public bool CreateParents { get; init; }
    public uint DirectoryMode { get; init; } = 0x1ED; // 0755
    public IList<string>? CreatedDirectories { get; init; }
    /// <summary>Told the temporary file's full path before it is created (a deployment journals it, so recovery can remove it).</summary>
    public Action<string>? Temporary { get; init; }
    /// <summary>An existing file keeps its owner (false: the replacement is the writer's, as a pid file is).</summary>
    public bool KeepOwner { get; init; } = true;
}

/// <summary>
/// Atomic writes by path: the target's directory opened once by <see cref="SafePath"/> (a trusted walk), then the one
/// writer, <see cref="AtomicReplace"/>, on it. Readers see the old bytes or the new, never a mix; any failure before the
/// rename leaves the old file and no temporary file.
/// </summary>
internal static class AtomicFile
{
    internal const string Unchanged = "The previous file, if any, is unchanged.";

    public static void WriteAllBytes(string path, byte[] content, AtomicWriteOptions? options = null)
    {
        using var pending = Begin(path, options);
        pending.Commit(s => s.Write(content));
    }

    public static void WriteAllText(string path, string content, AtomicWriteOptions? options = null) =>
        WriteAllBytes(path, Encoding.UTF8.GetBytes(content), options);

    /// <summary>Starts an atomic replacement of <paramref name="path"/>: write to <see cref="PendingFile.Stream"/>, then Commit.</summary>
    public static PendingFile Begin(string path, AtomicWriteOptions? options = null)
    {
        options ??= new AtomicWriteOptions();
        path = System.IO.Path.GetFullPath(path);
        var dir = SafePath.OpenParent(path, out var name, options.CreateParents, options.DirectoryMode, options.CreatedDirectories);
        try { return AtomicReplace.Begin(dir, name, options, ownsDirectory: true, display: path); }
        catch { dir.Dispose(); throw; }
    }

    /// <summary>Renames an already written file over <paramref name="target"/> (fsyncing it first), keeping the target's mode and owner.</summary>
    public static void Replace(string tempPath, string target, AtomicWriteOptions? options = null)
    {
        options ??= new AtomicWriteOptions();
        target = System.IO.Path.GetFullPath(target);
        using var fromDir = SafePath.OpenParent(tempPath, out var tempName);
        using var toDir = SafePath.OpenParent(target, out var name);
        using (var fd = fromDir.TryOpenHere(tempName, SafeOpen.Read, 0, out _)
                        ?? throw IoErrors.From(Native.ENOENT, tempPath, "open"))
        {
            AtomicReplace.ApplyModeAndOwner(fd, toDir, name, tempPath, options);
            Native.Fsync(fd, tempPath);
        }
        int rc = Native.RenameAt(fromDir.Handle, tempName, toDir.Handle, name);
        if (rc != 0) throw IoErrors.From(rc, target, "rename into", Unchanged);
        AtomicReplace.SyncDirectory(toDir, target);
        if (!fromDir.Status.SameFileAs(toDir.Status)) AtomicReplace.SyncDirectory(fromDir, tempPath);
    }

    /// <summary>Maps an I/O failure to an error that says what to do (see <see cref="IoErrors"/>).</summary>
    public static Exception Translate(IOException e, string path, string doing) => IoErrors.From(e, path, doing, Unchanged);
}
