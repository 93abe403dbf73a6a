using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Platform;
using SafeDeploy.Engine.SharedLibraries;
using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.NativeShim;

public class PreloadFileTests
{
    [Fact]
    public void Ensure_CreatesTheFile_KeepsOtherLines_IsIdempotent_AndUndoRemovesTheFileItCreated()
    {
        using var box = new ShimSandbox();
        box.InstallLibrary(ShimFixtures.Good, preload: false);
        Directory.CreateDirectory(box["/etc"]);
        var first = PreloadFile.Ensure(box.PreloadFile, ShimSandbox.LibraryEntry, box.Library);
        Assert.True(first.Changed);
        Assert.True(first.Created);
        Assert.Null(first.PreviousContent);
        Assert.Equal("/opt/shim/libshim.so\n", File.ReadAllText(box.PreloadFile));

        var again = PreloadFile.Ensure(box.PreloadFile, ShimSandbox.LibraryEntry, box.Library);
        Assert.False(again.Changed);

        PreloadFile.Restore(box.PreloadFile, first.PreviousContent);
        Assert.False(File.Exists(box.PreloadFile));
    }

    [Fact]
    public void Ensure_AppendsToAnExistingFile_AndUndoRestoresItByteForByte()
    {
        using var box = new ShimSandbox();
        box.InstallLibrary(ShimFixtures.Good, preload: false);
        Directory.CreateDirectory(Path.GetDirectoryName(box.PreloadFile)!);
        var original = "# site preloads\n/usr/lib/libother.so"u8.ToArray(); // no final newline: must survive byte for byte
        File.WriteAllBytes(box.PreloadFile, original);
        var r = PreloadFile.Ensure(box.PreloadFile, ShimSandbox.LibraryEntry, box.Library);
        Assert.True(r.Changed);
        Assert.Equal("# site preloads\n/usr/lib/libother.so\n/opt/shim/libshim.so\n", File.ReadAllText(box.PreloadFile));
        Assert.Equal(["/usr/lib/libother.so", "/opt/shim/libshim.so"], PreloadFile.Entries(File.ReadAllText(box.PreloadFile)));
        Assert.Equal(original, r.PreviousContent);

        var removed = PreloadFile.Remove(box.PreloadFile, ShimSandbox.LibraryEntry);
        Assert.True(removed.Changed);
        Assert.Equal("# site preloads\n/usr/lib/libother.so\n", File.ReadAllText(box.PreloadFile));

        PreloadFile.Restore(box.PreloadFile, r.PreviousContent);
        Assert.Equal(original, File.ReadAllBytes(box.PreloadFile));
    }

    [Fact]
    public void ToLdPreload_PlacesEntriesUnderTheRoot()
    {
        using var box = new ShimSandbox();
        box.InstallLibrary(ShimFixtures.Good);
        File.AppendAllText(box.PreloadFile, "# comment\n\n/opt/other.so /opt/third.so\n");
        Assert.Equal($"{box.Root}/opt/shim/libshim.so:{box.Root}/opt/other.so:{box.Root}/opt/third.so", PreloadFile.ToLdPreload(box.PreloadFile, box.Root));
        Assert.Null(PreloadFile.ToLdPreload(box["/etc/none"], box.Root));
    }

    [Fact]
    public void RelativePath_IsRefused_AndNothingIsWritten()
    {
        using var box = new ShimSandbox();
        box.InstallLibrary(ShimFixtures.Good, preload: false);
        var e = Assert.Throws<SafeDeployException>(() => PreloadFile.Ensure(box.PreloadFile, "opt/shim/libshim.so", box.Library));
        Assert.Equal("PreloadPathNotAbsolute", e.ErrorId);
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Equal("opt/shim/libshim.so", e.Target);
        Assert.False(File.Exists(box.PreloadFile));
    }

