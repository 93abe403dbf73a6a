using System.Text;
using Microsoft.Win32.SafeHandles;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Files;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.SharedLibraries;

/// <summary>
/// The locked read-modify-write of an ld.so.preload file through the safe-path primitive: its directory opened in the
/// -Root jail (or by a trusted walk from "/"), the file opened there without following a final link (a FIFO or another
/// user's file refused), flock'd (as `flock FILE` in shell scripts), replaced by a temporary file renamed over it in the
/// same directory descriptor. Nothing is ever re-resolved from a path string.
/// </summary>
internal static class PreloadFileEdit
{
    /// <summary>Opens the directory that holds <paramref name="file"/> (an absolute path as the manifest names it).</summary>
    internal static SafeDirectory OpenParent(SafeDirectory? root, string file, out string name)
    {
        if (!file.StartsWith('/') || file.Split('/').Any(p => p is "." or ".."))
            throw new SafeDeployException("InvalidPath", ErrorKind.InvalidArgument, file,
                $"The preload file '{file}' must be an absolute path without '.' or '..' components.", "Give it as /etc/ld.so.preload.");
        if (root is null) return SafePath.OpenParent(file, out name);
        var rel = file.TrimStart('/');
        int slash = rel.LastIndexOf('/');
        name = slash < 0 ? rel : rel[(slash + 1)..];
        return root.OpenDirectory(slash < 0 ? "" : rel[..slash]);
    }

    internal static byte[]? Read(SafeDirectory? root, string file)
    {
        SafeDirectory dir;
        string name;
        try { dir = OpenParent(root, file, out name); }
        catch (SafeDeployException e) when (e.ErrorId == "DirectoryNotFound") { return null; }
        using (dir)
        {
            if (dir.Stat(name) is null) return null;
            using var fd = dir.OpenFile(name);
            return ReadAll(fd);
        }
    }

    internal static (FileEditResult Result, string Path) Edit(SafeDirectory? root, string file, Func<string?, string> transform, bool createMissing,
        FileEditOptions options, CancellationToken token)
    {
        using var dir = OpenParent(root, file, out var name);
        var path = dir.FullPath(name);
        if (options.WhatIf || (!createMissing && dir.Stat(name) is null))
        {
            byte[]? current = null;
            if (dir.Stat(name) is not null) { using var r = dir.OpenFile(name); current = ReadAll(r); }
            if (current is null && !createMissing) return (new FileEditResult { Path = path }, path);
            var text = current is null ? null : Decode(current);
            var next = transform(text);
            bool change = next != text && !(current is null && next.Length == 0);
            return (new FileEditResult { Path = path, Changed = change, Created = change && current is null, Diff = change ? TextDiff.Lines(text ?? "", next) : "", PreviousContent = current }, path);
        }
        var (fd, created) = Lock(dir, name, options, token);
        using (fd)
        {
            var before = ReadAll(fd);
            bool isNew = created && before.Length == 0;
            var beforeText = isNew ? null : Decode(before);
            string after;
            try { after = transform(beforeText); }
            catch { if (isNew) dir.Delete(name); throw; }
            if (after == beforeText || (isNew && after.Length == 0))
            {
                if (isNew) dir.Delete(name);
                return (new FileEditResult { Path = path, PreviousContent = isNew ? null : before }, path);
            }
            Replace(dir, name, Encoding.UTF8.GetBytes(after), Native.Fstat(fd));
            return (new FileEditResult { Path = path, Changed = true, Created = isNew, Diff = TextDiff.Lines(beforeText ?? "", after), PreviousContent = isNew ? null : before }, path);
        }
    }

    /// <summary>Puts <paramref name="content"/> back (null: removes the file), under the file's lock.</summary>
    internal static void Restore(SafeDirectory? root, string file, byte[]? content, FileEditOptions options, CancellationToken token)
    {
        using var dir = OpenParent(root, file, out var name);
        if (content is null) { dir.Delete(name); dir.Fsync(); return; }
        var (fd, _) = Lock(dir, name, options, token);
        using (fd) Replace(dir, name, content, Native.Fstat(fd));
    }

    // Opens and flocks the file; a waiter whose file was replaced meanwhile (rename by the previous holder) opens again.
    static (SafeFileHandle Fd, bool Created) Lock(SafeDirectory dir, string name, FileEditOptions options, CancellationToken token)
    {
        var deadline = options.Timeout is { } t ? DateTime.UtcNow + t : DateTime.MaxValue;
        bool reported = false;
        while (true)
        {
            var fd = dir.OpenFile(name, SafeOpen.ReadWrite | SafeOpen.Create, options.NewFileMode, out bool created);
            try
            {
                while (Native.Flock(fd, Native.LOCK_EX | Native.LOCK_NB) is int rc && rc != 0)
                {
                    if (rc != Native.EWOULDBLOCK) throw IoErrors.FromErrno(rc, dir.FullPath(name), "lock");
                    if (DateTime.UtcNow >= deadline)
                        throw new SafeDeployException("LockTimeout", ErrorKind.ResourceBusy, dir.FullPath(name),
                            $"'{dir.FullPath(name)}' stayed locked by another editor for {options.Timeout!.Value.TotalSeconds:0.#} s.", "Find the other editor (Get-LockHolder -Path), or allow a longer timeout.");
                    if (!reported) { options.Reporter.Verbose($"Waiting for the lock on '{dir.FullPath(name)}'."); reported = true; }
                    token.ThrowIfCancellationRequested();
                    Thread.Sleep(10);
                }
                if (dir.Stat(name) is { } now && now.Inode == Native.Fstat(fd).Inode) return (fd, created);
            }
            catch { fd.Dispose(); throw; }
            fd.Dispose();
        }
    }

    // The one writer; the file's mode and owner (as locked) are kept.
    static void Replace(SafeDirectory dir, string name, byte[] content, FileStatus keep) =>
        AtomicReplace.Write(dir, name, content, new AtomicWriteOptions { Mode = keep.Permissions });

    // RandomAccess: no FileStream (it would own the descriptor, releasing our flock on dispose, and take .NET's own lock).
    static byte[] ReadAll(SafeFileHandle fd)
    {
        var buffer = new byte[Math.Max(0, RandomAccess.GetLength(fd))];
        int read = 0;
        while (read < buffer.Length)
        {
            int n = RandomAccess.Read(fd, buffer.AsSpan(read), read);
            if (n == 0) break;
            read += n;
        }
        return read == buffer.Length ? buffer : buffer[..read];
    }

    static string Decode(byte[] bytes) => new UTF8Encoding(false).GetString(bytes);
}
