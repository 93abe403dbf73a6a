using System.Diagnostics;
using System.Text;
using Microsoft.Win32.SafeHandles;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Locking;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Files;

/// <summary>What an edit did (or, with WhatIf, would do).</summary>
public sealed record FileEditResult
{
    public required string Path { get; init; }
    public bool Changed { get; init; }
    public bool Created { get; init; }
    /// <summary>Line diff of the change ("-" old, "+" new); empty when nothing changes.</summary>
    public string Diff { get; init; } = "";
    public TimeSpan LockWait { get; init; }
    /// <summary>The bytes before the edit (null when the file did not exist) — what an undo restores.</summary>
    public byte[]? PreviousContent { get; init; }
    /// <summary>Preview only: an earlier edit left a temporary file or a creation lock beside the file, which an edit removes.</summary>
    public bool Leftovers { get; init; }
}

internal sealed record FileEditOptions
{
    public TimeSpan? Timeout { get; init; }
    public bool WhatIf { get; init; }
    public uint NewFileMode { get; init; } = 0x1A4;
    /// <summary>Owner (uid, gid) of a file the edit creates; null: the caller's. An existing file keeps its owner.</summary>
    public (uint Uid, uint Gid)? NewFileOwner { get; init; }
    /// <summary>Create missing parent directories (0755), as the editFile action does; removed again if the edit fails.</summary>
    public bool CreateParents { get; init; } = true;
    /// <summary>
    /// Told the full path of each file the edit creates beside the target before it exists (its temporary file, and the
    /// creation lock of a new file): a deployment journals them, so recovery removes what a kill -9 left.
    /// </summary>
    public Action<string>? Temporary { get; init; }
    public IOperationReporter Reporter { get; init; } = NullReporter.Instance;
}

/// <summary>
/// Read-modify-write under a flock, the file replaced atomically (mode and owner kept), so concurrent editors queue and
/// each sees the previous one's result. An existing file is locked itself (compatible with `flock FILE -c '...'` in shell
/// scripts; `flock FILE` on a missing file creates it empty, which then counts as existing). A missing file is created
/// under a separate lock, `.&lt;name&gt;.lock` beside it, which the creator removes while it still holds it: a failed
/// edit of a new file leaves nothing behind, and an editor that finds the file created meanwhile switches to its lock.
/// </summary>
internal static class LockedFileEditor
{
    /// <summary>Edits <paramref name="path"/> with <paramref name="transform"/> (given null when the file does not exist).</summary>
    public static FileEditResult Edit(string path, Func<string?, string> transform, FileEditOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        options ??= new FileEditOptions();
        path = System.IO.Path.GetFullPath(path);
        if (options.WhatIf) return Preview(path, transform);
        var createdDirs = new List<string>();
        try
        {
            for (int attempt = 0; ; attempt++)
            {
                using var dir = SafePath.OpenParent(path, out var name, options.CreateParents, 0x1ED, createdDirs);
                if (TryOnce(dir, name, path, transform, options, cancellationToken, attempt, pinned: false) is { } result) return result;
            }
        }
        catch when (createdDirs.Count > 0)
        {
            RemoveCreatedDirectories(createdDirs);
            throw;
        }
    }

    /// <summary>
    /// Edits <paramref name="name"/> in a directory already opened (inside a -Root jail): the file, its lock and its
    /// replacement are opened by name in that descriptor only, never by resolving <paramref name="path"/> (which names the
    /// file in messages). Its parent directories must exist (the caller opened them).
    /// </summary>
    public static FileEditResult Edit(SafeDirectory dir, string name, string path, Func<string?, string> transform, FileEditOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        options ??= new FileEditOptions();
        for (int attempt = 0; ; attempt++)
            if (TryOnce(dir, name, path, transform, options, cancellationToken, attempt, pinned: true) is { } result) return result;
    }

    // One attempt in the directory opened for it: create the file, or edit it; null when it vanished or appeared meanwhile.
    // Pinned: its lock is opened by name in that directory too (never by resolving the path).
    static FileEditResult? TryOnce(SafeDirectory dir, string name, string path, Func<string?, string> transform, FileEditOptions options,
        CancellationToken token, int attempt, bool pinned)
    {
        var st = Native.StatAt(dir.Handle, name, followSymlinks: false);
        CheckTarget(path, st);
        return st is null
            ? TryCreate(dir, name, path, transform, options, token, pinned)
            : TryEditExisting(dir, name, path, transform, options, token, attempt, pinned);
    }

