using System.Diagnostics;
using System.Security.Cryptography;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Locking;
using SafeDeploy.Engine.Models;
using SafeDeploy.Engine.Platform;
using SafeDeploy.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace SafeDeploy.Tests.Models;

/// <summary>Collects what the engine reports, to check that secrets never appear in it.</summary>
sealed class RecordingReporter : IOperationReporter
{
    public readonly List<string> Lines = new();
    public void Verbose(string message) { lock (Lines) Lines.Add("V: " + message); }
    public void Warning(string message) { lock (Lines) Lines.Add("W: " + message); }
    public void Progress(ProgressUpdate update) { lock (Lines) Lines.Add($"P: {update.Activity} {update.Status} {update.CurrentOperation}"); }
    public string All { get { lock (Lines) return string.Join("\n", Lines); } }
}

public sealed class ModelFetcherTests : IDisposable
{
    readonly ModelServer server = new();
    readonly TempDir dir = new("models");
    readonly ModelCache cache;
    readonly ModelFetcher fetcher;
    readonly ITestOutputHelper output;

    public ModelFetcherTests(ITestOutputHelper output)
    {
        this.output = output;
        cache = new ModelCache(dir["cache"]);
        fetcher = new ModelFetcher(cache, new ModelFetchOptions { RetryBaseDelay = TimeSpan.FromMilliseconds(20), MaxRetries = 3 });
    }

    public void Dispose()
    {
        server.Dispose();
        dir.Dispose();
    }

