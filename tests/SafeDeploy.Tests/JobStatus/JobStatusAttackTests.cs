using System.Management.Automation;
using System.Text.Json;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.JobStatus;
using SafeDeploy.Engine.Platform;
using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.JobStatus;

/// <summary>
/// Another local user (a real uid-65534 process) who can write in a clone's .git/safedeploy — a clone shared by a
/// group — plants outbox records and symlinks; root then runs Sync-JobStatus. Git must go only where root said, and no
/// file outside the state directory may be written, moved or deleted.
/// </summary>
public class JobStatusAttackTests
{
    /// <summary>
    /// A clone whose .git/safedeploy and outbox exist and are writable by everyone (as a group-shared clone is by its
    /// group); <paramref name="outboxMode"/> 1777 makes the outbox a sticky drop directory, where others' files are read.
    /// </summary>
    static (string Clone, string State, string Outbox) SharedClone(GitRemote remote, string outboxMode = "1777")
    {
        var clone = remote.Clone("c1");
        Assert.True(JobStatusSync.Sync(new JobStatusUpdate { JobName = "seed", Status = "queued" }, new JobStatusOptions { Repository = clone, NoPush = true }).Queued);
        var state = Path.Combine(clone, ".git", "safedeploy");
        var outbox = Path.Combine(state, "outbox");
        Programs.Run("chmod", "0777", state);
        Programs.Run("chmod", outboxMode, outbox);
        return (clone, state, outbox);
    }

