using System.Diagnostics;
using System.Management.Automation;
using System.Text;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Locking;
using SafeDeploy.Engine.Models;
using SafeDeploy.Engine.Platform;
using SafeDeploy.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace SafeDeploy.Tests.Models;

/// <summary>The model cache against credentials leaking and against other local users (issue 12, item 4).</summary>
public sealed class ModelSecurityTests(ITestOutputHelper output) : IDisposable
{
    readonly ModelServer server = new();
    readonly TempDir dir = new("modelsec");

    public void Dispose()
    {
        server.Dispose();
        dir.Dispose();
    }

    ModelFetcher Fetcher(ModelCache cache) => new(cache, new ModelFetchOptions { RetryBaseDelay = TimeSpan.FromMilliseconds(10), MaxRetries = 1 });

    static ModelFile Run(ModelFetcher f, ModelRequest r, IOperationReporter? rep = null) => f.GetAsync(r, rep).GetAwaiter().GetResult();

    static uint ModeOf(string path) => Native.Stat(path, followSymlinks: false)!.Permissions;

    static int Sh(string script, bool asNobody = false)
    {
        var args = asNobody
            ? new[] { "--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c", script }
            : new[] { "-c", script };
        using var p = Process.Start(new ProcessStartInfo(asNobody ? "setpriv" : "sh", args) { RedirectStandardError = true })!;
        Assert.True(p.WaitForExit(20_000), "the shell did not finish in time");
        return p.ExitCode;
    }

    bool IsRoot(string why)
    {
        if (Native.GetEffectiveUserId() == 0) return true;
        output.WriteLine($"skipped: needs root to {why}");
        return false;
    }

