using System.Security.Cryptography;
using SafeDeploy.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace SafeDeploy.Tests.Models;

/// <summary>Several real OS processes (the safedeploy host) against one cache: one transfer, crash safety, resume.</summary>
public sealed class ModelProcessTests(ITestOutputHelper output) : IDisposable
{
    readonly ModelServer server = new();
    readonly TempDir dir = new("modelproc");

    public void Dispose()
    {
        server.Dispose();
        dir.Dispose();
    }

    Dictionary<string, string?> Env => new() { ["HOME"] = dir.Path, ["XDG_CACHE_HOME"] = null, ["XDG_STATE_HOME"] = null };

    static long LargestPartial(string entryDirectory) =>
        Directory.Exists(entryDirectory)
            ? Directory.GetFiles(entryDirectory, "*.partial").Select(f => { try { return new FileInfo(f).Length; } catch (IOException) { return 0L; } }).DefaultIfEmpty(0).Max()
            : 0;

    static string Sha(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path))).ToLowerInvariant();

    [Fact]
    public void EightProcesses_FetchOneModelAtOnce_TheServerSeesOneTransfer_AndAllGetTheSameVerifiedPath()
    {
        var m = server.Add("org/model-64m.gguf", 64 << 20, seed: 21);
        var cache = dir["cache"];
        var outcomes = ProcessSwarm.RunAtOnce(8, i => $$"""
            $m = Get-ModelLocked '{{server.Url("org/model-64m.gguf")}}' -Sha256 {{m.Sha256}} -CacheDirectory '{{cache}}' -Verbose
            "RESULT|$($m.Path)|$($m.Source)|$($m.Sha256)"
            """, Env);
        var results = outcomes.Select(o =>
        {
            Assert.True(o.ExitCode == 0, o.ToString());
            var line = o.StdOut.Split('\n').Single(l => l.StartsWith("RESULT|")).Trim().Split('|');
            return (Path: line[1], Source: line[2], Sha: line[3], Out: o.StdOut + o.StdErr);
        }).ToList();
        Assert.Equal(1, m.FullTransfers);
        Assert.Equal(0, m.RangeTransfers);
        Assert.Single(results.Select(r => r.Path).Distinct());
        Assert.Single(results, r => r.Source == "Downloaded");
        Assert.Equal(7, results.Count(r => r.Source == "Cached"));
        Assert.All(results, r => Assert.Equal(m.Sha256, r.Sha));
        Assert.Equal(m.Sha256, Sha(results[0].Path));
        // the waiters said whom they waited for
        Assert.Contains(results, r => r.Out.Contains("held by pid"));
        Assert.Empty(Directory.GetFiles(cache, "*.partial*", SearchOption.AllDirectories));
    }

    [Fact]
    public void KillMinus9_AtRandomOffsets_NeverLeavesABadFileAtTheFinalPath_AndTheNextCallResumes()
    {
        const int size = 24 << 20;
        var m = server.Add("crash/model.bin", size, seed: 22);
        m.ThrottleBytesPerSec = 12 << 20; // so the kill lands mid-transfer
        var cache = dir["cache"];
        var uri = server.Url("crash/model.bin");
        var script = $$"""
            $m = Get-ModelLocked '{{uri}}' -Sha256 {{m.Sha256}} -CacheDirectory '{{cache}}'
            "RESULT|$($m.Path)|$($m.Source)|$($m.BytesTransferred)"
            """;
        var finalPath = Path.Combine(cache, SafeDeploy.Engine.Models.ModelCache.KeyOf(uri), "model.bin");
        var entryDir = Path.GetDirectoryName(finalPath)!;
        var random = new Random(4242);
        const int kills = 10;
        var notResumed = new List<int>();
        for (int i = 0; i < kills; i++)
        {
            int rangesBefore = m.RangeTransfers;
            // The kill lands at a random point of this call's own progress: once the partial on disk has grown by
            // killAt bytes past what the previous call left. (Counting the server's sent bytes instead would kill
            // some calls before they wrote a byte, while the data still sat in loopback socket buffers.)
            long partialBefore = LargestPartial(entryDir);
            long killAt = random.Next(64 << 10, 1536 << 10);
            using var p = HostProcess.Start(script, Env);
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (LargestPartial(entryDir) - partialBefore < killAt && !p.HasExited && DateTime.UtcNow < deadline) Thread.Sleep(1);
            Assert.False(p.HasExited, "the download finished before the kill: " + p.StdOutSoFar + p.StdErrSoFar);
            p.Signal(9);
            p.Wait(TimeSpan.FromSeconds(10));
            output.WriteLine($"kill {i}: partial grew from {partialBefore} by {LargestPartial(entryDir) - partialBefore} bytes (target {killAt}); partials: " +
                string.Join(", ", Directory.GetFiles(cache, "*.partial", SearchOption.AllDirectories).Select(f => new FileInfo(f).Length)));
            Assert.True(!File.Exists(finalPath) || Sha(finalPath) == m.Sha256, "a file that fails its hash is at the final path");
            if (i > 0 && m.RangeTransfers == rangesBefore) notResumed.Add(i);
        }
        output.WriteLine($"full transfers {m.FullTransfers}, range transfers {m.RangeTransfers}, calls that did not resume: [{string.Join(", ", notResumed)}]");
        // Every call after the first found the previous call's partial holding data: each must have resumed it.
        Assert.True(notResumed.Count == 0, $"calls {string.Join(", ", notResumed)} did not resume with a Range request");
        Assert.Equal(1, m.FullTransfers);
        m.ThrottleBytesPerSec = 0;
        var done = HostProcess.Run(script, Env);
        Assert.True(done.ExitCode == 0, done.ToString());
        var line = done.StdOut.Split('\n').Single(l => l.StartsWith("RESULT|")).Trim().Split('|');
        Assert.Equal(finalPath, line[1]);
        Assert.Equal("Resumed", line[2]);
        Assert.True(long.Parse(line[3]) < size);
        Assert.Equal(kills + 1, m.RangeTransfers + m.FullTransfers);
        Assert.Equal(m.Sha256, Sha(finalPath));
        Assert.Empty(Directory.GetFiles(cache, "*.partial*", SearchOption.AllDirectories));
    }
}
