using System.Globalization;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Services;

/// <summary>Whether a process maps a library file, and which copy.</summary>
internal sealed record LoadedCheckResult(int Pid, string Library, bool Loaded, bool MapsDeletedCopy, IReadOnlyList<string> MatchingLines);

/// <summary>
/// Reads /proc/&lt;pid&gt;/maps: a library counts as loaded when a mapping names the same device and inode as the file on
/// disk now (so a process still running an older copy that was since replaced shows as not loaded, with MapsDeletedCopy).
/// </summary>
internal static class LoadedLibraries
{
    public static LoadedCheckResult Check(int pid, string library)
    {
        library = Path.GetFullPath(library);
        var st = Native.Stat(library) ?? throw new SafeDeployException("LibraryNotFound", ErrorKind.ObjectNotFound, library,
            $"'{library}' does not exist, so no process can map it.", "Check the library path (under -Root in a sandbox).");
        string maps;
        try { maps = File.ReadAllText($"/proc/{pid}/maps"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SafeDeployException(e is UnauthorizedAccessException ? "AccessDenied" : "ProcessNotFound",
                e is UnauthorizedAccessException ? ErrorKind.PermissionDenied : ErrorKind.ObjectNotFound, pid,
                $"Cannot read /proc/{pid}/maps: {e.Message}", "Check that the service runs (and, for another user's process, run as root).", e);
        }
        var real = ResolveLinks(library);
        var matching = new List<string>();
        bool deleted = false, loaded = false;
        foreach (var line in maps.Split('\n'))
        {
            // address perms offset dev inode pathname
            var f = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
            if (f.Length < 6) continue;
            var name = f[5].Trim();
            bool isDeleted = name.EndsWith(" (deleted)", StringComparison.Ordinal);
            if (isDeleted) name = name[..^" (deleted)".Length];
            if (name != real && name != library) continue;
            matching.Add(line);
            if (isDeleted) { deleted = true; continue; }
            var dev = f[3].Split(':');
            bool sameInode = ulong.TryParse(f[4], NumberStyles.None, CultureInfo.InvariantCulture, out var inode) && inode == st.Inode;
            bool sameDev = dev.Length == 2 && uint.TryParse(dev[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var maj)
                && uint.TryParse(dev[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var min) && maj == st.DevMajor && min == st.DevMinor;
            if (sameInode && (sameDev || dev.Length != 2)) loaded = true;
            else deleted = true; // the same name, another file: a copy that has since been replaced
        }
        return new LoadedCheckResult(pid, library, loaded, deleted, matching);
    }

    static string ResolveLinks(string path)
    {
        try { return new FileInfo(path).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? path; }
        catch (IOException) { return path; }
    }
}
