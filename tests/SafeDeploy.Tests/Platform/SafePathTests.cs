using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Platform;
using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.PlatformPaths;

/// <summary>
/// The safe-path primitive against a real unprivileged user (uid 65534 through setpriv) who plants links, FIFOs and
/// files in directories they control. Each test names the outcome root must never suffer.
/// </summary>
public sealed class SafePathTests : IDisposable
{
    readonly TempDir tmp = new("safepath");

    public void Dispose()
    {
        Native.HasOpenat2 = true;
        tmp.Dispose();
    }

    static void AsNobody(params string[] command) =>
        Programs.Run("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "--", .. command]);

    /// <summary>A directory owned by the unprivileged user (not sticky): everything in it is theirs to swap.</summary>
    string AttackerDir(string name)
    {
        var dir = tmp[name];
        Directory.CreateDirectory(dir);
        Programs.Run("chown", "65534:65534", dir);
        return dir;
    }

    string Victim(string content = "root's secret\n")
    {
        var victim = tmp.Write("victim/shadow", content);
        return victim;
    }

    static SafeDeployException Refusal(Action act)
    {
        var e = Assert.ThrowsAny<SafeDeployException>(act);
        return e;
    }

    [Fact]
    public void AnAttackersSymlinkedDirectory_IsNeverFollowed()
    {
        var victim = Victim();
        var attacker = AttackerDir("home-nobody");
        AsNobody("ln", "-s", Path.GetDirectoryName(victim)!, Path.Combine(attacker, "cache"));

        var e = Refusal(() => SafePath.OpenFile(Path.Combine(attacker, "cache", "shadow"), SafeOpen.ReadWrite | SafeOpen.Truncate, 0x180, out _));

        Assert.Equal("UntrustedPath", e.ErrorId);
        Assert.Equal(ErrorKind.SecurityError, e.Kind);
        Assert.Equal("root's secret\n", File.ReadAllText(victim));
    }

    [Fact]
    public void AnAttackersSymlinkInAStickyDirectory_IsRefused_ButRootsOwnIsFollowed()
    {
        var victim = Victim();
        var sticky = tmp["sticky"];
        Directory.CreateDirectory(sticky);
        Programs.Run("chmod", "1777", sticky);
        AsNobody("ln", "-s", victim, Path.Combine(sticky, "theirs.lock"));
        File.CreateSymbolicLink(Path.Combine(sticky, "mine.lock"), victim);

        var e = Refusal(() => SafePath.OpenFile(Path.Combine(sticky, "theirs.lock"), SafeOpen.ReadWrite | SafeOpen.Create, 0x180, out _));
        Assert.Equal("SymlinkRefused", e.ErrorId);
        using (var fd = SafePath.OpenFile(Path.Combine(sticky, "mine.lock"), SafeOpen.Read, 0, out var created))
            Assert.False(created);
        Assert.Equal("root's secret\n", File.ReadAllText(victim));
    }

    [Fact]
    public void AFifoPlantedAsTheTarget_IsRefusedAtOnce_NotOpenedForever()
    {
        var attacker = AttackerDir("fifo");
        AsNobody("mkfifo", Path.Combine(attacker, "setup.log"));
        Programs.Run("chown", "0:0", attacker); // the directory is root's; only the FIFO is theirs

        var e = Refusal(() => SafePath.OpenFile(Path.Combine(attacker, "setup.log"), SafeOpen.Write | SafeOpen.Append | SafeOpen.Create, 0x180, out _));

        Assert.Equal("NotARegularFile", e.ErrorId);
    }

    [Fact]
    public void AFileOfAnotherUserInTheirOwnDirectory_IsRefused()
    {
        var attacker = AttackerDir("npm");
        AsNobody("sh", "-c", $"echo registry=evil > '{attacker}/.npmrc'");

        var e = Refusal(() => SafePath.OpenFile(Path.Combine(attacker, ".npmrc"), SafeOpen.ReadWrite, 0, out _));

        Assert.Equal("UntrustedFile", e.ErrorId);
        Assert.Equal(Path.Combine(attacker, ".npmrc"), e.Target);
    }

    [Fact]
    public void CreatingAFile_GivesItExactlyTheAskedMode_WhateverTheUmask()
    {
        using var fd = SafePath.OpenFile(tmp["new.lock"], SafeOpen.ReadWrite | SafeOpen.Create, 0x180, out var created);
        Assert.True(created);
        Assert.Equal(0x180u, Native.Fstat(fd).Permissions);
        using var again = SafePath.OpenFile(tmp["new.lock"], SafeOpen.ReadWrite | SafeOpen.Create, 0x180, out var createdAgain);
        Assert.False(createdAgain);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void InAJail_AnAbsoluteSymlinkOrDotDot_CannotReachOutside(bool openat2)
    {
        Native.HasOpenat2 = openat2;
        var victim = Victim();
        var root = tmp["root"];
        Directory.CreateDirectory(Path.Combine(root, "opt"));
        File.CreateSymbolicLink(Path.Combine(root, "etc"), Path.GetDirectoryName(victim)!);
        using var jail = SafeDirectory.OpenRoot(root);

        Assert.ThrowsAny<SafeDeployException>(() => jail.OpenFile("etc/shadow", SafeOpen.ReadWrite | SafeOpen.Truncate, 0, out _));
        try { using var fd = jail.OpenFile("opt/../../../victim/shadow", SafeOpen.ReadWrite | SafeOpen.Truncate, 0, out _); }
        catch (SafeDeployException) { }

        Assert.Equal("root's secret\n", File.ReadAllText(victim));
        Assert.False(File.Exists(Path.Combine(root, "victim", "shadow")));
    }

    [Fact]
    public void InAJail_ASymlinkIsResolvedInsideTheRoot()
    {
        var root = tmp["root"];
        Directory.CreateDirectory(Path.Combine(root, "real", "lib"));
        File.CreateSymbolicLink(Path.Combine(root, "lib64"), "/real/lib"); // absolute: means <root>/real/lib in the jail
        using var jail = SafeDirectory.OpenRoot(root);

        using (var fd = jail.OpenFile("lib64/libshim.so", SafeOpen.Write | SafeOpen.CreateNew, 0x1A4, out var created)) Assert.True(created);

        Assert.True(File.Exists(Path.Combine(root, "real", "lib", "libshim.so")));
        Assert.Equal("/real/lib", jail.ReadLink("lib64"));
        Assert.True(jail.Stat("lib64")!.IsSymlink);
    }

    [Fact]
    public void InAJail_TheLastComponentIsNeverFollowed()
    {
        var victim = Victim();
        var root = tmp["root"];
        Directory.CreateDirectory(Path.Combine(root, "etc"));
        File.CreateSymbolicLink(Path.Combine(root, "etc", "ld.so.preload"), victim);
        using var jail = SafeDirectory.OpenRoot(root);

        var e = Refusal(() => jail.OpenFile("etc/ld.so.preload", SafeOpen.ReadWrite | SafeOpen.Truncate, 0, out _));

        Assert.Equal("SymlinkRefused", e.ErrorId);
        Assert.Equal("root's secret\n", File.ReadAllText(victim));
    }

    [Theory]
    [InlineData("0777", "0:0")]
    [InlineData("0755", "65534:65534")]
    public void ARootOthersCanWriteOrOwn_IsRefused(string mode, string owner)
    {
        var root = tmp["root"];
        Directory.CreateDirectory(root);
        Programs.Run("chmod", mode, root);
        Programs.Run("chown", owner, root);

        var e = Refusal(() => SafeDirectory.OpenRoot(root).Dispose());

        Assert.Equal("UntrustedRoot", e.ErrorId);
        Assert.Equal(root, e.Target);
    }

    [Fact]
    public void DirectoriesCreatedInAJail_AreReportedAndRenamesStayInside()
    {
        var root = tmp["root"];
        Directory.CreateDirectory(root);
        using var jail = SafeDirectory.OpenRoot(root);
        var created = new List<string>();

        using (var dir = jail.OpenDirectory("opt/shim/lib", create: true, mode: 0x1C0, created: created))
        {
            using (var fd = dir.OpenFile(".x.tmp", SafeOpen.Write | SafeOpen.CreateNew, 0x180, out _)) { }
            dir.Rename(".x.tmp", "libshim.so");
            dir.Fsync();
        }

        Assert.Equal([Path.Combine(root, "opt"), Path.Combine(root, "opt/shim"), Path.Combine(root, "opt/shim/lib")], created);
        Assert.Equal(0x1C0u, Native.Stat(Path.Combine(root, "opt/shim"))!.Permissions);
        Assert.True(File.Exists(Path.Combine(root, "opt/shim/lib/libshim.so")));
        Assert.True(jail.Delete("opt/shim/lib/libshim.so"));
        Assert.False(jail.Delete("opt/shim/lib/libshim.so"));
        Assert.True(jail.DeleteDirectory("opt/shim/lib"));
    }

    [Fact]
    public void ASubdirectoryOfAJail_StaysUsable_AfterTheDirectoryItCameFromIsDisposed()
    {
        var root = tmp["root"];
        Directory.CreateDirectory(Path.Combine(root, "opt", "shim"));
        File.CreateSymbolicLink(Path.Combine(root, "opt", "lib"), "/opt/shim"); // absolute: stays in the jail
        SafeDirectory opt;
        using (var jail = SafeDirectory.OpenRoot(root))
        using (var copy = jail.OpenDirectory(""))
            opt = copy.OpenDirectory("opt");
        using (opt)
        {
            Assert.True(opt.Stat("lib")!.IsSymlink);
            using var fd = opt.OpenFile("lib/libshim.so", SafeOpen.Write | SafeOpen.CreateNew, 0x1A4, out var created);
            Assert.True(created);
        }
        Assert.True(File.Exists(Path.Combine(root, "opt", "shim", "libshim.so")));
    }

    [Fact]
    public void ARaceSwappingADirectoryForALink_NeverWritesOutside()
    {
        var victimDir = Path.GetDirectoryName(Victim())!;
        var attacker = AttackerDir("race");
        // The attacker flips <attacker>/d between a real directory and a link to the victim's directory, as fast as it can.
        var flipper = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("setpriv",
            ["--reuid=65534", "--regid=65534", "--clear-groups", "--", "sh", "-c",
             $"cd '{attacker}' && end=$(($(date +%s)+20)); while [ $(date +%s) -lt $end ]; do mkdir d 2>/dev/null; rmdir d 2>/dev/null; ln -sfn '{victimDir}' d; rm -f d; done"]))!;
        try
        {
            var deadline = DateTime.UtcNow.AddSeconds(3);
            int refused = 0;
            while (DateTime.UtcNow < deadline)
            {
                try { using var fd = SafePath.OpenFile(Path.Combine(attacker, "d", "shadow"), SafeOpen.Write | SafeOpen.Create | SafeOpen.Truncate, 0x180, out _); }
                catch (SafeDeployException) { refused++; }
            }
            Assert.True(refused > 0);
        }
        finally { flipper.Kill(); flipper.WaitForExit(5000); }
        Assert.Equal("root's secret\n", File.ReadAllText(Path.Combine(victimDir, "shadow")));
    }
}
