using System.Management.Automation;
using System.Security.Cryptography;
using SafeDeploy.Engine.Locking;
using SafeDeploy.Engine.Models;
using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.Models;

public sealed class ModelCmdletTests : IDisposable
{
    readonly ModelServer server = new();
    readonly TempDir dir = new("modelps");
    readonly PsSession ps = new();

    public void Dispose()
    {
        ps.Dispose();
        server.Dispose();
        dir.Dispose();
    }

    string Cache => dir["cache"];

    static string Sha(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path))).ToLowerInvariant();

    static void AssertError(ErrorRecord e, string id, ErrorCategory category, object target)
    {
        Assert.StartsWith(id, e.FullyQualifiedErrorId);
        Assert.Equal(category, e.CategoryInfo.Category);
        Assert.Equal(target, e.TargetObject);
    }

    [Fact]
    public void GetModelLocked_TakesUriAndSha256FromThePipelineByPropertyName_AndReturnsModelFiles()
    {
        var a = server.Add("x/a.gguf", 200_000, 1);
        var b = server.Add("y/a.gguf", 300_000, 2);
        var r = ps.Run("""
            $list = @([pscustomobject]@{ Uri = $u1; Sha256 = $s1 }, [pscustomobject]@{ Uri = $u2; Sha256 = $s2 })
            $list | Get-ModelLocked -CacheDirectory $cache
            """, ("u1", server.Url("x/a.gguf")), ("s1", a.Sha256), ("u2", server.Url("y/a.gguf")), ("s2", b.Sha256), ("cache", Cache));
        Assert.True(r.AllErrors.Count() == 0, r.Describe());
        Assert.Equal(2, r.Output.Count);
        Assert.Equal("SafeDeploy.Engine.Models.ModelFile", r.Output[0].TypeNames[0]);
        Assert.Equal(a.Sha256, Sha((string)r.Prop(0, "Path")!));
        Assert.Equal(b.Sha256, Sha((string)r.Prop(1, "Path")!));
        Assert.NotEqual(r.Prop(0, "Path"), r.Prop(1, "Path"));
        Assert.Equal("Downloaded", r.Prop(0, "Source")!.ToString());
        Assert.Equal(200_000L, r.Prop(0, "BytesTransferred"));
        Assert.IsType<TimeSpan>(r.Prop(0, "LockWait"));

        var again = ps.Run("Get-ModelLocked $u -CacheDirectory $cache", ("u", server.Url("x/a.gguf")), ("cache", Cache));
        Assert.Equal("Cached", again.Prop(0, "Source")!.ToString());
    }

    [Fact]
    public void MixedInput_GivesOutputForTheGoodAndAnErrorRecordForTheBad()
    {
        var a = server.Add("good.bin", 100_000, 1);
        var r = ps.Run("""
            @([pscustomobject]@{ Uri = $good; Sha256 = $sha }, [pscustomobject]@{ Uri = $good2; Sha256 = $wrong }, [pscustomobject]@{ Uri = $missing }) |
                Get-ModelLocked -CacheDirectory $cache
            """, ("good", server.Url("good.bin")), ("sha", a.Sha256), ("good2", server.Url("good.bin?v=2")), ("wrong", new string('c', 64)),
            ("missing", server.Url("missing.bin")), ("cache", Cache));
        Assert.Single(r.Output);
        Assert.Equal(2, r.Errors.Count);
        // The target names the URI without its query string, which may carry a credential.
        AssertError(r.Errors[0], "ChecksumMismatch", ErrorCategory.InvalidData, server.Url("good.bin"));
        Assert.Contains(new string('c', 64), r.Errors[0].ToString());
        Assert.Contains(a.Sha256, r.Errors[0].ToString());
        Assert.NotNull(r.Errors[0].ErrorDetails?.RecommendedAction);
        AssertError(r.Errors[1], "ModelNotFound", ErrorCategory.ObjectNotFound, server.Url("missing.bin"));
        Assert.Empty(Directory.GetFiles(Cache, "*.partial*", SearchOption.AllDirectories));
    }

    [Fact]
    public void MalformedSha256_IsRejectedByParameterValidation()
    {
        var r = ps.Run("Get-ModelLocked http://127.0.0.1:1/m.bin -Sha256 'xyz' -CacheDirectory $cache", ("cache", Cache));
        Assert.StartsWith("ParameterArgumentValidationError", Assert.Single(r.AllErrors).FullyQualifiedErrorId);
        Assert.False(Directory.Exists(Cache));
    }

    [Fact]
    public void Verbose_Progress_AndErrors_NeverShowTheAuthHeader_ButProgressShowsBytesAndRate()
    {
        var m = server.Add("private.bin", 8 << 20, 3);
        m.ThrottleBytesPerSec = 16 << 20; // half a second: long enough for a few progress updates
        var r = ps.Run("""
            Get-ModelLocked $u -CacheDirectory $cache -Headers @{ Authorization = 'Bearer hf_TOPSECRET' } -Verbose
            Get-ModelLocked $missing -CacheDirectory $cache -Headers @{ Authorization = 'Bearer hf_TOPSECRET' } -Verbose
            """, ("u", server.Url("private.bin")), ("missing", server.Url("gone.bin")), ("cache", Cache));
        Assert.Single(r.Output);
        Assert.Contains("Bearer hf_TOPSECRET", m.AuthorizationHeaders);
        var everything = string.Join("\n", r.Verbose.Concat(r.Warnings).Concat(r.AllErrors.Select(e => e.ToString() + e.ErrorDetails?.RecommendedAction + e.Exception))
            .Concat(r.Progress.Select(p => p.Activity + p.StatusDescription + p.CurrentOperation)));
        Assert.DoesNotContain("TOPSECRET", everything);
        Assert.Contains(r.Progress, p => p.StatusDescription.Contains("MB/s") && p.StatusDescription.Contains(" of 8.0 MiB"));
        Assert.Contains(r.Progress, p => p.RecordType == ProgressRecordType.Completed);
    }

    [Fact]
    public void CtrlC_StopsTheDownload_KeepsThePartial_AndTheNextCallResumesWithRange()
    {
        var m = server.Add("slow.bin", 6 << 20, 4);
        m.ThrottleBytesPerSec = 4 << 20;
        var stopped = ps.RunAndStop("Get-ModelLocked $u -CacheDirectory $cache", TimeSpan.FromMilliseconds(700), ("u", server.Url("slow.bin")), ("cache", Cache));
        Assert.Empty(stopped.Output);
        var partials = Directory.GetFiles(Cache, "*.partial", SearchOption.AllDirectories);
        Assert.Single(partials);
        Assert.True(new FileInfo(partials[0]).Length > 0);
        m.ThrottleBytesPerSec = 0;
        var r = ps.Run("Get-ModelLocked $u -CacheDirectory $cache -Sha256 $sha", ("u", server.Url("slow.bin")), ("cache", Cache), ("sha", m.Sha256));
        Assert.True(r.AllErrors.Count() == 0, r.Describe());
        Assert.Equal("Resumed", r.Prop(0, "Source")!.ToString());
        Assert.True((long)r.Prop(0, "BytesTransferred")! < 6 << 20);
        Assert.Equal(1, m.RangeTransfers);
        Assert.Equal(m.Sha256, Sha((string)r.Prop(0, "Path")!));
    }

    [Fact]
    public void TimeoutSec_BoundsOnlyTheLockWait_WithALockTimeoutNamingTheHolder()
    {
        server.Add("held.bin", 1000);
        var entry = new ModelCache(Cache).PathsFor(server.Url("held.bin"));
        Directory.CreateDirectory(entry.Directory);
        using var held = FileLock.Acquire(entry.LockPath);
        var r = ps.Run("Get-ModelLocked $u -CacheDirectory $cache -TimeoutSec 1 -Verbose", ("u", server.Url("held.bin")), ("cache", Cache));
        var e = Assert.Single(r.AllErrors);
        AssertError(e, "LockTimeout", ErrorCategory.ResourceBusy, server.Url("held.bin"));
        Assert.Contains($"pid {Environment.ProcessId}", e.ToString());
        Assert.Contains(r.Verbose, v => v.Contains($"held by pid {Environment.ProcessId}"));
    }

    [Fact]
    public void DefaultCache_IsUnderTheSafeDeployStateCache_CreatedOnFirstUse()
    {
        using var home = new TempDir("home");
        using var env = EnvScope.FreshHome(home.Path);
        var m = server.Add("d.bin", 5000);
        var r = ps.Run("Get-ModelLocked $u", ("u", server.Url("d.bin")));
        Assert.True(r.AllErrors.Count() == 0, r.Describe());
        Assert.StartsWith(Path.Combine(home.Path, ".cache", "safedeploy", "models") + "/", (string)r.Prop(0, "Path")!);
        var list = ps.Run("Get-ModelCache");
        Assert.Equal(server.Url("d.bin"), list.Prop(0, "Uri"));
    }

    [Fact]
    public void GetAndRemoveModelCache_ListRemoveWhatIfAndEvict()
    {
        foreach (var n in new[] { "r1.bin", "r2.bin", "r3.bin" }) server.Add(n, 1 << 20, n.Length + n[1]);
        ps.Run("foreach ($n in 'r1.bin','r2.bin','r3.bin') { Get-ModelLocked ($base + '/' + $n) -CacheDirectory $cache }", ("base", server.BaseUrl), ("cache", Cache));
        var list = ps.Run("Get-ModelCache -CacheDirectory $cache", ("cache", Cache));
        Assert.Equal(3, list.Output.Count);
        Assert.Equal("SafeDeploy.Engine.Models.ModelCacheEntry", list.Output[0].TypeNames[0]);
        Assert.All(list.Output, o => Assert.Equal(false, o.Properties["InUse"].Value));

        var whatIf = ps.Run("Get-ModelCache -CacheDirectory $cache | Remove-ModelCache -CacheDirectory $cache -WhatIf", ("cache", Cache));
        Assert.Empty(whatIf.AllErrors);
        Assert.Equal(3, ps.Run("Get-ModelCache -CacheDirectory $cache", ("cache", Cache)).Output.Count);

        var one = ps.Run("Remove-ModelCache $u -CacheDirectory $cache -PassThru", ("u", server.Url("r1.bin")), ("cache", Cache));
        Assert.Equal(server.Url("r1.bin"), one.Prop(0, "Uri"));
        Assert.False(File.Exists((string)one.Prop(0, "Path")!));

        var missing = ps.Run("Remove-ModelCache $u -CacheDirectory $cache", ("u", server.Url("r1.bin")), ("cache", Cache));
        AssertError(Assert.Single(missing.AllErrors), "ModelNotCached", ErrorCategory.ObjectNotFound, server.Url("r1.bin"));

        var entry = new ModelCache(Cache).PathsFor(server.Url("r2.bin"));
        using (FileLock.Acquire(entry.LockPath))
        {
            var busy = ps.Run("Remove-ModelCache $u -CacheDirectory $cache", ("u", server.Url("r2.bin")), ("cache", Cache));
            AssertError(Assert.Single(busy.AllErrors), "ModelInUse", ErrorCategory.ResourceBusy, server.Url("r2.bin"));
            var evict = ps.Run("Remove-ModelCache -MaxSizeGB 0 -CacheDirectory $cache -PassThru", ("cache", Cache));
            Assert.Equal(server.Url("r3.bin"), Assert.Single(evict.Output).Properties["Uri"].Value);
        }
        Assert.True(File.Exists(entry.FilePath));
    }
}
