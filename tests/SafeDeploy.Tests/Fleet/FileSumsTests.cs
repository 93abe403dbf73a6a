using System.Security.Cryptography;
using SafeDeploy.Engine.Fleet;
using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.Fleet;

/// <summary>The controller's remembered sums of staged files: used while a file is unchanged, never once it changed.</summary>
public class FileSumsTests
{
    static string Sha(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path))).ToLowerInvariant();

    [Fact]
    public void ARememberedSum_IsUsedWhileTheFileIsUnchanged_AndAChangeThatKeepsSizeAndMtime_IsReadAgain()
    {
        using var dir = new TempDir("sums");
        var file = dir.Write("host/safedeploy", "one-file host v1\n");
        var cache = dir["cache/fleet-sums.tsv"];
        Directory.CreateDirectory(dir["cache"]);
        // A file changed in the last two seconds is hashed but not remembered.
        var fresh = new FileSums(cache);
        Assert.Equal(Sha(file), fresh.Of(file));
        fresh.Save();
        Assert.Equal("", File.ReadAllText(cache));

        Thread.Sleep(TimeSpan.FromSeconds(2.2));
        var settled = new FileSums(cache);
        Assert.Equal(Sha(file), settled.Of(file));
        settled.Save();
        var line = Assert.Single(File.ReadAllLines(cache));
        Assert.EndsWith("\t" + Path.GetFullPath(file), line);

        // The cache is what a later run uses: a planted sum for the unchanged file is believed (the hosts' own check is
        // what catches a wrong one) ...
        var planted = new string('a', 64);
        File.WriteAllText(cache, line.Replace(Sha(file), planted) + "\n");
        Assert.Equal(planted, new FileSums(cache).Of(file));

        // ... until the file changes, even with its size and mtime put back: its ctime moved.
        var mtime = File.GetLastWriteTimeUtc(file);
        File.WriteAllText(file, "one-file host v2\n");
        File.SetLastWriteTimeUtc(file, mtime);
        Assert.Equal(Sha(file), new FileSums(cache).Of(file));
        Assert.NotEqual(planted, Sha(file));
    }

    [Fact]
    public void WithoutACache_EveryFileIsRead_AndAMissingFileIsAnError()
    {
        using var dir = new TempDir("sums");
        var file = dir.Write("x", "x\n");
        var sums = new FileSums(null);
        Assert.Equal(Sha(file), sums.Of(file));
        sums.Save();
        Assert.Throws<FileNotFoundException>(() => sums.Of(dir["missing"]));
    }
}