    static FileEditResult Preview(string path, Func<string?, string> transform)
    {
        byte[]? current = null;
        bool leftovers = false;
        if (Directory.Exists(System.IO.Path.GetDirectoryName(path)))
        {
            using var dir = SafePath.OpenParent(path, out var name);
            CheckTarget(path, Native.StatAt(dir.Handle, name, followSymlinks: false));
            using var fd = dir.TryOpenHere(name, SafeOpen.Read, 0, out _);
            current = fd is null ? null : ReadAll(fd, path);
            leftovers = HasLeftovers(dir, name);
        }
        var text = current is null ? null : Decode(current);
        var next = transform(text);
        return new FileEditResult
        {
            Path = path, Changed = next != text, Created = current is null, Diff = next == text ? "" : TextDiff.Lines(text ?? "", next), PreviousContent = current,
            Leftovers = leftovers,
        };
    }

    static void CheckTarget(string path, FileStatus? st)
    {
        if (st is { IsSymlink: true })
            throw new SafeDeployException("SymlinkRefused", ErrorKind.SecurityError, path,
                $"'{path}' is a symbolic link: Edit-LockedFile never follows a link in the last component.",
                "Edit the link's target by its real path (readlink -f), or remove the link (check who created it).");
        if (st is { IsRegularFile: false })
            throw new SafeDeployException("NotAFile", ErrorKind.InvalidArgument, path, $"'{path}' is not a regular file.", "Give the path of a file.");
    }

    // Null: the file vanished or was replaced while we waited; the caller starts over.
    static FileEditResult? TryEditExisting(SafeDirectory dir, string name, string path, Func<string?, string> transform, FileEditOptions options,
        CancellationToken token, int attempt, bool pinned)
    {
        FileLock held;
        try
        {
            held = FileLock.Acquire(path, new LockOptions
            {
                VerifyPathIdentity = true, RecordHolder = false, Create = false, Timeout = options.Timeout, Reporter = options.Reporter, Purpose = "edit",
                Directory = pinned ? dir : null,
            }, token);
        }
        catch (SafeDeployException e) when (e.ErrorId == "LockPathNotFound" && attempt < 10) { return null; }
        using (held)
        {
            RemoveStaleTemporaries(dir, name);
            var before = ReadAll(held.Handle, path);
            var beforeText = Decode(before);
            var after = transform(beforeText);
            if (after == beforeText) return new FileEditResult { Path = path, LockWait = held.WaitTime, PreviousContent = before };
            Write(dir, name, path, after, new AtomicWriteOptions { NewFileMode = options.NewFileMode, Temporary = options.Temporary });
            return new FileEditResult
            {
                Path = path, Changed = true, Diff = TextDiff.Lines(beforeText, after), LockWait = held.WaitTime, PreviousContent = before,
            };
        }
    }

    static FileEditResult? TryCreate(SafeDirectory dir, string name, string path, Func<string?, string> transform, FileEditOptions options, CancellationToken token,
        bool pinned)
    {
        var lockPath = System.IO.Path.Combine(System.IO.Path.GetDirectoryName(path)!, $".{name}.lock");
        options.Temporary?.Invoke(dir.FullPath($".{name}.lock")); // taking it may create it: journaled first
        using var held = FileLock.Acquire(lockPath, new LockOptions
        {
            VerifyPathIdentity = true, RecordHolder = false, Timeout = options.Timeout, Reporter = options.Reporter, Purpose = "create",
            Directory = pinned ? dir : null,
        }, token);
        try
        {
            if (Native.StatAt(dir.Handle, name, followSymlinks: false) is not null) return null; // created meanwhile: lock the file itself
            RemoveStaleTemporaries(dir, name);
            var after = transform(null);
            Write(dir, name, path, after, new AtomicWriteOptions { NewFileMode = options.NewFileMode, NewFileOwner = options.NewFileOwner, Temporary = options.Temporary });
            return new FileEditResult { Path = path, Changed = true, Created = true, Diff = TextDiff.Lines("", after), LockWait = held.WaitTime };
        }
        finally
        {
            // Removed while held (also one an earlier creator could not remove); a waiter on this inode finds the path no
            // longer names it and starts over.
            if (Native.UnlinkAt(dir.Handle, $".{name}.lock", directory: false) is not (0 or Native.ENOENT)) Native.UnlinkAt(dir.Handle, $".{name}.lock", directory: false);
        }
    }