    static string Sha(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path))).ToLowerInvariant();

    ModelFile Get(ModelRequest r, IOperationReporter? rep = null) => Run(fetcher, r, rep);

    static ModelFile Run(ModelFetcher f, ModelRequest r, IOperationReporter? rep = null) => f.GetAsync(r, rep).GetAwaiter().GetResult();

    static T Throws<T>(Action a) where T : Exception => Assert.Throws<T>(a);

    string[] LeftoverPartials() => Directory.Exists(cache.Directory)
        ? Directory.GetFiles(cache.Directory, "*.partial*", SearchOption.AllDirectories) : [];

    [Fact]
    public void Download_VerifiesRecordsAndCaches_ThenACachedCallMakesNoRequest()
    {
        var m = server.Add("org/llama.gguf", 3 << 20, seed: 7);
        var first = Get(new ModelRequest { Uri = server.Url("org/llama.gguf"), Sha256 = m.Sha256.ToUpperInvariant() });
        Assert.Equal(ModelSource.Downloaded, first.Source);
        Assert.Equal(m.Sha256, first.Sha256);
        Assert.Equal(m.Sha256, Sha(first.Path));
        Assert.Equal("llama.gguf", Path.GetFileName(first.Path));
        Assert.Equal(3 << 20, first.BytesTransferred);
        Assert.Empty(LeftoverPartials());

        var second = Get(new ModelRequest { Uri = server.Url("org/llama.gguf") });
        Assert.Equal(ModelSource.Cached, second.Source);
        Assert.Equal(first.Path, second.Path);
        Assert.Equal(0, second.BytesTransferred);
        Assert.Equal(1, m.Requests);
        var listed = Assert.Single(cache.List());
        Assert.Equal("Ready", listed.State);
        Assert.Equal(m.Sha256, listed.Sha256);
        Assert.False(listed.InUse);
    }

    [Fact]
    public void TwoUris_WithTheSameFileName_NeverCollide()
    {
        var a = server.Add("a/model.bin", 100_000, seed: 1);
        var b = server.Add("b/model.bin", 120_000, seed: 2);
        var ra = Get(new ModelRequest { Uri = server.Url("a/model.bin") });
        var rb = Get(new ModelRequest { Uri = server.Url("b/model.bin") });
        Assert.NotEqual(ra.Path, rb.Path);
        Assert.Equal("model.bin", Path.GetFileName(ra.Path));
        Assert.Equal(a.Sha256, Sha(ra.Path));
        Assert.Equal(b.Sha256, Sha(rb.Path));
        Assert.Equal(2, cache.List().Count);
    }

    [Fact]
    public void DroppedConnection_IsRetried_AndResumedWithARangeRequest()
    {
        var m = server.Add("m.bin", 4 << 20, seed: 3);
        m.DropAfterBytes = 1 << 20;
        m.DropCount = 1;
        var rep = new RecordingReporter();
        var r = Get(new ModelRequest { Uri = server.Url("m.bin"), Sha256 = m.Sha256 }, rep);
        Assert.Equal(ModelSource.Resumed, r.Source);
        Assert.Equal(m.Sha256, Sha(r.Path));
        Assert.Equal(1, m.FullTransfers);
        Assert.Equal(1, m.RangeTransfers);
        Assert.Contains("Resuming", rep.All);
        Assert.Empty(LeftoverPartials());
    }

    [Fact]
    public void WrongChecksum_IsInvalidData_NamesBothHashes_KeepsThePreviousFile_AndLeavesNoPartial()
    {
        var m = server.Add("w.bin", 500_000, seed: 4);
        var good = Get(new ModelRequest { Uri = server.Url("w.bin"), Sha256 = m.Sha256 });
        var wrong = new string('a', 64);
        var e = Throws<SafeDeployException>(() => Get(new ModelRequest { Uri = server.Url("w.bin"), Sha256 = wrong }));
        Assert.Equal("ChecksumMismatch", e.ErrorId);
        Assert.Equal(ErrorKind.InvalidData, e.Kind);
        Assert.Equal(server.Url("w.bin"), e.Target);
        Assert.Contains(wrong, e.Message);
        Assert.Contains(m.Sha256, e.Message);
        Assert.Equal(m.Sha256, Sha(good.Path));
        Assert.Empty(LeftoverPartials());
        // and the good entry is still served from the cache
        Assert.Equal(ModelSource.Cached, Get(new ModelRequest { Uri = server.Url("w.bin"), Sha256 = m.Sha256 }).Source);
    }

    [Fact]
    public void ServerSendingWrongBytes_NeverLandsInTheCache()
    {
        var m = server.Add("bad.bin", 700_000, seed: 5);
        m.WrongBytes = true;
        var e = Throws<SafeDeployException>(() => Get(new ModelRequest { Uri = server.Url("bad.bin"), Sha256 = m.Sha256 }));
        Assert.Equal("ChecksumMismatch", e.ErrorId);
        Assert.False(File.Exists(cache.PathsFor(server.Url("bad.bin")).FilePath));
        Assert.Empty(LeftoverPartials());
        Assert.Empty(cache.List());
    }

    [Fact]
    public void ETagChange_BetweenAttempts_RestartsCleanly_NeverSplices()
    {
        var m = server.Add("e.bin", 2 << 20, seed: 6);
        m.DropAfterBytes = 700_000;
        m.DropCount = 1;
        m.ChangeAfterDrop = (2 << 20, 66);
        var rep = new RecordingReporter();
        var r = Get(new ModelRequest { Uri = server.Url("e.bin") }, rep);
        Assert.Equal(m.Sha256, r.Sha256); // the new version, whole
        Assert.Equal(m.Sha256, Sha(r.Path));
        Assert.Equal(ModelSource.Downloaded, r.Source);
        Assert.Equal(2, m.FullTransfers); // the If-Range request was answered with the whole new file
        Assert.Equal(0, m.RangeTransfers);
        Assert.Contains("from byte 0", rep.All);
    }

    [Fact]
    public void ServerIgnoringRange_RestartsFromZero_AndStillVerifies()
    {
        var m = server.Add("nr.bin", 2 << 20, seed: 8);
        m.IgnoreRange = true;
        m.DropAfterBytes = 1 << 20;
        m.DropCount = 1;
        var r = Get(new ModelRequest { Uri = server.Url("nr.bin"), Sha256 = m.Sha256 });
        Assert.Equal(m.Sha256, Sha(r.Path));
        Assert.Equal(2, m.FullTransfers);
        Assert.Equal(ModelSource.Downloaded, r.Source);
    }

    [Fact]
    public void NotFound_IsObjectNotFound_WithoutRetries_AndNothingCached()
    {
        var e = Throws<SafeDeployException>(() => Get(new ModelRequest { Uri = server.Url("missing.bin") }));
        Assert.Equal("ModelNotFound", e.ErrorId);
        Assert.Equal(ErrorKind.ObjectNotFound, e.Kind);
        Assert.Equal(server.Url("missing.bin"), e.Target);
        Assert.Contains("404", e.Message);
        Assert.Empty(LeftoverPartials());
        Assert.Empty(cache.List());
    }

    [Fact]
    public void ConnectionRefused_IsRetried_ThenAConnectionError()
    {
        int port;
        using (var l = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0)) { l.Start(); port = ((System.Net.IPEndPoint)l.LocalEndpoint).Port; }
        var uri = $"http://127.0.0.1:{port}/x.bin";
        var rep = new RecordingReporter();
        var e = Throws<SafeDeployException>(() => Get(new ModelRequest { Uri = uri }, rep));
        Assert.Equal("DownloadFailed", e.ErrorId);
        Assert.Equal(ErrorKind.ConnectionError, e.Kind);
        Assert.Equal(uri, e.Target);
        Assert.Contains("4 attempts", e.Message);
        Assert.Contains("retrying", rep.All);
        Assert.Empty(LeftoverPartials());
    }

    [Fact]
    public void FileUri_AndPlainPath_GoThroughTheSameLockTempAndVerification()
    {
        var src = dir.Write("share/weights.safetensors", new string('x', 300_000));
        var sha = Sha(src);
        var byPath = Get(new ModelRequest { Uri = src, Sha256 = sha });
        Assert.Equal(ModelSource.Downloaded, byPath.Source);
        Assert.Equal(sha, Sha(byPath.Path));
        Assert.StartsWith(cache.Directory, byPath.Path);
        var byUri = Get(new ModelRequest { Uri = new Uri(src).AbsoluteUri, Sha256 = sha });
        Assert.Equal(ModelSource.Cached, byUri.Source); // the same entry: both name the same file
        Assert.Equal(byPath.Path, byUri.Path);

        var e = Throws<SafeDeployException>(() => Get(new ModelRequest { Uri = src, Sha256 = new string('0', 64), Force = true }));
        Assert.Equal("ChecksumMismatch", e.ErrorId);
        Assert.Equal(sha, Sha(byPath.Path));

        var missing = Throws<SafeDeployException>(() => Get(new ModelRequest { Uri = dir["share/none.bin"] }));
        Assert.Equal("ModelNotFound", missing.ErrorId);
        Assert.Empty(LeftoverPartials());
    }

    [Fact]
    public void CheapCheck_CatchesATruncatedFile_AndVerify_CatchesSilentCorruption()
    {
        var m = server.Add("c.bin", 400_000, seed: 9);
        var r = Get(new ModelRequest { Uri = server.Url("c.bin") });
        // same size, one byte flipped in place: only a full rehash can see it
        using (var fs = new FileStream(r.Path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite)) { fs.Position = 1000; fs.WriteByte(0); }
        Assert.Equal(ModelSource.Cached, Get(new ModelRequest { Uri = server.Url("c.bin") }).Source);
        var rep = new RecordingReporter();
        var verified = Get(new ModelRequest { Uri = server.Url("c.bin"), Verify = true }, rep);
        Assert.Equal(ModelSource.Downloaded, verified.Source);
        Assert.Contains("corrupt", rep.All);
        Assert.Equal(m.Sha256, Sha(verified.Path));

        using (var fs = new FileStream(verified.Path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite)) fs.SetLength(10);
        var again = Get(new ModelRequest { Uri = server.Url("c.bin") }, rep);
        Assert.Equal(ModelSource.Downloaded, again.Source);
        Assert.Equal(m.Sha256, Sha(again.Path));
        Assert.Equal(3, m.FullTransfers);
    }

    [Fact]
    public void LockTimeout_IsResourceBusy_NamesTheHolder_AndLeavesItAlone()
    {
        var m = server.Add("busy.bin", 10_000);
        var paths = cache.PathsFor(server.Url("busy.bin"));
        Directory.CreateDirectory(paths.Directory);
        using var held = FileLock.Acquire(paths.LockPath);
        var e = Throws<SafeDeployException>(() => Get(new ModelRequest { Uri = server.Url("busy.bin"), LockTimeout = TimeSpan.FromMilliseconds(300) }));
        Assert.Equal("LockTimeout", e.ErrorId);
        Assert.Equal(ErrorKind.ResourceBusy, e.Kind);
        Assert.Equal(server.Url("busy.bin"), e.Target);
        Assert.Contains($"pid {Environment.ProcessId}", e.Message);
        Assert.Equal(0, m.Requests);
        Assert.True(File.Exists(paths.LockPath));
    }

    [Fact]
    public void Eviction_IsLeastRecentlyUsedFirst_NeverTheOneInUse_NorTheOneJustFetched()
    {
        var names = new[] { "e1.bin", "e2.bin", "e3.bin", "e4.bin" };
        foreach (var n in names) server.Add(n, 1 << 20, seed: n.GetHashCode());
        foreach (var n in names.Take(3)) { Get(new ModelRequest { Uri = server.Url(n) }); Thread.Sleep(20); }
        Get(new ModelRequest { Uri = server.Url("e2.bin") }); // e2 is now more recent than e1 and e3
        var e1 = cache.PathsFor(server.Url("e1.bin"));
        using var inUse = FileLock.Acquire(e1.LockPath); // e1 is the oldest, but in use
        // room for two models: e1 (in use) and e4 (just fetched) stay, e3 (least recent of the rest) then e2 go
        var r4 = Get(new ModelRequest { Uri = server.Url("e4.bin"), MaxCacheBytes = 2L << 20 });
        var left = cache.List().Select(e => Path.GetFileName(e.Path)).Order().ToList();
        Assert.Equal(new[] { "e1.bin", "e4.bin" }, left);
        Assert.True(File.Exists(r4.Path));
        Assert.True(File.Exists(e1.FilePath));
        Assert.True(File.Exists(cache.PathsFor(server.Url("e3.bin")).LockPath)); // lock files are never deleted
        Assert.True(cache.List().Single(e => e.Path == e1.FilePath).InUse);
    }

    [Fact]
    public void Headers_AreSent_ButNeverInErrorsVerboseProgressOrTheSidecar()
    {
        const string secret = "Bearer sk-SECRET-4f2a9";
        var m = server.Add("auth.bin", 2 << 20, seed: 11);
        m.DropAfterBytes = 100_000;
        m.DropCount = 1;
        var headers = new Dictionary<string, string> { ["Authorization"] = secret };
        var rep = new RecordingReporter();
        var ok = Get(new ModelRequest { Uri = server.Url("auth.bin"), Headers = headers }, rep);
        Assert.Contains(secret, m.AuthorizationHeaders);
        var e404 = Throws<SafeDeployException>(() => Get(new ModelRequest { Uri = server.Url("nope.bin"), Headers = headers }, rep));
        var bad = Throws<SafeDeployException>(() => Get(new ModelRequest { Uri = server.Url("auth.bin"), Headers = headers, Sha256 = new string('b', 64), Force = true }, rep));
        foreach (var text in new[] { rep.All, e404.ToString(), bad.ToString(), e404.RecommendedAction ?? "" })
            Assert.DoesNotContain("SECRET", text);
        foreach (var f in Directory.GetFiles(cache.Directory, "*", SearchOption.AllDirectories).Where(f => f != ok.Path))
            Assert.DoesNotContain("SECRET", File.ReadAllText(f));
    }

    [Fact]
    public void CacheDirectory_ThatIsASymlinkOwnedByAnotherUser_IsRefused()
    {
        if (Native.GetEffectiveUserId() != 0) { output.WriteLine("skipped: needs root to chown a symlink to another user"); return; }
        Directory.CreateDirectory(dir["elsewhere"]);
        var link = dir["linked-cache"];
        File.CreateSymbolicLink(link, dir["elsewhere"]);
        using (var chown = Process.Start("chown", ["-h", "65534:65534", link])!) { chown.WaitForExit(10_000); Assert.Equal(0, chown.ExitCode); }
        server.Add("s.bin", 1000);
        var f = new ModelFetcher(new ModelCache(link));
        var e = Throws<SafeDeployException>(() => Run(f, new ModelRequest { Uri = server.Url("s.bin") }));
        Assert.Equal("UntrustedSymlink", e.ErrorId);
        Assert.Equal(ErrorKind.SecurityError, e.Kind);
        Assert.Equal(link, e.Target);
        Assert.Empty(Directory.GetFileSystemEntries(dir["elsewhere"]));
    }

    [Fact]
    public void FullDisk_MidDownload_IsDiskFull_RemovesThePartial_AndKeepsThePreviousFile()
    {
        var mnt = dir["small"];
        Directory.CreateDirectory(mnt);
        var mount = Process.Start(new ProcessStartInfo("mount", ["-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt]) { RedirectStandardError = true })!;
        mount.WaitForExit(10_000);
        if (mount.ExitCode != 0) { output.WriteLine("skipped: cannot mount a small tmpfs here: " + mount.StandardError.ReadToEnd()); return; }
        try
        {
            var m = server.Add("big.bin", 1 << 20, seed: 12);
            var f = new ModelFetcher(new ModelCache(Path.Combine(mnt, "cache")), new ModelFetchOptions { RetryBaseDelay = TimeSpan.FromMilliseconds(10) });
            var first = Run(f, new ModelRequest { Uri = server.Url("big.bin") });
            var oldSha = m.Sha256;
            m.SetContent(6 << 20, 13); // the new version does not fit
            var e = Throws<SafeDeployException>(() => Run(f, new ModelRequest { Uri = server.Url("big.bin"), Force = true }));
            Assert.Equal("DiskFull", e.ErrorId);
            Assert.Equal(ErrorKind.ResourceUnavailable, e.Kind);
            Assert.Contains("no space left", e.Message);
            Assert.Equal(oldSha, Sha(first.Path));
            Assert.Empty(Directory.GetFiles(Path.Combine(mnt, "cache"), "*.partial*", SearchOption.AllDirectories));
            Assert.Equal(ModelSource.Cached, Run(f, new ModelRequest { Uri = server.Url("big.bin"), Sha256 = oldSha }).Source);
        }
        finally { Process.Start("umount", ["-l", mnt])!.WaitForExit(10_000); }
    }
}