    [Fact]
    public void WorldWritableLibrary_OrDirectory_IsRefusedAsARootEscalation_AndNothingIsWritten()
    {
        using var box = new ShimSandbox();
        box.InstallLibrary(ShimFixtures.Good, preload: false);
        Directory.CreateDirectory(Path.GetDirectoryName(box.PreloadFile)!);
        File.WriteAllText(box.PreloadFile, "/usr/lib/libother.so\n");
        var before = File.ReadAllBytes(box.PreloadFile);

        File.SetUnixFileMode(box.Library, (UnixFileMode)0x1B6); // 0666
        var e = Assert.Throws<SafeDeployException>(() => PreloadFile.Ensure(box.PreloadFile, ShimSandbox.LibraryEntry, box.Library));
        Assert.Equal("PreloadLibraryInsecure", e.ErrorId);
        Assert.Equal(ErrorKind.SecurityError, e.Kind);
        Assert.Equal(box.Library, e.Target);
        Assert.Contains("world-writable", e.Message);
        File.SetUnixFileMode(box.Library, (UnixFileMode)0x1A4);

        var libDir = Path.GetDirectoryName(box.Library)!;
        foreach (var mode in new[] { 0x1FF /* 0777 */, 0x3FF /* 1777: sticky does not help the library's own directory */ })
        {
            File.SetUnixFileMode(libDir, (UnixFileMode)mode);
            var d = Assert.Throws<SafeDeployException>(() => PreloadFile.Ensure(box.PreloadFile, ShimSandbox.LibraryEntry, box.Library));
            Assert.Equal("PreloadLibraryInsecure", d.ErrorId);
            Assert.Equal(libDir, d.Target);
        }
        File.SetUnixFileMode(libDir, (UnixFileMode)0x1ED);

        var parent = Path.GetDirectoryName(libDir)!; // /opt: world-writable without sticky lets anyone rename shim/
        File.SetUnixFileMode(parent, (UnixFileMode)0x1FF);
        var p = Assert.Throws<SafeDeployException>(() => PreloadFile.Ensure(box.PreloadFile, ShimSandbox.LibraryEntry, box.Library));
        Assert.Equal(parent, p.Target);
        File.SetUnixFileMode(parent, (UnixFileMode)0x1ED);

        Assert.Equal(before, File.ReadAllBytes(box.PreloadFile));
    }

    [Fact]
    public void MissingLibrary_AndSymlink_AreRefused()
    {
        using var box = new ShimSandbox();
        var missing = Assert.Throws<SafeDeployException>(() => PreloadFile.Ensure(box.PreloadFile, ShimSandbox.LibraryEntry, box.Library));
        Assert.Equal("LibraryNotFound", missing.ErrorId);
        Assert.Equal(ErrorKind.ObjectNotFound, missing.Kind);

        box.InstallLibrary(ShimFixtures.Good, preload: false);
        var link = box["/opt/shim/libshim-link.so"];
        File.CreateSymbolicLink(link, box.Library);
        var e = Assert.Throws<SafeDeployException>(() => PreloadFile.Ensure(box.PreloadFile, "/opt/shim/libshim-link.so", link));
        Assert.Equal("PreloadLibraryInsecure", e.ErrorId);
        Assert.False(File.Exists(box.PreloadFile));
    }

    [Fact]
    public void ConcurrentEditors_EachLineSurvives()
    {
        using var box = new ShimSandbox();
        Directory.CreateDirectory(box["/opt/shim"]);
        Directory.CreateDirectory(box["/etc"]);
        var entries = Enumerable.Range(0, 8).Select(i => $"/opt/shim/lib{i}.so").ToList();
        foreach (var e in entries) File.Copy(ShimFixtures.Good, box[e]);
        Parallel.ForEach(entries, new ParallelOptions { MaxDegreeOfParallelism = 8 }, e => PreloadFile.Ensure(box.PreloadFile, e, box[e]));
        Assert.Equal(entries.OrderBy(x => x), PreloadFile.Entries(File.ReadAllText(box.PreloadFile)).OrderBy(x => x));
    }