    /// <summary>
    /// Removes the temporary files an earlier edit of this file left (killed between its fsync and its rename, or on a disk
    /// that refused even the unlink). Called under the file's lock, which every editor holds from before it creates its
    /// temporary until after the rename, so none of these is in use: only regular files of ours named exactly as the
    /// writer names them (`.&lt;name&gt;.&lt;12 hex&gt;.tmp`), found and removed through the directory already opened.
    /// </summary>
    static void RemoveStaleTemporaries(SafeDirectory dir, string name)
    {
        RemoveStaleCreationLock(dir, name);
        foreach (var entry in StaleTemporaries(dir, name)) Native.UnlinkAt(dir.Handle, entry, directory: false);
    }

    /// <summary>The writer's temporary files of this target in the directory: regular files of ours named `.&lt;name&gt;.&lt;12 hex&gt;.tmp`.</summary>
    static List<string> StaleTemporaries(SafeDirectory dir, string name)
    {
        IEnumerable<string> entries;
        try { entries = Directory.EnumerateFiles($"/proc/self/fd/{dir.Handle.DangerousGetHandle()}", $".{name}.*.tmp").Select(System.IO.Path.GetFileName)!; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return []; } // best effort: the edit itself goes on
        return entries.Where(entry => AtomicReplace.IsTemporaryOf(entry, name)
            && Native.StatAt(dir.Handle, entry, followSymlinks: false) is { IsRegularFile: true } st && st.Uid == Native.GetEffectiveUserId()).ToList();
    }

    /// <summary>Whether an earlier edit left a temporary file or, beside an existing file, its creation lock (what the next edit removes).</summary>
    static bool HasLeftovers(SafeDirectory dir, string name) =>
        StaleTemporaries(dir, name).Count > 0
        || Native.StatAt(dir.Handle, name, followSymlinks: false) is not null && Native.StatAt(dir.Handle, $".{name}.lock", followSymlinks: false) is { IsRegularFile: true };

    /// <summary>
    /// A `.&lt;name&gt;.lock` that a creator could not remove (its unlink refused by a failing disk) once the file exists: removed
    /// when nobody holds it (a creator still holding it removes it itself; a waiter on it finds the path gone and starts over).
    /// </summary>
    static void RemoveStaleCreationLock(SafeDirectory dir, string name)
    {
        var lockName = $".{name}.lock";
        if (Native.StatAt(dir.Handle, name, followSymlinks: false) is null) return; // still a creation in progress or to come
        using var fd = TryOpen(dir, lockName);
        if (fd is null || Native.Flock(fd, Native.LOCK_EX | Native.LOCK_NB) != 0) return;
        Native.UnlinkAt(dir.Handle, lockName, directory: false);
    }

    static SafeFileHandle? TryOpen(SafeDirectory dir, string name)
    {
        try { return dir.TryOpenHere(name, SafeOpen.Read, 0, out _); }
        catch (SafeDeployException) { return null; } // a link, a FIFO, another user's file: not ours to remove
    }

    // The one writer, in the directory opened before the lock was taken (the lock checked that the path still names the file).
    static void Write(SafeDirectory dir, string name, string path, string text, AtomicWriteOptions options) =>
        AtomicReplace.Write(dir, name, Encoding.UTF8.GetBytes(text), options, path);

    static void RemoveCreatedDirectories(List<string> created)
    {
        for (int i = created.Count - 1; i >= 0; i--)
            try { Directory.Delete(created[i]); } catch (IOException) { return; } // not empty: someone else uses it now
    }

    static string Decode(byte[] bytes) => new UTF8Encoding(false).GetString(bytes);

    static byte[] ReadAll(SafeFileHandle fd, string path)
    {
        try
        {
            var length = RandomAccess.GetLength(fd);
            var buffer = new byte[length];
            int read = 0;
            while (read < length)
            {
                int n = RandomAccess.Read(fd, buffer.AsSpan(read), read);
                if (n == 0) break;
                read += n;
            }
            return read == length ? buffer : buffer[..read];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw IoErrors.From(e, path, "read", AtomicFile.Unchanged, reading: true); }
    }

    /// <summary>
    /// Reads a file without .NET's implicit flock (which would fail while another process holds ours); null when absent.
    /// Follows links (callers with a rooted path resolve it first); never blocks on a FIFO, which it refuses.
    /// </summary>
    public static byte[]? ReadUnlocked(string path)
    {
        if (!File.Exists(path)) return null;
        using var fd = Native.Open(path, Native.O_RDONLY | Native.O_NOCTTY | Native.O_NONBLOCK);
        if (!Native.Fstat(fd).IsRegularFile)
            throw new SafeDeployException("NotARegularFile", ErrorKind.InvalidArgument, path, $"'{path}' is not a regular file.", "Give the path of a regular file.");
        return ReadAll(fd, path);
    }
}
