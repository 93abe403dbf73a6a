using System.Globalization;
using SafeDeploy.Engine.Errors;

namespace SafeDeploy.Internal;

static class ModeParser
{
    /// <summary>"0700" or "700" to 0x1C0.</summary>
    public static uint Parse(string mode) =>
        mode.Length is >= 3 and <= 4 && mode.All(c => c is >= '0' and <= '7')
            ? Convert.ToUInt32(mode, 8)
            : throw ErrorCatalog.InvalidMode(mode);

    /// <summary>A user name or numeric uid to (uid, primary gid), from /etc/passwd.</summary>
    public static (uint Uid, uint Gid) ResolveOwner(string owner)
    {
        foreach (var line in File.ReadLines("/etc/passwd"))
        {
            var f = line.Split(':');
            if (f.Length < 4) continue;
            if (f[0] == owner || f[2] == owner)
                return (uint.Parse(f[2], CultureInfo.InvariantCulture), uint.Parse(f[3], CultureInfo.InvariantCulture));
        }
        if (uint.TryParse(owner, NumberStyles.None, CultureInfo.InvariantCulture, out var uid)) return (uid, uid);
        throw ErrorCatalog.UnknownUser(owner);
    }
}