    /// <summary>Runs a command as uid/gid 65534 (nobody), a real unprivileged local user.</summary>
    static void AsNobody(params string[] command) =>
        Programs.Run("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "--", .. command]);

    [Fact]
    public void ALibraryReachedThroughAnotherUsersSymlink_IsRefused_AndTheyCannotRepointItLater()
    {
        using var box = new ShimSandbox();
        box.InstallLibrary(ShimFixtures.Good, preload: false);
        Directory.CreateDirectory(box["/etc"]);
        // /tmp in the root as on every machine: world-writable and sticky. The other user links a directory of theirs to
        // the real, root-owned library directory; the entry names the library through it.
        Directory.CreateDirectory(box["/tmp"]);
        File.SetUnixFileMode(box["/tmp"], (UnixFileMode)0x3FF); // 1777
        AsNobody("ln", "-s", System.IO.Path.GetDirectoryName(box.Library)!, box["/tmp/vendor"]);
        Assert.Equal((uint)65534, Native.Stat(box["/tmp/vendor"], followSymlinks: false)!.Uid);

        using var root = SafeDirectory.OpenRoot(box.Root);
        var e = Assert.Throws<SafeDeployException>(() => PreloadFile.Ensure(root, "/tmp/vendor/libshim.so"));
        Assert.Equal("PreloadLibraryInsecure", e.ErrorId);
        Assert.Equal(ErrorKind.SecurityError, e.Kind);
        Assert.Equal(box["/tmp"], e.Target); // the world-writable directory holding the link is refused first
        // The same through the path-string form the deployment uses today.
        var old = Assert.Throws<SafeDeployException>(() => PreloadFile.Ensure(box.PreloadFile, "/tmp/vendor/libshim.so", box["/tmp/vendor/libshim.so"]));
        Assert.Equal("PreloadLibraryInsecure", old.ErrorId);
        Assert.False(File.Exists(box.PreloadFile));

        // A link in a directory only root can write is still not the library's real path.
        File.CreateSymbolicLink(box["/opt/current"], box["/opt/shim"]);
        var link = Assert.Throws<SafeDeployException>(() => PreloadFile.Ensure(root, "/opt/current/libshim.so"));
        Assert.Equal("PreloadLibraryInsecure", link.ErrorId);
        Assert.Equal(box["/opt/current"], link.Target);
        Assert.Contains("real path", link.Message);
        Assert.False(File.Exists(box.PreloadFile));
    }

    [Fact]
    public void DotDot_GroupWritableAncestors_AndAnotherUsersDirectory_AreRefused()
    {
        using var box = new ShimSandbox();
        box.InstallLibrary(ShimFixtures.Good, preload: false);
        using var root = SafeDirectory.OpenRoot(box.Root);
        var dots = Assert.Throws<SafeDeployException>(() => PreloadFile.Ensure(root, "/opt/shim/../shim/libshim.so"));
        Assert.Equal("PreloadPathInvalid", dots.ErrorId);
        Assert.Equal(ErrorKind.InvalidArgument, dots.Kind);

        File.SetUnixFileMode(box["/opt"], (UnixFileMode)0x1FD); // 0775: its group could rename shim/ and plant another
        var g = Assert.Throws<SafeDeployException>(() => PreloadFile.CheckLibrary(root, ShimSandbox.LibraryEntry));
        Assert.Equal(box["/opt"], g.Target);
        Assert.Contains("group-writable", g.Message);
        File.SetUnixFileMode(box["/opt"], (UnixFileMode)0x1ED);

        Programs.Run("chown", ["65534:65534", box["/opt/shim"]]);
        var owned = Assert.Throws<SafeDeployException>(() => PreloadFile.CheckLibrary(root, ShimSandbox.LibraryEntry));
        Assert.Equal(box["/opt/shim"], owned.Target);
        Assert.Contains("uid 65534", owned.Message);
        Programs.Run("chown", ["0:0", box["/opt/shim"]]);
        PreloadFile.CheckLibrary(root, ShimSandbox.LibraryEntry); // all root's again: accepted
    }

    [Fact]
    public void APreloadFileLinkPlantedInTheRoot_NeverWritesOutsideIt()
    {
        using var box = new ShimSandbox();
        using var outside = new TempDir("victim");
        box.InstallLibrary(ShimFixtures.Good, preload: false);
        var victim = outside.Write("passwd", "root:x:0:0::/root:/bin/sh\n");
        var before = File.ReadAllBytes(victim);
        // The root's /etc is the other user's (a rehearsal tree they were given): they plant ld.so.preload as a link out.
        Directory.CreateDirectory(box["/etc"]);
        Programs.Run("chown", ["65534:65534", box["/etc"]]);
        AsNobody("ln", "-s", victim, box.PreloadFile);
        AsNobody("ln", "-s", "../../../../../../../../" + victim.TrimStart('/'), box["/etc/ld.so.preload.rel"]);

        using var root = SafeDirectory.OpenRoot(box.Root);
        foreach (var file in new[] { "/etc/ld.so.preload", "/etc/ld.so.preload.rel" })
        {
            var e = Assert.Throws<SafeDeployException>(() => PreloadFile.Ensure(root, ShimSandbox.LibraryEntry, file));
            Assert.Equal("SymlinkRefused", e.ErrorId);
            Assert.Throws<SafeDeployException>(() => PreloadFile.Restore(root, file, "/opt/shim/libshim.so\n"u8.ToArray()));
        }
        var viaPath = Assert.Throws<SafeDeployException>(() => PreloadFile.Ensure(box.PreloadFile, ShimSandbox.LibraryEntry, box.Library));
        Assert.Equal("SymlinkRefused", viaPath.ErrorId);
        Assert.Equal(before, File.ReadAllBytes(victim));
        Assert.True(Native.Stat(box.PreloadFile, followSymlinks: false)!.IsSymlink);
    }
}
