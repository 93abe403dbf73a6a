using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Files;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.SharedLibraries;

/// <summary>What an ld.so.preload edit did.</summary>
internal sealed record PreloadEditResult(string PreloadPath, string Entry, bool Changed, bool Created, byte[]? PreviousContent, string Diff);

/// <summary>
/// Edits an ld.so.preload file (the real /etc/ld.so.preload, or one inside a -Root jail): one library per line, under a
/// flock on the file, replaced atomically, every path opened through the safe-path primitive (PreloadFileEdit). A
/// preloaded library runs inside every process on the machine, root's included, so an entry is refused unless it is the
/// library's real path and only root (under -Root: root or the deploying user) could change the library or any directory
/// above it (<see cref="CheckLibrary(SafeDirectory?, string)"/>).
/// </summary>
internal static class PreloadFile
{
    /// <summary>The file the loader reads.</summary>
    public const string SystemPath = "/etc/ld.so.preload";

    /// <summary>
    /// Ensures <paramref name="entry"/> has its own line in <paramref name="file"/> (absolute, as the manifest names it),
    /// both resolved in <paramref name="root"/> (a -Root jail from SafeDirectory.OpenRoot; null: the real machine).
    /// <paramref name="beforeChange"/> runs under the file's lock just before a change is written (given the current
    /// text, null when the file does not exist): the place to journal a backup.
    /// </summary>
    public static PreloadEditResult Ensure(SafeDirectory? root, string entry, string file = SystemPath, FileEditOptions? options = null,
        CancellationToken cancellationToken = default, Action<string?>? beforeChange = null)
    {
        CheckLibrary(root, entry);
        var (r, path) = PreloadFileEdit.Edit(root, file, text => Notify(text, TextEdits.EnsureLine(text, entry), beforeChange), true, options ?? new(), cancellationToken);
        return new PreloadEditResult(path, entry, r.Changed, r.Created, r.PreviousContent, r.Diff);
    }

    /// <summary>Removes every line naming <paramref name="entry"/> (the file stays, even when empty, as the loader allows).</summary>
    public static PreloadEditResult Remove(SafeDirectory? root, string entry, string file = SystemPath, FileEditOptions? options = null,
        CancellationToken cancellationToken = default, Action<string?>? beforeChange = null)
    {
        CheckEntrySyntax(entry);
        var (r, path) = PreloadFileEdit.Edit(root, file, text => Notify(text, RemoveEntry(text, entry), beforeChange), false, options ?? new(), cancellationToken);
        return new PreloadEditResult(path, entry, r.Changed, false, r.PreviousContent, r.Diff);
    }

    /// <summary>Undo of an edit: puts <paramref name="previousContent"/> back byte for byte, or removes the file when there was none.</summary>
    public static void Restore(SafeDirectory? root, string file, byte[]? previousContent, FileEditOptions? options = null, CancellationToken cancellationToken = default) =>
        PreloadFileEdit.Restore(root, file, previousContent, options ?? new(), cancellationToken);

    /// <summary>The LD_PRELOAD value equivalent to a preload file, each entry placed under the jail's path (null: none).</summary>
    public static string? ToLdPreload(SafeDirectory? root, string file)
    {
        var bytes = PreloadFileEdit.Read(root, file);
        if (bytes is null) return null;
        var entries = Entries(System.Text.Encoding.UTF8.GetString(bytes))
            .Select(e => root is null || !e.StartsWith('/') ? e : root.FullPath(e)).ToList();
        return entries.Count == 0 ? null : string.Join(':', entries);
    }

    // Path-string forms, for callers not yet holding a SafeDirectory: the jail is derived (libraryOnDisk = root + entry).
    /// <summary>Ensures an entry; <paramref name="libraryOnDisk"/> is root + entry under a -Root sandbox (else the entry).</summary>
    public static PreloadEditResult Ensure(string preloadPath, string entry, string? libraryOnDisk = null, FileEditOptions? options = null,
        CancellationToken cancellationToken = default, Action<string?>? beforeChange = null)
    {
        using var root = JailOf(entry, libraryOnDisk);
        return Ensure(root, entry, InJail(root, preloadPath), options, cancellationToken, beforeChange);
    }

    /// <summary>Removes an entry from the file at an absolute path of the real machine (walked by SafePath's rules).</summary>
    public static PreloadEditResult Remove(string preloadPath, string entry, FileEditOptions? options = null, CancellationToken cancellationToken = default,
        Action<string?>? beforeChange = null) => Remove((SafeDirectory?)null, entry, Path.GetFullPath(preloadPath), options, cancellationToken, beforeChange);

