using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.StateDirectories;

/// <summary>What <see cref="SecureDirectory.Ensure"/> did.</summary>
internal sealed record EnsureOutcome(bool Created, IReadOnlyList<string> CreatedPaths, bool Repaired, string? Warning);

/// <summary>
/// Creates a directory path for SafeDeploy's own state through the one walk (<see cref="SafePath"/>, strict): never
/// following a symlink it does not trust, refusing a directory another user owns or anyone may write, and giving every
/// component it creates the asked mode and owner (not only the last one, as install -d does).
/// </summary>
internal static class SecureDirectory
{
    /// <summary>Ensures <paramref name="path"/> exists. <paramref name="checkMode"/>: warn about (or with repair, tighten) a looser final directory.</summary>
    public static EnsureOutcome Ensure(string path, uint mode, uint? ownerUid = null, uint? ownerGid = null,
        bool checkMode = false, bool repair = false)
    {
        path = Path.GetFullPath(path);
        var created = new List<string>();
        bool repaired = false;
        string? warning = null;
        using (var dir = SafePath.OpenDirectory(path, new WalkOptions
               { Create = true, Mode = mode, Created = created, OwnerUid = ownerUid, OwnerGid = ownerGid, Strict = true }))
        {
            var st = dir.Status;
            if (checkMode && !created.Contains(path) && (st.Permissions & ~mode & 0x1FF) != 0)
            {
                if (repair)
                {
                    Native.Fchmod(dir.Handle, st.Permissions & mode, path);
                    repaired = true;
                }
                else
                {
                    warning = $"'{path}' has mode {Convert.ToString(st.Permissions, 8)}, looser than {Convert.ToString(mode, 8)}; run with -Repair to tighten it.";
                }
            }
        }
        return new EnsureOutcome(created.Count > 0, created, repaired, warning);
    }
}
