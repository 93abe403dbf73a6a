using System.Management.Automation;
using System.Security.Cryptography;
using System.Text.Json;
using SafeDeploy.Tests.Deployment;
using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.JobStatus;

public class JobStatusCmdletTests
{
    static JsonElement Json(string? text) => JsonDocument.Parse(text ?? throw new Xunit.Sdk.XunitException("file missing on the remote")).RootElement;

    /// <summary>Every file of the work tree plus .git/index and HEAD, hashed: what the user would notice changing.</summary>
    static Dictionary<string, string> Snapshot(string clone)
    {
        var files = Directory.EnumerateFiles(clone, "*", SearchOption.AllDirectories)
            .Where(f => !f.Contains("/.git/")).ToList();
        files.Add(Path.Combine(clone, ".git", "index"));
        files.Add(Path.Combine(clone, ".git", "HEAD"));
        files.Add(Path.Combine(clone, ".git", "refs", "heads", "main"));
        return files.ToDictionary(f => f, f => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f))));
    }

    [Fact]
    public void Sync_WritesEveryField_AndLeavesADirtyCloneByteIdentical()
    {
        using var remote = new GitRemote();
        var clone = remote.Clone("c1");
        File.AppendAllText(Path.Combine(clone, "README.md"), "a local edit\n");
        File.WriteAllText(Path.Combine(clone, "notes.txt"), "untracked\n");
        File.WriteAllText(Path.Combine(clone, "staged.txt"), "staged\n");
        GitRemote.Git(clone, "add", "staged.txt");
        File.WriteAllText(Path.Combine(clone, ".git", "index.lock"), ""); // a person's `git add` in progress does not block us
        var before = Snapshot(clone);

        using var ps = new PsSession();
        var r = ps.Run("Sync-JobStatus -Repository $repo -JobName train-7 -Status running -Progress 40 -Message 'epoch 4' -Data @{ gpus = 8; nodes = @('n1','n2') }", ("repo", clone));

        Assert.True(r.AllErrors.Count() == 0, r.Describe());
        Assert.Equal(true, r.Prop(0, "Pushed"));
        Assert.Equal(false, r.Prop(0, "Queued"));
        Assert.Equal("running", r.Prop(0, "Status"));
        var commit = (string)r.Prop(0, "Commit")!;
        Assert.Equal(commit, GitRemote.Git(remote.BarePath, "rev-parse", "main").Trim());
        var status = Json(remote.Show("data/status/train-7.json"));
        Assert.Equal("train-7", status.GetProperty("job_name").GetString());
        Assert.Equal("running", status.GetProperty("status").GetString());
        Assert.Equal(40, status.GetProperty("progress").GetInt32());
        Assert.Equal("epoch 4", status.GetProperty("message").GetString());
        Assert.EndsWith("Z", status.GetProperty("updated_at").GetString());
        Assert.True(DateTimeOffset.UtcNow - status.GetProperty("updated_at").GetDateTimeOffset() < TimeSpan.FromHours(1));
        Assert.Equal(Environment.MachineName, status.GetProperty("host").GetString());
        Assert.Equal(8, status.GetProperty("data").GetProperty("gpus").GetInt32());
        Assert.Equal("n2", status.GetProperty("data").GetProperty("nodes")[1].GetString());
        Assert.NotNull(remote.Show("data/status/other-team.json")); // others' files are kept
        Assert.Equal(["data/status/train-7.json"], GitRemote.Git(remote.BarePath, "show", "--name-only", "--format=", "main").Split('\n', StringSplitOptions.RemoveEmptyEntries));

        Assert.Equal(before, Snapshot(clone));
        Assert.Equal(" M README.md\nA  staged.txt\n?? notes.txt\n", GitRemote.Git(clone, "-c", "core.optionalLocks=false", "status", "--porcelain").Replace("\n?? notes.txt", "\n?? notes.txt"));
    }

    [Fact]
    public void Sync_InvalidJobName_IsRejectedWithInvalidArgument_AndNothingIsWritten()
    {
        using var remote = new GitRemote();
        var clone = remote.Clone("c1");
        var tipBefore = GitRemote.Git(remote.BarePath, "rev-parse", "main");
        using var ps = new PsSession();
        var r = ps.Run("Sync-JobStatus -Repository $repo -JobName '../../etc/x' -Status running", ("repo", clone));

        var e = Assert.Single(r.AllErrors);
        Assert.StartsWith("InvalidJobName,", e.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.InvalidArgument, e.CategoryInfo.Category);
        Assert.Equal("../../etc/x", e.TargetObject);
        Assert.Empty(r.Output);
        Assert.False(Directory.Exists(Path.Combine(clone, ".git", "safedeploy", "outbox")));
        Assert.False(File.Exists(Path.Combine(remote.Root, "etc", "x.json")));
        Assert.Equal(tipBefore, GitRemote.Git(remote.BarePath, "rev-parse", "main"));

        foreach (var bad in new[] { ".hidden", "a..b", "a/b", "x y" })
            Assert.StartsWith("InvalidJobName,", Assert.Single(ps.Run("Sync-JobStatus -Repository $repo -JobName $n -Status running", ("repo", clone), ("n", bad)).AllErrors).FullyQualifiedErrorId);
    }

    [Fact]
    public void Sync_RepositoryThatIsNotARepo_NamesThatPath()
    {
        using var dir = new TempDir("notrepo");
        using var ps = new PsSession();
        var r = ps.Run("Sync-JobStatus -Repository $repo -JobName j -Status running", ("repo", dir.Path));
        var e = Assert.Single(r.AllErrors);
        Assert.StartsWith("NotAGitRepository,", e.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.InvalidArgument, e.CategoryInfo.Category);
        Assert.Equal(dir.Path, e.TargetObject);
        Assert.Empty(Directory.GetFileSystemEntries(dir.Path));

        var missing = dir["nowhere"];
        var m = Assert.Single(ps.Run("Get-JobStatus -Repository $repo", ("repo", missing)).AllErrors);
        Assert.StartsWith("RepositoryNotFound,", m.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.ObjectNotFound, m.CategoryInfo.Category);
        Assert.Equal(missing, m.TargetObject);
    }

    [Fact]
    public void Sync_RemoteDown_QueuesWithAWarning_AndTheCronFormPushesItLater()
    {
        using var remote = new GitRemote();
        var clone = remote.Clone("c1");
        GitRemote.Git(clone, "remote", "set-url", "origin", Path.Combine(remote.Root, "gone.git"));
        using var ps = new PsSession();
        var r = ps.Run("Sync-JobStatus -Repository $repo -JobName nightly -Status completed -Message done", ("repo", clone));
        Assert.True(r.AllErrors.Count() == 0, r.Describe());
        Assert.Equal(true, r.Prop(0, "Queued"));
        Assert.Equal(false, r.Prop(0, "Pushed"));
        Assert.Contains(r.Warnings, w => w.StartsWith("Queued:") && w.Contains("gone.git"));
        Assert.Null(remote.Show("data/status/nightly.json"));
        // Get-JobStatus shows it as pending meanwhile.
        var pending = ps.Run("Get-JobStatus -Repository $repo -JobName nightly", ("repo", clone));
        Assert.Equal(true, pending.Prop(0, "Pending"));

        GitRemote.Git(clone, "remote", "set-url", "origin", remote.BarePath);
        var cron = ps.Run("Sync-JobStatus -Repository $repo", ("repo", clone));
        Assert.True(cron.AllErrors.Count() == 0, cron.Describe());
        Assert.Equal("nightly", cron.Prop(0, "JobName"));
        Assert.Equal(true, cron.Prop(0, "Pushed"));
        Assert.Equal("completed", Json(remote.Show("data/status/nightly.json")).GetProperty("status").GetString());
        Assert.Empty(Directory.GetFiles(Path.Combine(clone, ".git", "safedeploy", "outbox")));
        Assert.Empty(ps.Run("Sync-JobStatus -Repository $repo", ("repo", clone)).Output); // nothing left to push
    }

    [Fact]
    public void Sync_LockHeldByFlockPastTheTimeout_Queues_AndTheNextCallPushesBothInOneCommit()
    {
        using var remote = new GitRemote();
        var clone = remote.Clone("c1");
        var lockFile = Path.Combine(clone, ".git", "safedeploy", "lock");
        Directory.CreateDirectory(Path.GetDirectoryName(lockFile)!);
        var ready = Path.Combine(remote.Root, "held");
        using (var holder = HostProcess.StartProgram("flock", [lockFile, "sh", "-c", $"touch '{ready}'; sleep 60"]))
        {
            for (int i = 0; i < 500 && !File.Exists(ready); i++) Thread.Sleep(10);
            Assert.True(File.Exists(ready));
            using var ps = new PsSession();
            var r = ps.Run("Sync-JobStatus -Repository $repo -JobName a -Status running -LockTimeoutSec 1", ("repo", clone));
            Assert.True(r.AllErrors.Count() == 0, r.Describe());
            Assert.Equal(true, r.Prop(0, "Queued"));
            Assert.Contains(r.Warnings, w => w.StartsWith("Queued:") && w.Contains("lock"));
            Assert.Null(remote.Show("data/status/a.json"));
            holder.Kill();
        }
        using var ps2 = new PsSession();
        var next = ps2.Run("Sync-JobStatus -Repository $repo -JobName b -Status running", ("repo", clone));
        Assert.Equal(true, next.Prop(0, "Pushed"));
        Assert.NotNull(remote.Show("data/status/a.json"));
        Assert.NotNull(remote.Show("data/status/b.json"));
        var changed = GitRemote.Git(remote.BarePath, "show", "--name-only", "--format=", "main").Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["data/status/a.json", "data/status/b.json"], changed.Order());
    }

    [Fact]
    public void Sync_RealResultsPiped_BindTheirEnumStatusByName()
    {
        // Invoke-SafeDeploy's results carry a DeployStatus enum, a rollout's a HostStatus: -Status (a string) takes its name.
        using var remote = new GitRemote();
        var clone = remote.Clone("c1");
        using var box = new Sandbox();
        var ok = box.Write("ok.yaml", "name: deploy-ok\nphases:\n  - name: mark\n    run: { command: 'true', undo: 'true' }\n");
        var bad = box.Write("bad.yaml", "name: deploy-bad\nphases:\n  - name: mark\n    run: { command: 'true', undo: 'true' }\n  - name: boom\n    dependsOn: mark\n    run: exit 3\n");
        using var ps = new PsSession();
        var r = ps.Run("""
            $results = @(Invoke-SafeDeploy -Manifest $ok -Root $root -StateDirectory $state) +
                       @(Invoke-SafeDeploy -Manifest $bad -Root $root -StateDirectory $state -ErrorAction SilentlyContinue)
            $hostStatus = $results[0].Status.GetType().Assembly.GetType('SafeDeploy.Engine.Fleet.HostStatus')
            $results += [pscustomobject]@{ Name = 'deploy-host'; Status = [Enum]::Parse($hostStatus, 'RollbackFailed') }
            $results | Sync-JobStatus -Repository $repo
            """, ("ok", ok), ("bad", bad), ("root", box.Root), ("state", box.State), ("repo", clone));
        Assert.True(r.AllErrors.Count() == 0, r.Describe());
        Assert.Equal(["completed", "failed", "failed"], r.Output.Select(o => (string)o.Properties["Status"].Value));
        Assert.Equal("completed", Json(remote.Show("data/status/deploy-ok.json")).GetProperty("status").GetString());
        Assert.Equal("failed", Json(remote.Show("data/status/deploy-bad.json")).GetProperty("status").GetString());
        Assert.Equal("failed", Json(remote.Show("data/status/deploy-host.json")).GetProperty("status").GetString());
    }

    [Fact]
    public void Sync_ARolloutsHostResultsPiped_KeepOneStatusPerHost_UnreachableFails_NotStartedIsCancelled()
    {
        // A rollout writes one HostDeployResult per host (Name, HostName, a HostStatus): each host gets its own job file.
        using var remote = new GitRemote();
        var clone = remote.Clone("c1");
        using var box = new Sandbox();
        var ok = box.Write("ok.yaml", "name: shim\nphases:\n  - name: mark\n    run: { command: 'true', undo: 'true' }\n");
        using var ps = new PsSession();
        var r = ps.Run("""
            $type = (Invoke-SafeDeploy -Manifest $ok -Root $root -StateDirectory $state).Status.GetType().Assembly.GetType('SafeDeploy.Engine.Fleet.HostStatus')
            @(
                [pscustomobject]@{ Name = 'shim'; HostName = 'gpu01'; Status = [Enum]::Parse($type, 'Succeeded') }
                [pscustomobject]@{ Name = 'shim'; HostName = 'gpu02'; Status = [Enum]::Parse($type, 'Unreachable') }
                [pscustomobject]@{ Name = 'shim'; HostName = 'root@10.0.0.5'; Status = [Enum]::Parse($type, 'NotStarted') }
                [pscustomobject]@{ Name = 'shim'; Status = 'Succeeded' }
            ) | Sync-JobStatus -Repository $repo
            """, ("ok", ok), ("root", box.Root), ("state", box.State), ("repo", clone));
        Assert.True(r.AllErrors.Count() == 0, r.Describe());
        Assert.Equal(["shim.gpu01:completed", "shim.gpu02:failed", "shim.root_10.0.0.5:cancelled", "shim:completed"],
            r.Output.Select(o => $"{o.Properties["JobName"].Value}:{o.Properties["Status"].Value}"));
        var gpu01 = Json(remote.Show("data/status/shim.gpu01.json"));
        Assert.Equal(("completed", "gpu01"), (gpu01.GetProperty("status").GetString(), gpu01.GetProperty("host").GetString()));
        Assert.Equal("failed", Json(remote.Show("data/status/shim.gpu02.json")).GetProperty("status").GetString());
        var odd = Json(remote.Show("data/status/shim.root_10.0.0.5.json"));
        Assert.Equal(("cancelled", "root@10.0.0.5"), (odd.GetProperty("status").GetString(), odd.GetProperty("host").GetString()));
        // An object without a host name (a DeployResult at home) keeps the job's own name and this machine as its host.
        Assert.Equal(Environment.MachineName, Json(remote.Show("data/status/shim.json")).GetProperty("host").GetString());
    }

    [Fact]
    public void Sync_DeployResultsPiped_MapToCompletedAndFailed_AndGetJobStatusReadsThemBack()
    {
        using var remote = new GitRemote();
        var clone = remote.Clone("c1");
        using var ps = new PsSession();
        var r = ps.Run("""
            [pscustomobject]@{ Name = 'deploy-web'; Status = 'Succeeded' },
            [pscustomobject]@{ Name = 'deploy-db'; Status = 'RolledBack' },
            [pscustomobject]@{ Name = 'deploy-gpu'; Status = 'RollbackFailed' } | Sync-JobStatus -Repository $repo
            """, ("repo", clone));
        Assert.True(r.AllErrors.Count() == 0, r.Describe());
        Assert.Equal(["completed", "failed", "failed"], r.Output.Select(o => (string)o.Properties["Status"].Value));
        Assert.Equal("completed", Json(remote.Show("data/status/deploy-web.json")).GetProperty("status").GetString());
        Assert.Equal("failed", Json(remote.Show("data/status/deploy-db.json")).GetProperty("status").GetString());

        var read = ps.Run("Get-JobStatus -Repository $repo -JobName 'deploy-*'", ("repo", clone));
        Assert.Equal(["deploy-db", "deploy-gpu", "deploy-web"], read.Output.Select(o => (string)o.Properties["JobName"].Value));
        Assert.Equal(false, read.Prop(0, "Pending"));
        var missing = Assert.Single(ps.Run("Get-JobStatus -Repository $repo -JobName nope", ("repo", clone)).AllErrors);
        Assert.StartsWith("JobStatusNotFound,", missing.FullyQualifiedErrorId);
        Assert.Equal("nope", missing.TargetObject);
        var badStatus = Assert.Single(ps.Run("Sync-JobStatus -Repository $repo -JobName x -Status bogus", ("repo", clone)).AllErrors);
        Assert.Contains("ParameterArgumentValidationError", badStatus.FullyQualifiedErrorId);
    }

    [Fact]
    public void Sync_WhatIf_WritesNothing()
    {
        using var remote = new GitRemote();
        var clone = remote.Clone("c1");
        using var ps = new PsSession();
        var r = ps.Run("Sync-JobStatus -Repository $repo -JobName j -Status running -WhatIf", ("repo", clone));
        Assert.Empty(r.Output);
        Assert.False(Directory.Exists(Path.Combine(clone, ".git", "safedeploy")));
        Assert.Null(remote.Show("data/status/j.json"));
    }
}