    [Fact]
    public void UserInfoQueryAndHeaders_AreSent_ButNeverStoredShownOrRecordedInTheLock()
    {
        var m = server.Add("secure/model.bin", 1 << 20, seed: 31);
        m.DropAfterBytes = 200_000;
        m.DropCount = 1; // a retry, so that verbose says something about the transfer
        var port = new Uri(server.BaseUrl).Port;
        var url = $"http://alice:pw-SECRET1@127.0.0.1:{port}/secure/model.bin?token=SECRET2";
        var cache = new ModelCache(dir["cache"]);
        var rep = new RecordingReporter();
        var headers = new Dictionary<string, string> { ["X-Api-Key"] = "SECRET3" };
        var got = Run(Fetcher(cache), new ModelRequest { Uri = url, Headers = headers, Sha256 = m.Sha256 }, rep);

        // sent: userinfo as Basic authorization (as curl does), the query string, the header
        Assert.Contains("Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes("alice:pw-SECRET1")), m.AuthorizationHeaders);
        Assert.Contains(m.AllHeaders, h => h == "X-Api-Key: SECRET3");
        // never stored or shown
        var missing = Assert.Throws<SafeDeployException>(() => Run(Fetcher(cache),
            new ModelRequest { Uri = url.Replace("model.bin", "none.bin"), Headers = headers }, rep));
        var entry = Assert.Single(cache.List());
        var holder = LockInspector.ReadRecord(cache.PathsFor(url).LockPath);
        var shown = string.Join("\n", rep.All, got.Uri, got.Path, entry.Uri, entry.Path, missing.ToString(), missing.Target, holder?.Purpose ?? "");
        foreach (var f in Directory.GetFiles(cache.Directory, "*", SearchOption.AllDirectories).Where(f => f != got.Path))
            shown += "\n" + File.ReadAllText(f);
        output.WriteLine(shown);
        Assert.DoesNotContain("SECRET", shown);
        Assert.DoesNotContain("alice", shown);
        Assert.Equal($"http://127.0.0.1:{port}/secure/model.bin", got.Uri);
        Assert.Equal("ModelNotFound", missing.ErrorId);
        // the lock's holder record names the purpose, never a command line (which could hold the URL)
        Assert.NotNull(holder);
        Assert.Equal("", holder!.CommandLine);
        Assert.Equal($"Get-ModelLocked http://127.0.0.1:{port}/secure/model.bin", holder.Purpose);
    }

    [Fact]
    public void Cmdlet_VerboseProgressErrorsAndListing_NeverShowUserInfoQueryOrHeaderValues()
    {
        var m = server.Add("c.bin", 300_000, seed: 32);
        var port = new Uri(server.BaseUrl).Port;
        using var ps = new PsSession();
        var r = ps.Run("""
            Get-ModelLocked $u -CacheDirectory $cache -Headers @{ Authorization = 'Bearer SECRET4' } -Verbose
            Get-ModelLocked $bad -CacheDirectory $cache -Headers @{ Authorization = 'Bearer SECRET4' } -Verbose
            Get-ModelCache -CacheDirectory $cache
            Get-ModelCache -CacheDirectory $cache -Uri $absent
            """, ("u", $"http://bob:SECRET5@127.0.0.1:{port}/c.bin?sig=SECRET6"), ("bad", $"http://bob:SECRET5@127.0.0.1:{port}/gone.bin?sig=SECRET6"),
            ("absent", $"http://bob:SECRET5@127.0.0.1:{port}/never.bin?sig=SECRET6"), ("cache", dir["cache"]));
        Assert.Contains("Bearer SECRET4", m.AuthorizationHeaders);
        Assert.Equal(2, r.Errors.Count);
        var text = r.Describe() + string.Join("\n", r.Errors.Select(e => $"{e} {e.TargetObject} {e.ErrorDetails?.Message} {e.ErrorDetails?.RecommendedAction}"))
            + string.Join("\n", r.Progress.Select(p => $"{p.Activity} {p.StatusDescription} {p.CurrentOperation}"))
            + string.Join("\n", r.Output.SelectMany(o => o.Properties.Select(p => $"{p.Name}={p.Value}")));
        output.WriteLine(text);
        Assert.DoesNotContain("SECRET", text);
        Assert.Equal("ModelNotFound", r.Errors[0].FullyQualifiedErrorId.Split(',')[0]);
        Assert.Equal($"http://127.0.0.1:{port}/gone.bin", r.Errors[0].TargetObject);
        Assert.Equal("ModelNotCached", r.Errors[1].FullyQualifiedErrorId.Split(',')[0]);
        Assert.Equal($"http://127.0.0.1:{port}/never.bin", r.Errors[1].TargetObject);
    }

    [Fact]
    public void Redirect_ToAnotherOrigin_DropsTheCallersHeaders_ButKeepsThemOnTheSameOrigin()
    {
        using var other = new ModelServer(); // another port: another origin
        var far = other.Add("far.bin", 200_000, seed: 33);
        var near = server.Add("near.bin", 150_000, seed: 34);
        server.Redirect("go-far", other.Url("far.bin"));
        server.Redirect("go-near", "/near.bin");
        var cache = new ModelCache(dir["cache"]);
        var headers = new Dictionary<string, string> { ["Authorization"] = "Bearer SECRET7", ["X-Api-Key"] = "SECRET8" };
        var a = Run(Fetcher(cache), new ModelRequest { Uri = server.Url("go-far"), Headers = headers, Sha256 = far.Sha256 });
        var b = Run(Fetcher(cache), new ModelRequest { Uri = server.Url("go-near"), Headers = headers, Sha256 = near.Sha256 });
        Assert.Equal(ModelSource.Downloaded, a.Source);
        Assert.Equal(ModelSource.Downloaded, b.Source);
        Assert.Equal(1, far.Requests);
        Assert.DoesNotContain(far.AllHeaders, h => h.Contains("SECRET")); // the other origin never saw them
        Assert.Contains(near.AllHeaders, h => h == "Authorization: Bearer SECRET7");
        Assert.Contains(near.AllHeaders, h => h == "X-Api-Key: SECRET8");
        Assert.Contains(server.RedirectHeaders, h => h == "X-Api-Key: SECRET8"); // the first hop is the origin given
    }

    [Fact]
    public void PrivateCache_SidecarsLocksAndPartialRecords_Are0600()
    {
        var m = server.Add("p.bin", 400_000, seed: 35);
        var cache = new ModelCache(dir["cache"]);
        var got = Run(Fetcher(cache), new ModelRequest { Uri = server.Url("p.bin") });
        var entry = cache.PathsFor(server.Url("p.bin"));
        Assert.Equal(0x180u, ModeOf(entry.MetadataPath));
        Assert.Equal(0x180u, ModeOf(entry.LockPath));
        Assert.Equal(0x1A4u, ModeOf(got.Path)); // the model itself stays readable: services load it as other users
        Assert.Null(cache.SharedGroup);
    }

    [Fact]
    public void SharedCache_SetgidGroupDirectory_GivesGroupModes_AndTrustsTheGroupsEntries()
    {
        if (!IsRoot("give the cache directory to a group")) return;
        var root = dir["shared"];
        Directory.CreateDirectory(root);
        Assert.Equal(0, Sh($"chgrp 65534 '{root}' && chmod 2770 '{root}'"));
        var m = server.Add("s.bin", 300_000, seed: 36);
        var cache = new ModelCache(root);
        Assert.Equal(65534u, cache.SharedGroup);
        var got = Run(Fetcher(cache), new ModelRequest { Uri = server.Url("s.bin") });
        var entry = cache.PathsFor(server.Url("s.bin"));
        Assert.Equal(0xDF8u, ModeOf(entry.Directory)); // 2770
        Assert.Equal(65534u, Native.Stat(entry.Directory)!.Gid);
        Assert.Equal(0x1B0u, ModeOf(entry.LockPath)); // 0660
        Assert.Equal(0x1A0u, ModeOf(entry.MetadataPath)); // 0640
        Assert.Equal(0x1A0u, ModeOf(got.Path));
        // a member of the group (a real unprivileged process) finds it in the cache and may read it
        Assert.Equal(0, Sh($"cat '{got.Path}' > /dev/null && test -r '{entry.MetadataPath}'", asNobody: true));
        // an entry a group member made is listed like our own
        var theirs = Path.Combine(root, new string('a', 32));
        Assert.Equal(0, Sh($"mkdir '{theirs}' && echo partial > '{theirs}/.0a0a0a0a0a0a.partial' && printf '%s' '{{\"uri\":\"http://x/y\",\"validator\":null,\"totalLength\":null,\"started\":\"2026-01-01T00:00:00Z\"}}' > '{theirs}/.0a0a0a0a0a0a.partial.json'", asNobody: true));
        Assert.Contains(cache.List(), e => e.Directory == theirs && e.State == "Partial");
    }

    [Fact]
    public void PlantedSidecarsAndSymlinks_InABadlySharedCache_NeverMakeRootDeleteOutsideIt()
    {
        if (!IsRoot("be the root that the attacker targets")) return;
        // The victim: root's file outside the cache, and a root directory holding another.
        var victim = dir.Write("victim/precious.txt", "root's data");
        var victimDir = Path.GetDirectoryName(victim)!;
        File.WriteAllText(Path.Combine(victimDir, "model.bin"), "root's other data");
        var root = dir["cache"];
        var cache = new ModelCache(root);
        server.Add("ok.bin", 100_000, seed: 37);
        var ours = Run(Fetcher(cache), new ModelRequest { Uri = server.Url("ok.bin") });
        // The mistake an admin makes: a world-writable (sticky) cache. The real attacker is uid 65534.
        Assert.Equal(0, Sh($"chmod 1777 '{root}'"));
        string k1 = new('b', 32), k2 = new('c', 32), k3 = new('d', 32);
        var planted = $$"""
            set -e
            cd '{{root}}'
            mkdir {{k1}}
            printf '%s' '{"uri":"http://x/a","name":"../../victim/precious.txt","length":11,"sha256":"00","eTag":null,"lastModified":null,"checksumGiven":false,"fetched":"2020-01-01T00:00:00Z","lastUsed":"2020-01-01T00:00:00Z","inode":0}' > {{k1}}/.entry.json
            echo x > {{k1}}/.1.partial
            ln -s '{{victimDir}}' {{k2}}
            mkdir {{k3}}
            printf '%s' '{"uri":"http://x/c","name":"model.bin","length":1,"sha256":"00","eTag":null,"lastModified":null,"checksumGiven":false,"fetched":"2020-01-01T00:00:00Z","lastUsed":"2020-01-01T00:00:00Z","inode":0}' > {{k3}}/.entry.json
            ln -s '{{victimDir}}/model.bin' {{k3}}/model.bin
            """;
        Assert.Equal(0, Sh(planted, asNobody: true));
        // And into root's own entry directory (as a group member of a shared cache could), a sidecar naming a path.
        var ourEntry = Path.GetDirectoryName(ours.Path)!;
        File.WriteAllText(Path.Combine(ourEntry, ".entry.json"),
            File.ReadAllText(Path.Combine(ourEntry, ".entry.json")).Replace("\"name\": \"ok.bin\"", "\"name\": \"../../victim/precious.txt\""));

        var rep = new RecordingReporter();
        var listed = cache.List(rep);
        var removed = cache.Evict(0, reporter: rep);
        output.WriteLine(rep.All);
        Assert.True(File.Exists(victim), "root deleted a file outside the cache");
        Assert.Equal("root's data", File.ReadAllText(victim));
        Assert.True(File.Exists(Path.Combine(victimDir, "model.bin")), "root deleted a file through a planted symlink");
        Assert.DoesNotContain(listed, e => e.Directory.EndsWith(k1) || e.Directory.EndsWith(k2) || e.Directory.EndsWith(k3));
        Assert.All(removed, e => Assert.StartsWith(root + "/", e.Path));
        Assert.Contains("owned by uid 65534", rep.All);
    }
}
