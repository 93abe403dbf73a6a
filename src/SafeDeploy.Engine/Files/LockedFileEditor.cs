using System.Diagnostics;
using System.Text;
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
}

public sealed record FileEditOptions
{
    public TimeSpan? Timeout { get; init; }
    public bool WhatIf { get; init; }
    public uint NewFileMode { get; init; } = 0x1A4;
    public IOperationReporter Reporter { get; init; } = NullReporter.Instance;
}

/// <summary>
/// Read-modify-write under a flock on the file itself: concurrent editors queue, each sees the previous one's result,
/// and the file is replaced atomically (mode and owner kept). Compatible with `flock FILE -c '...'` in shell scripts.
/// </summary>
public static class LockedFileEditor
{
    /// <summary>Edits <paramref name="path"/> with <paramref name="transform"/> (given null when the file does not exist).</summary>
    public static FileEditResult Edit(string path, Func<string?, string> transform, FileEditOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        options ??= new FileEditOptions();
        path = System.IO.Path.GetFullPath(path);
        var dir = System.IO.Path.GetDirectoryName(path)!;
        if (!Directory.Exists(dir))
            throw new SafeDeployException("DirectoryNotFound", ErrorKind.ObjectNotFound, path,
                $"Cannot edit '{path}': directory '{dir}' does not exist.", "Create the directory first, or check the path.");
        if (Native.Stat(path) is { IsRegularFile: false } st && !st.IsSymlink)
            throw new SafeDeployException("NotAFile", ErrorKind.InvalidArgument, path, $"'{path}' is not a regular file.", "Give the path of a file.");

        if (options.WhatIf)
        {
            var current = ReadUnlocked(path);
            var text = current is null ? null : Decode(current);
            var next = transform(text);
            return new FileEditResult { Path = path, Changed = next != text, Created = current is null, Diff = next == text ? "" : TextDiff.Lines(text ?? "", next), PreviousContent = current };
        }

        bool existed = File.Exists(path);
        var clock = Stopwatch.StartNew();
        using var held = FileLock.Acquire(path, new LockOptions
        {
            VerifyPathIdentity = true, RecordHolder = false, Timeout = options.Timeout, Reporter = options.Reporter, Purpose = "edit",
        }, cancellationToken);
        var before = ReadAll(held);
        bool isNew = !existed && before.Length == 0;
        var beforeText = isNew ? null : Decode(before);
        string after;
        try { after = transform(beforeText); }
        catch
        {
            if (isNew) TryRemoveEmpty(path);
            throw;
        }
        if (after == beforeText)
            return new FileEditResult { Path = path, LockWait = held.WaitTime, PreviousContent = isNew ? null : before };
        AtomicFile.WriteAllText(path, after, new AtomicWriteOptions { NewFileMode = options.NewFileMode });
        return new FileEditResult
        {
            Path = path, Changed = true, Created = isNew, Diff = TextDiff.Lines(beforeText ?? "", after), LockWait = held.WaitTime,
            PreviousContent = isNew ? null : before,
        };
    }

    static void TryRemoveEmpty(string path)
    {
        try { if (new FileInfo(path) is { Exists: true, Length: 0 }) File.Delete(path); } catch (IOException) { }
    }

    static string Decode(byte[] bytes) => new UTF8Encoding(false).GetString(bytes);

    static byte[] ReadAll(FileLock held)
    {
        var length = RandomAccess.GetLength(held.Handle);
        var buffer = new byte[length];
        int read = 0;
        while (read < length)
        {
            int n = RandomAccess.Read(held.Handle, buffer.AsSpan(read), read);
            if (n == 0) break;
            read += n;
        }
        return read == length ? buffer : buffer[..read];
    }

    /// <summary>Reads a file without .NET's implicit flock (which would fail while another process holds ours).</summary>
    public static byte[]? ReadUnlocked(string path)
    {
        if (!File.Exists(path)) return null;
        using var fd = Native.Open(path, Native.O_RDONLY | Native.O_NOCTTY);
        using var s = new FileStream(fd, FileAccess.Read);
        using var ms = new MemoryStream();
        s.CopyTo(ms);
        return ms.ToArray();
    }
}