    /// <summary>Restores the file at an absolute path of the real machine.</summary>
    public static void Restore(string preloadPath, byte[]? previousContent) => Restore((SafeDirectory?)null, Path.GetFullPath(preloadPath), previousContent);

    /// <summary>The LD_PRELOAD value of the file at <paramref name="preloadPath"/> (under <paramref name="root"/> when given).</summary>
    public static string? ToLdPreload(string preloadPath, string? root)
    {
        if (string.IsNullOrEmpty(root)) return ToLdPreload((SafeDirectory?)null, Path.GetFullPath(preloadPath));
        using var jail = SafeDirectory.OpenRoot(root);
        return ToLdPreload(jail, InJail(jail, preloadPath));
    }

    /// <summary>Checks the library as <see cref="CheckLibrary(SafeDirectory?, string)"/>, the jail derived from where it is on disk.</summary>
    public static void CheckLibrary(string entry, string libraryOnDisk)
    {
        using var root = JailOf(entry, libraryOnDisk);
        CheckLibrary(root, entry);
    }

    static SafeDirectory? JailOf(string entry, string? libraryOnDisk)
    {
        CheckEntrySyntax(entry);
        if (libraryOnDisk is null) return null;
        var onDisk = Path.GetFullPath(libraryOnDisk);
        if (onDisk == entry) return null;
        if (!onDisk.EndsWith(entry, StringComparison.Ordinal))
            throw new SafeDeployException("PreloadPathInvalid", ErrorKind.InvalidArgument, libraryOnDisk,
                $"'{libraryOnDisk}' is not the entry '{entry}' placed under a root directory.", "Give the library's path under -Root.");
        return SafeDirectory.OpenRoot(onDisk[..^entry.Length]);
    }

    static string InJail(SafeDirectory? root, string path)
    {
        var full = Path.GetFullPath(path);
        if (root is null) return full;
        var rel = Path.GetRelativePath(root.Path, full);
        if (rel.StartsWith("..", StringComparison.Ordinal) || Path.IsPathRooted(rel))
            throw new SafeDeployException("PathOutsideRoot", ErrorKind.InvalidArgument, path, $"'{path}' is not under the root '{root.Path}'.", "Give the preload file under -Root.");
        return "/" + rel;
    }

    /// <summary>The libraries a preload file names, in order (comments and blank lines skipped; entries split on whitespace and ':').</summary>
    public static IReadOnlyList<string> Entries(string? text)
    {
        var list = new List<string>();
        if (text is null) return list;
        foreach (var raw in text.Split('\n'))
        {
            var line = raw;
            int hash = line.IndexOf('#');
            if (hash >= 0) line = line[..hash];
            list.AddRange(line.Split([' ', '\t', '\r', ':'], StringSplitOptions.RemoveEmptyEntries));
        }
        return list;
    }

    static string Notify(string? before, string after, Action<string?>? beforeChange)
    {
        if (after != before) beforeChange?.Invoke(before);
        return after;
    }

    static string RemoveEntry(string? text, string entry)
    {
        if (string.IsNullOrEmpty(text)) return text ?? "";
        var lines = text.Split('\n').ToList();
        bool trailingNewline = lines[^1].Length == 0;
        if (trailingNewline) lines.RemoveAt(lines.Count - 1);
        lines.RemoveAll(l => l.Trim() == entry);
        return lines.Count == 0 ? "" : string.Join('\n', lines) + (trailingNewline ? "\n" : "");
    }

