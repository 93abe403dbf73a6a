using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.JobStatus;

/// <summary>
/// Every file operation on a clone's .git/safedeploy directory, in one place, through <see cref="SafePath"/> and
/// <see cref="SafeDirectory"/>. Someone else may be able to write in that directory (a clone shared by a group), so
/// no symlink in it is followed, only regular files are read (a file of another user in a directory that user can
/// write is refused), records are created new (O_EXCL) and renamed into place, and deletions unlink names.
/// Each call opens the directory afresh with a trusted walk and works on its descriptor.
/// </summary>
internal sealed class OutboxFiles(string directory)
{
    public string Directory { get; } = directory;

    public string FullPath(string name) => Path.Combine(Directory, name);

    SafeDirectory Open(bool create = false, uint mode = 0x1ED) => SafePath.OpenDirectory(Directory, create, mode);

    /// <summary>This directory, or null when it does not exist (a symlink in its place is an error).</summary>
    SafeDirectory? TryOpen()
    {
        try { return Open(); }
        catch (SafeDeployException e) when (e.ErrorId == "DirectoryNotFound") { return null; }
    }

    /// <summary>A subdirectory, created when asked (with <paramref name="mode"/>; <paramref name="exclusive"/>: it must not exist yet).</summary>
    public OutboxFiles Sub(string name, bool create, uint mode = 0x1ED, bool exclusive = false)
    {
        if (create)
        {
            using var d = Open();
            if (exclusive && d.Stat(name) is not null)
                throw new SafeDeployException("ResourceExists", ErrorKind.ResourceExists, FullPath(name), $"'{FullPath(name)}' exists already.", "Run the command again.");
            using var _ = d.OpenDirectory(name, create: true, mode);
        }
        return new OutboxFiles(FullPath(name));
    }

    /// <summary>Ensures this directory exists (created 0755 with missing parents).</summary>
    public void Create(uint mode = 0x1ED) { using var _ = Open(create: true, mode); }

    /// <summary>Entry names in this directory (none when it does not exist).</summary>
    public IReadOnlyList<string> Names()
    {
        using var d = TryOpen();
        if (d is null) return [];
        // The open descriptor is listed, not the path string.
        return System.IO.Directory.EnumerateFileSystemEntries($"/proc/self/fd/{d.Handle.DangerousGetHandle()}")
            .Select(Path.GetFileName).OfType<string>().ToList();
    }

    public bool Exists(string name)
    {
        using var d = TryOpen();
        return d?.Stat(name) is not null;
    }

    /// <summary>The bytes of a regular file (at most <paramref name="maxBytes"/>), or null with the reason it was refused (null reason: absent).</summary>
    public byte[]? ReadRegular(string name, int maxBytes, out string? refusal)
    {
        refusal = null;
        try
        {
            using var d = TryOpen();
            if (d is null || d.Stat(name) is null) return null;
            using var fd = d.OpenFile(name);
            var st = Native.Fstat(fd);
            if (st.Size > maxBytes) { refusal = $"it is larger than {maxBytes} bytes"; return null; }
            using var s = new FileStream(fd, FileAccess.Read, 1, false);
            var buffer = new byte[st.Size];
            int n = 0, r;
            while (n < buffer.Length && (r = s.Read(buffer, n, buffer.Length - n)) > 0) n += r;
            return buffer[..n];
        }
        catch (SafeDeployException e) when (e.Kind == ErrorKind.ObjectNotFound) { return null; }
        catch (SafeDeployException e) { refusal = e.Message; return null; }
    }

    /// <summary>Writes a new file under a temporary name (O_EXCL, mode <paramref name="mode"/>), fsyncs it and renames it to <paramref name="name"/>.</summary>
    public void WriteNew(string name, byte[] content, uint mode)
    {
        using var d = Open();
        Files.AtomicReplace.Write(d, name, content, new Files.AtomicWriteOptions { Mode = mode, KeepOwner = false });
    }

    /// <summary>Writes a private scratch file (O_EXCL, 0600).</summary>
    public void WriteScratch(string name, string content)
    {
        using var d = Open();
        using var fd = d.OpenFile(name, SafeOpen.CreateNew | SafeOpen.Write, 0x180, out _);
        Native.WriteOnce(fd, System.Text.Encoding.UTF8.GetBytes(content), d.FullPath(name));
    }

    /// <summary>Renames a file of this directory to <paramref name="newName"/> in the sibling directory <paramref name="sibling"/>.</summary>
    public bool MoveToSibling(string name, string sibling, string newName)
    {
        using var parent = SafePath.OpenDirectory(Path.GetDirectoryName(Directory)!);
        var self = Path.GetFileName(Directory);
        if (parent.Stat($"{self}/{name}") is null) return false;
        parent.Rename($"{self}/{name}", $"{sibling}/{newName}");
        return true;
    }

    /// <summary>Unlinks a name (a symlink itself, never its target); false when it was absent or is a directory.</summary>
    public bool Delete(string name)
    {
        using var d = TryOpen();
        if (d?.Stat(name) is not { IsDirectory: false }) return false;
        return d.Delete(name);
    }

    /// <summary>Last write time of a name, without following it (null when absent).</summary>
    public DateTimeOffset? LastWrite(string name)
    {
        using var d = TryOpen();
        return d?.Stat(name)?.LastWrite;
    }

    /// <summary>Removes a subdirectory holding only files (a scratch directory of a push); links in it are unlinked, never followed.</summary>
    public void DeleteTree(string name)
    {
        using var d = TryOpen();
        if (d is null) return;
        using (var sub = d.OpenDirectory(name))
            foreach (var n in System.IO.Directory.EnumerateFileSystemEntries($"/proc/self/fd/{sub.Handle.DangerousGetHandle()}").Select(Path.GetFileName).OfType<string>())
                if (sub.Stat(n) is { IsDirectory: false }) sub.Delete(n);
        d.DeleteDirectory(name);
    }
}
