using System.Diagnostics;
using System.Security.Cryptography;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Models;
using SafeDeploy.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace SafeDeploy.Tests.Models;

/// <summary>A real small tmpfs (size= and nr_inodes= limits), mounted as root and unmounted on Dispose.</summary>
public sealed class SmallTmpfs : IDisposable
{
    public SmallTmpfs(string mountPoint, string options)
    {
        Path = mountPoint;
        Directory.CreateDirectory(mountPoint);
        var (rc, err) = Run("mount", "-t", "tmpfs", "-o", options, "tmpfs", mountPoint);
        if (rc != 0) Skipped = "cannot mount a small tmpfs here: " + err;
    }

    public string Path { get; }
    public string? Skipped { get; }

    /// <summary>Gives the filesystem room again (tmpfs can be resized in place).</summary>
    public void Grow() => Assert.Equal(0, Run("mount", "-o", "remount,size=32m,nr_inodes=10000", Path).Rc);

    static (int Rc, string Err) Run(string program, params string[] args)
    {
        using var p = Process.Start(new ProcessStartInfo(program, args) { RedirectStandardError = true })!;
        if (!p.WaitForExit(20_000)) { p.Kill(); return (-1, "timed out"); }
        return (p.ExitCode, p.StandardError.ReadToEnd());
    }

    public void Dispose()
    {
        if (Skipped is null) Run("umount", "-l", Path);
    }
}

/// <summary>Issue 17: a full disk never leaves a partial visible as a cache hit, and the error says DiskFull.</summary>
public sealed class ModelDiskFullTests(ITestOutputHelper output) : IDisposable
{
    readonly ModelServer server = new();
    readonly TempDir dir = new("modeldisk");

    public void Dispose()
    {
        server.Dispose();
        dir.Dispose();
    }

    static string Sha(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path))).ToLowerInvariant();

    [Fact]
    public void EverySpaceAndInodeLimit_GivesAVerifiedEntryOrDiskFull_NeverAPartialCacheHit_AndSucceedsOnceThereIsRoom()
    {
        var m = server.Add("full/model.bin", 1 << 20, seed: 61);
        var url = server.Url("full/model.bin");
        // Inode limits fail each creation in turn (the cache and entry directories, the lock, the partial, its record,
        // the sidecar's temporary file); size limits fail the stream, the last bytes, then the sidecar after the model.
        var limits = Enumerable.Range(2, 10).Select(n => $"size=16m,nr_inodes={n}")
            .Concat(new[] { "64k", "512k", "1020k", "1m", "1028k", "1036k", "1052k" }.Select(s => $"size={s},nr_inodes=1000"))
            .ToList();
        int ok = 0, full = 0;
        var wrong = new List<string>();
        foreach (var (limit, i) in limits.Select((l, i) => (l, i)))
        {
            using var fs = new SmallTmpfs(dir[$"mnt{i}"], limit);
            if (fs.Skipped is { } why) { output.WriteLine("skipped: " + why); return; }
            var cache = new ModelCache(Path.Combine(fs.Path, "cache"));
            var fetcher = new ModelFetcher(cache, new ModelFetchOptions { RetryBaseDelay = TimeSpan.FromMilliseconds(5), MaxRetries = 1 });
            string outcome;
            try
            {
                var got = fetcher.GetAsync(new ModelRequest { Uri = url, Sha256 = m.Sha256 }).GetAwaiter().GetResult();
                Assert.Equal(m.Sha256, Sha(got.Path));
                ok++;
                outcome = "fetched";
            }
            catch (SafeDeployException e) when (e.ErrorId == "DiskFull")
            {
                full++;
                outcome = $"DiskFull ({e.Target})";
                Assert.Contains(e.Kind, new[] { ErrorKind.WriteError, ErrorKind.ResourceUnavailable }); // AtomicFile and IoErrors differ today
                // nothing that looks like a cache hit, and no temporary or partial file left behind
                Assert.DoesNotContain(cache.List(), entry => entry.State == "Ready");
                if (Directory.Exists(cache.Directory))
                    Assert.Empty(Directory.GetFiles(cache.Directory, "*", SearchOption.AllDirectories)
                        .Where(f => f.EndsWith(".partial") || f.EndsWith(".partial.json") || f.EndsWith(".tmp") || f.EndsWith("model.bin")));
                // with room again, the next call succeeds
                fs.Grow();
                var again = fetcher.GetAsync(new ModelRequest { Uri = url, Sha256 = m.Sha256 }).GetAwaiter().GetResult();
                Assert.Equal(m.Sha256, Sha(again.Path));
            }
            catch (Exception e)
            {
                outcome = $"WRONG: {e.GetType().Name} {(e as SafeDeployException)?.ErrorId}: {e.Message}";
                wrong.Add($"{limit}: {outcome}");
            }
            output.WriteLine($"{limit}: {outcome}");
        }
        output.WriteLine($"{limits.Count} limits: {ok} fetched, {full} DiskFull, {wrong.Count} wrong");
        Assert.Empty(wrong);
        Assert.True(full >= limits.Count / 2, "the limits did not fill the disk: the test proves nothing");
    }
}
