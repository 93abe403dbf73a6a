using System.Diagnostics;
using System.Security.Cryptography;
using SafeDeploy.Engine.Models;
using SafeDeploy.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace SafeDeploy.Tests.Models;

/// <summary>
/// Two "nodes" sharing one cache directory whose flock does not reach from one to the other: two bindfs (FUSE) mounts
/// of one directory. Without lock forwarding, flock on a FUSE mount is kept by the kernel per mount, like NFS's
/// node-local locks; the test proves that first.
/// </summary>
public sealed class TwoNodeMounts : IDisposable
{
    readonly List<string> mounted = new();

    public TwoNodeMounts(TempDir dir)
    {
        Shared = dir["shared"];
        Node1 = dir["node1"];
        Node2 = dir["node2"];
        foreach (var d in new[] { Shared, Node1, Node2 }) Directory.CreateDirectory(d);
        foreach (var node in new[] { Node1, Node2 })
        {
            if (Run("bindfs", "--no-allow-other", Shared, node) != 0) { Skipped = "bindfs could not mount (is fuse3 and bindfs installed, /dev/fuse present?)"; return; }
            mounted.Add(node);
        }
    }

    public string Shared { get; }
    public string Node1 { get; }
    public string Node2 { get; }
    /// <summary>Why the emulation cannot run here, or null.</summary>
    public string? Skipped { get; }

    static int Run(string program, params string[] args)
    {
        try
        {
            using var p = Process.Start(new ProcessStartInfo(program, args) { RedirectStandardError = true, RedirectStandardOutput = true })!;
            if (!p.WaitForExit(20_000)) { p.Kill(true); return -1; }
            return p.ExitCode;
        }
        catch (System.ComponentModel.Win32Exception) { return -1; }
    }

    public void Dispose()
    {
        foreach (var m in mounted) Run("fusermount", "-u", "-z", m);
    }
}

public sealed class ModelFleetTests(ITestOutputHelper output) : IDisposable
{
    readonly ModelServer server = new();
    readonly TempDir dir = new("modelfleet");

    public void Dispose()
    {
        server.Dispose();
        dir.Dispose();
    }

    static string Sha(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path))).ToLowerInvariant();

    [Fact]
    public void TwoNodesWhoseLocksDoNotReachEachOther_EveryFetcherSucceeds_NeverACorruptEntry()
    {
        using var nodes = new TwoNodeMounts(dir);
        if (nodes.Skipped is { } why) { output.WriteLine("skipped: " + why); return; }
        // The emulation holds: a lock taken through node 1 keeps out node 1's processes but not node 2's.
        var probe1 = Path.Combine(nodes.Node1, "probe.lock");
        File.WriteAllText(probe1, "");
        using (new FlockHolder(probe1, 30))
        {
            Assert.Equal(75, FlockHolder.TryOnce(probe1));
            Assert.Equal(0, FlockHolder.TryOnce(Path.Combine(nodes.Node2, "probe.lock")));
        }

        var m = server.Add("fleet/model.bin", 24 << 20, seed: 51);
        m.ThrottleBytesPerSec = 8 << 20; // 3 s a transfer, so that node 2's fetchers meet node 1's writer mid-stream
        var url = server.Url("fleet/model.bin");
        const int perNode = 4;
        var env = new Dictionary<string, string?> { ["HOME"] = dir.Path, ["XDG_CACHE_HOME"] = null, ["XDG_STATE_HOME"] = null };
        // Node 1's first two start together, its others 0.4 s apart; node 2's start a second later, while node 1's
        // writer streams into its partial, which node 2 (whose lock does not see node 1's) finds in the directory.
        int DelayMs(int i) => (i % 2) * 1000 + Math.Max(0, i / 2 - 1) * 400;
        var outcomes = ProcessSwarm.RunAtOnce(2 * perNode, i => $$"""
            [Threading.Thread]::Sleep({{DelayMs(i)}})
            $m = Get-ModelLocked '{{url}}' -Sha256 {{m.Sha256}} -CacheDirectory '{{Path.Combine(i % 2 == 0 ? nodes.Node1 : nodes.Node2, "cache")}}' -TimeoutSec 120 -ErrorAction Stop
            "RESULT|$($m.Sha256)|$($m.Source)|$([IO.File]::ReadAllBytes($m.Path).Length)"
            """, env, barrierDeadline: TimeSpan.FromMinutes(5)); // host start-up, not the fetch, is slow on a loaded machine
        int failed = 0;
        foreach (var (o, i) in outcomes.Select((o, i) => (o, i)))
        {
            bool ok = o.ExitCode == 0 && o.StdOut.Contains($"RESULT|{m.Sha256}|");
            if (!ok) failed++;
            output.WriteLine($"node {i % 2 + 1} #{i}: {(ok ? o.StdOut.Split('\n').First(l => l.StartsWith("RESULT|")).Trim() : o.ToString())}");
        }
        output.WriteLine($"{failed} of {outcomes.Count} fetchers failed; the server sent {m.FullTransfers} full and {m.RangeTransfers} ranged transfers");
        Assert.Equal(0, failed);
        Assert.All(outcomes, o => Assert.DoesNotContain("DirectoryNotFound", o.StdOut + o.StdErr));

        // Never a corrupt entry: through either node, the entry is the model's bytes, and a cache check accepts it.
        foreach (var node in new[] { nodes.Node1, nodes.Node2 })
        {
            var cache = new ModelCache(Path.Combine(node, "cache"));
            var again = new ModelFetcher(cache).GetAsync(new ModelRequest { Uri = url, Sha256 = m.Sha256, Verify = true }).GetAwaiter().GetResult();
            Assert.Equal(m.Sha256, Sha(again.Path));
        }
        var entryDir = new ModelCache(Path.Combine(nodes.Shared, "cache")).PathsFor(url).Directory;
        Assert.Equal(m.Sha256, Sha(Path.Combine(entryDir, "model.bin")));
    }

    [Fact]
    public void TestLockSupport_ThroughASecondMount_SaysExclusionDoesNotReachOtherNodes()
    {
        using var nodes = new TwoNodeMounts(dir);
        if (nodes.Skipped is { } why) { output.WriteLine("skipped: " + why); return; }
        using var ps = new PsSession();
        var r = ps.Run("Test-LockSupport -Path $a -OtherPath $b; Test-LockSupport -Path $a; Test-LockSupport -Path $local",
            ("a", nodes.Node1), ("b", nodes.Node2), ("local", dir.Path));
        Assert.Empty(r.AllErrors);
        Assert.Equal(3, r.Output.Count);
        Assert.Equal(true, r.Prop(0, "ExclusionWorks"));   // within one node it excludes
        Assert.Equal(false, r.Prop(0, "ReachesOtherNodes")); // proven not to reach the other mount
        Assert.Contains("does not reach other nodes", (string)r.Prop(0, "Detail")!);
        Assert.Equal("fuse", r.Prop(1, "FileSystemType"));
        Assert.Equal(false, r.Prop(1, "ReachesOtherNodes")); // cannot prove it on FUSE, so says it does not
        Assert.Null(r.Prop(2, "ReachesOtherNodes"));         // a local filesystem has no other nodes
        Assert.Equal(2, r.Warnings.Count);
        // Through two views of a local directory that are one mount, exclusion is proven to reach.
        var same = ps.Run("Test-LockSupport -Path $a -OtherPath $a", ("a", dir.Path));
        Assert.Equal(true, same.Prop(0, "ReachesOtherNodes"));
    }
}
