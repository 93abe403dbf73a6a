using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Models;
using SafeDeploy.Engine.StateDirectories;
using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.Security;

/// <summary>
/// The one walk (SafePath, strict for SafeDeploy's own directories) against an attacker who swaps a component while it
/// runs: what the walk checks is what it opened (one descriptor per component, looked at once), never a second look at
/// the name.
/// </summary>
public sealed class WalkRaceTests : IDisposable
{
    readonly Attacker attacker = new();
    readonly TempDir victim = new("walkrace");

    public void Dispose() { attacker.Dispose(); victim.Dispose(); }

    [Fact]
    public void EnsuringAStateDirectory_WhileTheAttackerExchangesAComponentForALink_IsAlwaysASecurityRefusal_AndNothingLandsInTheTarget()
    {
        // A sticky /tmp-like directory: the attacker's own entry there is theirs to exchange, atomically, between their
        // directory and a link to a directory only root may write.
        var sticky = attacker.StickyDirectory("tmp");
        var target = Directory.CreateDirectory(victim["root-only"]).FullName;
        var swapped = Path.Combine(sticky, "theirs");
        attacker.StartExchanging(swapped, target);

        var outcomes = new Dictionary<string, int>();
        var deadline = DateTime.UtcNow.AddSeconds(20);
        for (int i = 0; i < 400 && DateTime.UtcNow < deadline; i++)
        {
            var e = Assert.ThrowsAny<SafeDeployException>(() => SecureDirectory.Ensure(Path.Combine(swapped, "state"), 0x1C0));
            var key = $"{e.ErrorId}/{e.Kind}";
            outcomes[key] = outcomes.GetValueOrDefault(key) + 1;
        }
        var seen = string.Join(", ", outcomes.Select(o => $"{o.Key} x{o.Value}"));
        // Whichever the walk met (their directory or their link), it says so as a SecurityError naming that component;
        // a second look at the name could instead see the other one and report, say, "not a directory" (InvalidArgument).
        Assert.True(outcomes.Keys.All(k => k is "UntrustedDirectory/SecurityError" or "UntrustedSymlink/SecurityError"), seen);
        Assert.True(outcomes.Count == 2, "the race never showed both shapes (the attacker's loop did not run?): " + seen);
        Assert.Empty(Directory.GetFileSystemEntries(target));
    }

    [Fact]
    public void PreparingACacheEntry_WhileAGroupMemberSwapsTheCacheDirectoryForALink_NeverWritesOutsideTheCache()
    {
        // The cache is root's, in a directory its team's group may write (a group member is still another user).
        var team = attacker.GroupWritableDirectory("team");
        var cacheDir = Directory.CreateDirectory(Path.Combine(team, "models")).FullName;
        const string key = "0123456789abcdef0123456789abcdef";
        // Elsewhere, a directory of root's that happens to bear an entry's name: the link leads there.
        var elsewhere = Directory.CreateDirectory(Path.Combine(victim["root-only"], key)).FullName;
        File.SetUnixFileMode(elsewhere, (UnixFileMode)0x1C0);
        attacker.StartExchanging(cacheDir, victim["root-only"]);

        var cache = new ModelCache(cacheDir);
        int prepared = 0, refused = 0;
        var deadline = DateTime.UtcNow.AddSeconds(20);
        for (int i = 0; i < 400 && DateTime.UtcNow < deadline; i++)
        {
            try { cache.EnsureEntryDirectory(Path.Combine(cacheDir, key)); prepared++; }
            catch (SafeDeployException e) { Assert.Equal(ErrorKind.SecurityError, e.Kind); refused++; }
        }
        Assert.True(prepared > 0 && refused > 0, $"the race never showed both shapes: {prepared} prepared, {refused} refused");
        // Whatever was checked is what was written into: the lock file is in the cache, nothing in root's other directory.
        Assert.Empty(Directory.GetFileSystemEntries(elsewhere));
        Assert.Equal((UnixFileMode)0x1C0, File.GetUnixFileMode(elsewhere));
    }
}
