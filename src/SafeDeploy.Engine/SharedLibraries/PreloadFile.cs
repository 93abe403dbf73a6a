using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Files;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.SharedLibraries;

/// <summary>What an ld.so.preload edit did.</summary>
public sealed record PreloadEditResult(string PreloadPath, string Entry, bool Changed, bool Created, byte[]? PreviousContent, string Diff);

/// <summary>
/// Edits an ld.so.preload file (the real /etc/ld.so.preload, or one under a -Root sandbox): one library per line, under
/// a flock on the file, replaced atomically (LockedFileEditor). A preloaded library runs inside every process on the
/// machine, root's included, so an entry is refused unless only root (or the deploying user) could have written the
/// library: an absolute path, a file that is not world-writable, in a directory nobody else can swap it in.
/// </summary>
public static class PreloadFile
{
    /// <summary>The file the loader reads.</summary>
    public const string SystemPath = "/etc/ld.so.preload";

    /// <summary>Ensures <paramref name="entry"/> has its own line. <paramref name="libraryOnDisk"/>: where the file is now (entry under -Root).</summary>
    /// <paramref name="beforeChange"/> runs under the file's lock just before a change is written (given the current text,
    /// null when the file does not exist): the place to journal a backup.
    public static PreloadEditResult Ensure(string preloadPath, string entry, string? libraryOnDisk = null, FileEditOptions? options = null,
        CancellationToken cancellationToken = default, Action<string?>? beforeChange = null)
    {
        CheckLibrary(entry, libraryOnDisk ?? entry);
        var r = LockedFileEditor.Edit(preloadPath, text => Notify(text, TextEdits.EnsureLine(text, entry), beforeChange), options, cancellationToken);
        return new PreloadEditResult(r.Path, entry, r.Changed, r.Created, r.PreviousContent, r.Diff);
    }

    /// <summary>Removes every line naming <paramref name="entry"/> (the file stays, even when empty, as the loader allows).</summary>
    public static PreloadEditResult Remove(string preloadPath, string entry, FileEditOptions? options = null, CancellationToken cancellationToken = default,
        Action<string?>? beforeChange = null)
    {
        CheckEntrySyntax(entry);
        if (!File.Exists(preloadPath)) return new PreloadEditResult(Path.GetFullPath(preloadPath), entry, false, false, null, "");
        var r = LockedFileEditor.Edit(preloadPath, text => Notify(text, RemoveEntry(text, entry), beforeChange), options, cancellationToken);
        return new PreloadEditResult(r.Path, entry, r.Changed, false, r.PreviousContent, r.Diff);
    }

    /// <summary>Undo of an edit: puts <paramref name="previousContent"/> back byte for byte, or removes the file when there was none.</summary>
    public static void Restore(string preloadPath, byte[]? previousContent)
    {
        if (previousContent is null) { if (File.Exists(preloadPath)) File.Delete(preloadPath); return; }
        AtomicFile.WriteAllBytes(preloadPath, previousContent);
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

    /// <summary>The LD_PRELOAD value equivalent to a preload file, with each entry placed under <paramref name="root"/> (a -Root sandbox).</summary>
    public static string? ToLdPreload(string preloadPath, string? root)
    {
        var bytes = LockedFileEditor.ReadUnlocked(preloadPath);
        if (bytes is null) return null;
        var entries = Entries(System.Text.Encoding.UTF8.GetString(bytes))
            .Select(e => string.IsNullOrEmpty(root) || !e.StartsWith('/') ? e : Path.GetFullPath(Path.Join(root, e))).ToList();
        return entries.Count == 0 ? null : string.Join(':', entries);
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
    }

    /// <summary>
    /// Refuses a library whose path anyone but root or the deploying user could control: a world-writable file, a file
    /// owned by another user, a world-writable directory (even with the sticky bit: a missing or removed file could then be
    /// planted by anyone), or an ancestor directory that others could rename (world-writable without the sticky bit, or owned by another user).
    /// </summary>
    public static void CheckLibrary(string entry, string libraryOnDisk)
    {
        CheckEntrySyntax(entry);
        libraryOnDisk = Path.GetFullPath(libraryOnDisk);
        uint me = Native.GetEffectiveUserId();
        var st = Native.Stat(libraryOnDisk, followSymlinks: false);
        if (st is null)
            throw new SafeDeployException("LibraryNotFound", ErrorKind.ObjectNotFound, libraryOnDisk,
                $"The library '{libraryOnDisk}' does not exist; a preload entry for a missing file makes the loader complain in every process.",
                "Install the library first (an install phase before the preload phase).");
        if (st.IsSymlink)
            throw Insecure(libraryOnDisk, $"'{libraryOnDisk}' is a symbolic link; whoever can change the link chooses what every process loads.", "Name the library file itself in the preload entry.");
        if (!st.IsRegularFile)
            throw new SafeDeployException("NotAFile", ErrorKind.InvalidArgument, libraryOnDisk, $"'{libraryOnDisk}' is not a regular file.", "Give the path of the library file.");
        if (st.IsWorldWritable)
            throw Insecure(libraryOnDisk, $"'{libraryOnDisk}' is world-writable (mode {Octal(st.Permissions)}): any user could put code into every process, root's included.",
                $"chmod o-w '{libraryOnDisk}' (0644 or 0755 is right for a library).");
        if (st.Uid != 0 && st.Uid != me)
            throw Insecure(libraryOnDisk, $"'{libraryOnDisk}' is owned by uid {st.Uid}, another user, who could change what every process loads.", "Install it owned by root.");

        var dir = Path.GetDirectoryName(libraryOnDisk);
        bool first = true;
        while (dir is not null)
        {
            var d = Native.Stat(dir);
            if (d is not null)
            {
                if (first && d.IsWorldWritable)
                    throw Insecure(dir, $"The library's directory '{dir}' is world-writable (mode {Octal(d.Permissions)}): any user could replace or plant the preloaded library there.",
                        "Install the library into a directory only root can write, e.g. /opt/<name>/lib or /usr/local/lib.");
                if (d.IsWorldWritable && !d.IsSticky)
                    throw Insecure(dir, $"'{dir}', above the library, is world-writable without the sticky bit: any user could rename it and swap in their own library.",
                        $"chmod o-w '{dir}' (or +t), or install the library elsewhere.");
                if (d.Uid != 0 && d.Uid != me)
                    throw Insecure(dir, $"'{dir}', above the library, is owned by uid {d.Uid}, another user, who could swap the library.", "Install the library under directories owned by root.");
            }
            first = false;
            dir = Path.GetDirectoryName(dir);
        }
    }

    static SafeDeployException Insecure(string target, string message, string action) =>
        new("PreloadLibraryInsecure", ErrorKind.SecurityError, target, message + " Refused: a preload entry for it would be a root escalation.", action);

    static string Octal(uint mode) => Convert.ToString(mode, 8).PadLeft(4, '0');
}