    /// <summary>
    /// Refuses a library whose entry is not its real path (a symlink or '..' anywhere), or that anyone but root (under a
    /// jail: root or the deploying user) could change: the library, or any directory from the root down to it, owned by
    /// another user or group- or world-writable (sticky or not: a missing or removed file could then be planted). The
    /// walk goes one component at a time through the primitive, top down, so each step stands on a directory already
    /// proven to be out of other users' reach.
    /// </summary>
    public static void CheckLibrary(SafeDirectory? root, string entry)
    {
        CheckEntrySyntax(entry);
        uint me = Native.GetEffectiveUserId();
        bool OwnerOk(FileStatus st) => st.Uid == 0 || (root is not null && st.Uid == me);
        var parts = entry.Split('/', StringSplitOptions.RemoveEmptyEntries);
        var cur = root is null ? SafePath.OpenDirectory("/") : root.OpenDirectory("");
        try
        {
            CheckDirectory(cur.Status, cur.Path, OwnerOk, root is null ? "/" : "the root directory");
            for (int i = 0; i < parts.Length; i++)
            {
                var full = cur.FullPath(parts[i]);
                var st = cur.Stat(parts[i]) ?? throw new SafeDeployException("LibraryNotFound", ErrorKind.ObjectNotFound, full,
                    $"The library '{full}' does not exist{(i < parts.Length - 1 ? " (its directory is missing)" : "")}; a preload entry for a missing file makes the loader complain in every process.",
                    "Install the library first (an install phase before the preload phase).");
                if (st.IsSymlink)
                    throw Insecure(full, $"'{full}' is a symbolic link{(st.Uid != 0 && st.Uid != me ? $" owned by uid {st.Uid}" : "")}: the entry '{entry}' is not the library's real path, and whoever can change the link chooses what every process loads.",
                        "Name the library by its real path (readlink -f), with no link in any directory above it.");
                if (i == parts.Length - 1)
                {
                    if (!st.IsRegularFile)
                        throw new SafeDeployException("NotAFile", ErrorKind.InvalidArgument, full, $"'{full}' is not a regular file.", "Give the path of the library file.");
                    if (st.IsGroupOrWorldWritable)
                        throw Insecure(full, $"'{full}' is {(st.IsWorldWritable ? "world" : "group")}-writable (mode {Octal(st.Permissions)}): {(st.IsWorldWritable ? "any user" : "its group")} could put code into every process, root's included.",
                            $"chmod go-w '{full}' (0644 or 0755 is right for a library).");
                    if (!OwnerOk(st))
                        throw Insecure(full, $"'{full}' is owned by uid {st.Uid}, not root, who could change what every process loads.", "Install it owned by root.");
                    return;
                }
                if (!st.IsDirectory)
                    throw new SafeDeployException("LibraryNotFound", ErrorKind.ObjectNotFound, full, $"'{full}' is not a directory, so '{entry}' does not exist.", "Check the library's path.");
                CheckDirectory(st, full, OwnerOk, null);
                var next = cur.OpenDirectory(parts[i]);
                cur.Dispose();
                cur = next;
            }
        }
        finally { cur.Dispose(); }
    }

    static void CheckDirectory(FileStatus st, string path, Func<FileStatus, bool> ownerOk, string? what)
    {
        var name = what ?? $"'{path}'";
        if (st.IsGroupOrWorldWritable)
            throw Insecure(path, $"{name}, on the library's path, is {(st.IsWorldWritable ? "world" : "group")}-writable (mode {Octal(st.Permissions)}){(st.IsSticky ? " (sticky does not help: a missing or removed entry could be planted)" : "")}: others could swap or plant the preloaded library.",
                "Install the library into directories only root can write, e.g. /opt/<name>/lib or /usr/local/lib.");
        if (!ownerOk(st))
            throw Insecure(path, $"{name}, on the library's path, is owned by uid {st.Uid}, another user, who could swap the library.", "Install the library under directories owned by root.");
    }

    static SafeDeployException Insecure(string target, string message, string action) =>
        new("PreloadLibraryInsecure", ErrorKind.SecurityError, target, message + " Refused: a preload entry for it would be a root escalation.", action);

    static string Octal(uint mode) => Convert.ToString(mode, 8).PadLeft(4, '0');

    static void CheckEntrySyntax(string entry)
    {
        if (!entry.StartsWith('/'))
            throw new SafeDeployException("PreloadPathNotAbsolute", ErrorKind.InvalidArgument, entry,
                $"'{entry}' is not an absolute path: the loader would search for it relative to each process's working directory, letting any directory's owner choose the code run in every process.",
                "Give the library's absolute path, e.g. /opt/shim/lib/libshim.so.");
        if (entry.Any(c => char.IsWhiteSpace(c) || c == ':' || c == '#' || char.IsControl(c)))
            throw new SafeDeployException("PreloadPathInvalid", ErrorKind.InvalidArgument, entry,
                $"'{entry}' contains whitespace, ':' or '#', which the loader treats as separators or comments in ld.so.preload.",
                "Install the library under a path without spaces, colons or '#'.");
        if (entry.EndsWith('/') || entry[1..].Split('/').Any(p => p is "" or "." or ".."))
            throw new SafeDeployException("PreloadPathInvalid", ErrorKind.InvalidArgument, entry,
                $"'{entry}' is not the library's real path: it has an empty, '.' or '..' component, so what the loader opens depends on more than the directories it names.",
                "Name the library by its real path, e.g. /opt/shim/lib/libshim.so.");
    }
}
