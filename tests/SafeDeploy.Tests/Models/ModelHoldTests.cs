using System.Diagnostics;
using SafeDeploy.Engine.Locking;
using SafeDeploy.Engine.Models;
using SafeDeploy.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace SafeDeploy.Tests.Models;

/// <summary>Holding a cached model in use, exact -WhatIf eviction, and -WhatIf creating nothing (issue 15).</summary>
public sealed class ModelHoldTests(ITestOutputHelper output) : IDisposable
{
    readonly ModelServer server = new();
    readonly TempDir dir = new("modelhold");
    readonly PsSession ps = new();

    public void Dispose()
    {
        ps.Dispose();
        server.Dispose();
        dir.Dispose();
    }

    string Cache => dir["cache"];

    ModelFile Fetch(string name)
    {
        var f = new ModelFetcher(new ModelCache(Cache));
        var r = f.GetAsync(new ModelRequest { Uri = server.Url(name) }).GetAwaiter().GetResult();
        Thread.Sleep(30); // distinct last-use times
        return r;
    }

    /// <summary>flock(1) holding a shared lock, as a model server started with `flock -s LOCK server` does.</summary>
    sealed class SharedFlock : IDisposable
    {
        readonly Process process;

        public SharedFlock(string lockPath)
        {
            process = Process.Start(new ProcessStartInfo("flock", ["-s", "-o", lockPath, "sleep", "120"]))!;
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (!LockInspector.Inspect(lockPath).IsHeld)
            {
                if (DateTime.UtcNow > deadline || process.HasExited) throw new InvalidOperationException("flock -s did not take the lock");
                Thread.Sleep(5);
            }
        }

        public void Dispose()
        {
            try { if (!process.HasExited) process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            process.WaitForExit(10_000);
            process.Dispose();
        }
    }

    [Fact]
    public void EvictionWhatIf_NamesExactlyTheEntriesTheRealRunRemoves()
    {
        var names = new[] { "w1.bin", "w2.bin", "w3.bin", "w4.bin" };
        foreach (var n in names) server.Add(n, 1 << 20, seed: n[1]);
        var files = names.Select(Fetch).ToList();
        var cache = new ModelCache(Cache);
        using var server1 = new SharedFlock(files[0].LockPath!); // the oldest is in use by another process
        var asked = new List<string>();
        var wouldGo = cache.Evict(2L << 20, null, e => { asked.Add(Path.GetFileName(e.Path)); return EvictAnswer.WhatIf; });
        Assert.Equal(4, cache.List().Count); // -WhatIf removed nothing
        var gone = cache.Evict(2L << 20);
        output.WriteLine($"asked: {string.Join(",", asked)}; removed: {string.Join(",", gone.Select(e => Path.GetFileName(e.Path)))}");
        Assert.Equal(new[] { "w2.bin", "w3.bin" }, asked);
        Assert.Equal(asked, wouldGo.Select(e => Path.GetFileName(e.Path)));
        Assert.Equal(asked, gone.Select(e => Path.GetFileName(e.Path)));
        Assert.True(File.Exists(files[0].Path));
    }

    [Fact]
    public void ModelHeldBySeparateProcessWithFlockShared_IsNeverEvicted_UntilItLetsGo()
    {
        server.Add("served.bin", 1 << 20, seed: 41);
        server.Add("other.bin", 1 << 20, seed: 42);
        server.Add("third.bin", 1 << 20, seed: 43);
        var served = Fetch("served.bin");
        Fetch("other.bin");
        using (new SharedFlock(served.LockPath!))
        {
            var evict = ps.Run("Remove-ModelCache -MaxSizeGB 0 -CacheDirectory $cache -PassThru", ("cache", Cache));
            Assert.Equal(new[] { server.Url("other.bin") }, evict.Output.Select(o => (string)o.Properties["Uri"].Value));
            // eviction inside Get-ModelLocked -MaxSizeGB spares it too
            var get = ps.Run("Get-ModelLocked $u -CacheDirectory $cache -MaxSizeGB 0", ("u", server.Url("third.bin")), ("cache", Cache));
            Assert.Empty(get.AllErrors);
            Assert.True(File.Exists(served.Path));
            Assert.Contains(ps.Run("Get-ModelCache -CacheDirectory $cache", ("cache", Cache)).Output,
                o => (string)o.Properties["Uri"].Value == server.Url("served.bin") && (bool)o.Properties["InUse"].Value);
        }
        var after = ps.Run("Remove-ModelCache -MaxSizeGB 0 -CacheDirectory $cache -PassThru", ("cache", Cache));
        Assert.Contains(after.Output, o => (string)o.Properties["Uri"].Value == server.Url("served.bin"));
        Assert.False(File.Exists(served.Path));
    }

    [Fact]
    public void GetModelLockedHold_KeepsTheModelInUseForTheBlock_SeenByOtherProcesses()
    {
        server.Add("h.bin", 1 << 20, seed: 44);
        var r = ps.Run("""
            Get-ModelLocked $u -CacheDirectory $cache -Hold {
                param($m)
                $p = [Diagnostics.Process]::Start('flock', @('-n', '-E', '75', $m.LockPath, 'true'))
                $p.WaitForExit(10000) | Out-Null
                "flock:$($p.ExitCode)"
                "evicted:$(@(Remove-ModelCache -MaxSizeGB 0 -CacheDirectory $cache -PassThru).Count)"
                "exists:$([IO.File]::Exists($m.Path))"
            }
            """, ("u", server.Url("h.bin")), ("cache", Cache));
        Assert.True(!r.AllErrors.Any(), r.Describe());
        var lines = r.Output.Select(o => o.ToString()).ToList();
        output.WriteLine(string.Join("\n", lines));
        Assert.Equal(new[] { "flock:75", "evicted:0", "exists:True" }, lines);
        // the hold ends with the block
        var after = ps.Run("Remove-ModelCache -MaxSizeGB 0 -CacheDirectory $cache -PassThru", ("cache", Cache));
        Assert.Single(after.Output);
    }

    [Fact]
    public void WhatIf_AndListing_OnAFreshHome_CreateNothing_AndModelNotCachedHasOneAdvice()
    {
        using var home = new TempDir("freshhome");
        using var env = EnvScope.FreshHome(home.Path);
        var m = server.Add("n.bin", 50_000, seed: 45);
        var r = ps.Run("""
            Get-ModelLocked $u -WhatIf
            Get-ModelLocked $u -MaxSizeGB 0 -WhatIf
            Get-ModelCache
            Remove-ModelCache -MaxSizeGB 0 -WhatIf
            """, ("u", server.Url("n.bin")));
        Assert.True(!r.AllErrors.Any(), r.Describe());
        Assert.Empty(r.Output);
        Assert.Empty(Directory.GetFileSystemEntries(home.Path, "*", SearchOption.AllDirectories));
        Assert.Equal(0, m.Requests);

        var notCached = ps.Run("Get-ModelCache -Uri $u; Remove-ModelCache $u -WhatIf; Remove-ModelCache $u", ("u", server.Url("n.bin")));
        Assert.Empty(Directory.GetFileSystemEntries(home.Path));
        Assert.Equal(3, notCached.Errors.Count);
        Assert.All(notCached.Errors, e => Assert.StartsWith("ModelNotCached", e.FullyQualifiedErrorId));
        Assert.Single(notCached.Errors.Select(e => e.ErrorDetails?.RecommendedAction).Distinct());
        Assert.Single(notCached.Errors.Select(e => e.Exception.Message).Distinct());
    }
}