    /// <summary>An outbox record as SafeDeploy writes one, with fields of the attacker's choosing; its file name.</summary>
    static (string Name, string Json) Record(string job, string remote = "origin", string branch = "main", string dir = "data/status", string id = "00112233445566aa")
    {
        long ticks = DateTimeOffset.UtcNow.AddMinutes(1).UtcTicks;
        var content = $"{{\"job_name\":\"{job}\",\"status\":\"running\",\"updated_at\":\"{DateTime.UtcNow.AddMinutes(1):yyyy-MM-ddTHH:mm:ss.fffffffZ}\"}}\n";
        var json = JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["id"] = id, ["job_name"] = job, ["status"] = "running", ["remote"] = remote, ["branch"] = branch,
            ["status_directory"] = dir, ["updated_at_ticks"] = ticks, ["content"] = content,
        });
        return ($"{job}~{ticks:D19}~{id}.json", json);
    }

    static void Plant(string outbox, (string Name, string Json) record) =>
        Attacker.Run($"printf '%s' {Attacker.Q(record.Json)} > {Attacker.Q(Path.Combine(outbox, record.Name))}");

    [Fact]
    public void PlantedRecords_NamingAnotherRepositoryBranchOrDirectory_NeverSteerGitThere()
    {
        using var remote = new GitRemote();
        var (clone, _, outbox) = SharedClone(remote);
        var victim = Path.Combine(remote.Root, "victim.git"); // root's other repository, which the attacker cannot write
        GitRemote.Git(remote.Root, "init", "-q", "--bare", "-b", "main", victim);
        GitRemote.Git(clone, "remote", "add", "backup", victim); // a remote the clone's owner configured for something else
        var planted = new[]
        {
            Record("evil-a", remote: "backup", id: "aaaaaaaaaaaaaaa1"),
            Record("evil-b", branch: "production", id: "aaaaaaaaaaaaaaa2"),
            Record("evil-c", dir: "src", id: "aaaaaaaaaaaaaaa3"),
        };
        foreach (var r in planted) Plant(outbox, r);

        var rec = new Recorder();
        var results = JobStatusSync.Flush(new JobStatusOptions { Repository = clone, Reporter = rec });

        Assert.Equal("", GitRemote.Git(victim, "for-each-ref").Trim()); // nothing was pushed into the other repository
        Assert.NotEqual(0, GitRemote.TryGit(remote.BarePath, "rev-parse", "--verify", "refs/heads/production").ExitCode);
        Assert.Null(remote.Show("src/evil-c.json"));
        Assert.Null(remote.Show("data/status/evil-a.json"));
        Assert.NotNull(remote.Show("data/status/seed.json")); // the caller's own target was pushed
        Assert.Equal(["seed"], results.Select(r => r.JobName));
        Assert.All(planted, r => Assert.True(File.Exists(Path.Combine(outbox, r.Name)), r.Name + " was removed"));
        Assert.Contains(rec.Warnings, w => w.Contains("production") && w.Contains("left there"));
        Assert.Contains(rec.Warnings, w => w.Contains("backup/main") && w.Contains("left there"));
    }

    [Fact]
    public void PlantedRecord_InAnOutboxOthersCanWrite_IsRefusedAsAnotherUsersFile()
    {
        using var remote = new GitRemote();
        var (clone, _, outbox) = SharedClone(remote, outboxMode: "0777");
        var record = Record("evil-d");
        Plant(outbox, record);

        var rec = new Recorder();
        var results = JobStatusSync.Flush(new JobStatusOptions { Repository = clone, Reporter = rec });

        Assert.Null(remote.Show("data/status/evil-d.json"));
        Assert.Equal(["seed"], results.Select(r => r.JobName));
        Assert.True(File.Exists(Path.Combine(outbox, record.Name)));
        Assert.Contains(rec.Warnings, w => w.Contains(record.Name) && w.Contains("another user"));
    }

    [Fact]
    public void PlantedRecord_WithAPathForItsId_IsRefused_AndNothingIsMovedOutside()
    {
        using var remote = new GitRemote();
        var (clone, _, outbox) = SharedClone(remote);
        var escape = Path.Combine(remote.Root, "escaped");
        // Old code moved a pushed record of another writer to done/<id>~<commit>: an id with '..' sends it anywhere.
        var rel = Path.GetRelativePath(Path.Combine(Path.GetDirectoryName(outbox)!, "done"), escape);
        var record = Record("evil-id", id: rel);
        var fileName = $"evil-id~{record.Name.Split('~')[1]}~x.json";
        Attacker.Run($"printf '%s' {Attacker.Q(record.Json)} > {Attacker.Q(Path.Combine(outbox, fileName))}");

        var rec = new Recorder();
        JobStatusSync.Flush(new JobStatusOptions { Repository = clone, Reporter = rec });

        Assert.Empty(Directory.GetFiles(remote.Root, "escaped*"));
        Assert.True(File.Exists(Path.Combine(outbox, fileName)));
        Assert.Null(remote.Show("data/status/evil-id.json"));
        Assert.Contains(rec.Warnings, w => w.Contains(fileName) && w.Contains("not used"));
    }

    [Fact]
    public void PlantedReceiptsSymlink_NeverMakesRootDeleteFilesElsewhere()
    {
        using var remote = new GitRemote();
        var (clone, state, _) = SharedClone(remote);
        Programs.Run("chmod", "0777", state);
        using var victim = new TempDir("victim");
        var precious = victim.Write("precious.conf", "keep me\n");
        File.SetLastWriteTimeUtc(precious, DateTime.UtcNow.AddDays(-3)); // older than a receipt is kept
        Attacker.Run($"cd {Attacker.Q(state)}; rm -rf done; ln -s {Attacker.Q(victim.Path)} done");

        var rec = new Recorder();
        var r = JobStatusSync.Sync(new JobStatusUpdate { JobName = "j", Status = "running" }, new JobStatusOptions { Repository = clone, Reporter = rec });

        Assert.True(r.Pushed);
        Assert.True(File.Exists(precious), "root deleted a file through a planted symlink");
        Assert.Equal("keep me\n", File.ReadAllText(precious));
        Assert.Contains(rec.Warnings, w => w.Contains("not pruned") && w.Contains("symbolic link"));
    }

    [Fact]
    public void PlantedScratchSymlink_NeverMakesRootOverwriteAFile()
    {
        using var remote = new GitRemote();
        var (clone, state, outbox) = SharedClone(remote);
        Programs.Run("chmod", "0777", state);
        using var victim = new TempDir("victim");
        var precious = victim.Write("shadow", "root:secret\n");
        // The attacker reads the queued update's id from its file name and links every scratch name SafeDeploy ever used to root's file.
        Attacker.Run($"""
            cd {Attacker.Q(state)}
            mkdir -p blobs
            for f in outbox/*.json; do id={"${f##*~}"}; id={"${id%.json}"}; ln -s {Attacker.Q(precious)} blobs/$id; done
            ln -s {Attacker.Q(precious)} index
            """);

        var r = JobStatusSync.Flush(new JobStatusOptions { Repository = clone });

        Assert.Equal("root:secret\n", File.ReadAllText(precious));
        Assert.True(Assert.Single(r).Pushed);
        Assert.NotNull(remote.Show("data/status/seed.json"));
    }

    [Fact]
    public void PlantedOutboxSymlink_IsASecurityError_AndNothingIsWrittenThere()
    {
        using var remote = new GitRemote();
        var (clone, state, _) = SharedClone(remote);
        Programs.Run("chmod", "0777", state);
        using var victim = new TempDir("victim");
        Attacker.Run($"cd {Attacker.Q(state)}; mv outbox outbox.old; ln -s {Attacker.Q(victim.Path)} outbox");

        using var ps = new PsSession();
        var r = ps.Run("Sync-JobStatus -Repository $repo -JobName j -Status running", ("repo", clone));

        var e = Assert.Single(r.AllErrors);
        Assert.StartsWith("SymlinkRefused", e.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.SecurityError, e.CategoryInfo.Category);
        Assert.Empty(Directory.EnumerateFileSystemEntries(victim.Path));
    }

    [Fact]
    public void ValuesStartingWithADash_AreValuesNeverOptions_AgainstARealRemote()
    {
        using var remote = new GitRemote();
        var clone = remote.Clone("c1");
        var marker = Path.Combine(remote.Root, "pwned");
        using var ps = new PsSession();
        var r = ps.Run("""
            Sync-JobStatus -Repository $repo -JobName '--dry-run' -Status running -StatusDirectory '-s'
            Get-JobStatus -Repository $repo -JobName '--dry-run' -StatusDirectory '-s' -Fetch
            """, ("repo", clone));
        Assert.True(!r.AllErrors.Any(), r.Describe());
        Assert.Equal(true, r.Prop(0, "Pushed"));
        Assert.Equal("--dry-run", r.Prop(1, "JobName"));
        Assert.Equal(false, r.Prop(1, "Pending"));
        Assert.Contains("\"job_name\": \"--dry-run\"", remote.Show("-s/--dry-run.json"));

        var bad = ps.Run("""
            Sync-JobStatus -Repository $repo -JobName j -Status running -Branch $evil
            Get-JobStatus -Repository $repo -Remote $evil -Fetch
            """, ("repo", clone), ("evil", $"--upload-pack=touch {marker}"));
        Assert.Equal(2, bad.Errors.Count);
        Assert.StartsWith("InvalidBranch", bad.Errors[0].FullyQualifiedErrorId);
        Assert.StartsWith("InvalidRemote", bad.Errors[1].FullyQualifiedErrorId);
        Assert.All(bad.Errors, e => Assert.Equal(ErrorCategory.InvalidArgument, e.CategoryInfo.Category));
        Assert.False(File.Exists(marker));
        Assert.Null(remote.Show("data/status/j.json"));
    }
}
