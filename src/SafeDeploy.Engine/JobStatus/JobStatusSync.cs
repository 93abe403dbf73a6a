using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Locking;

namespace SafeDeploy.Engine.JobStatus;

/// <summary>
/// Gets job status updates into the dashboard repository's remote branch without ever losing one. Each update is first
/// written atomically to the clone's outbox (.git/safedeploy/outbox); then, under the clone's flock, the outbox is
/// pushed as one commit built with git plumbing and a private index (GIT_INDEX_FILE), so the user's work tree, index
/// and branches are never touched (<see cref="OutboxPusher"/>). A non-fast-forward reject means another clone pushed
/// first: fetch, rebuild the commit on the new tip, retry with jittered backoff. No stash, no --force, no reset.
/// Git goes only where the caller's options say (remote, branch, status directory): records in the outbox for other
/// targets wait for a call that names them.
/// </summary>
internal static class JobStatusSync
{
    /// <summary>Records one update and pushes it (with whatever else waits in the outbox for the same target).</summary>
    public static JobStatusResult Sync(JobStatusUpdate update, JobStatusOptions options, CancellationToken token = default)
    {
        JobName.Validate(update.JobName);
        update = update with { Status = JobStatusNames.Normalize(update.Status) };
        if (update.Progress is < 0 or > 100)
            throw new SafeDeployException("InvalidProgress", ErrorKind.InvalidArgument, update.Progress,
                $"Progress {update.Progress} is outside 0..100.", "Pass a percentage from 0 to 100.");
        var (repo, target) = Open(options, token);
        var outbox = new Outbox(repo.StateDirectory);
        var entry = outbox.Add(update, StatusJson.Serialize(update), target);
        options.Reporter.Verbose($"Recorded {update.JobName} = {update.Status} in the outbox of '{repo.Path}'.");
        var result = new JobStatusResult { JobName = update.JobName, Status = update.Status, Queued = true, Repository = repo.Path, Branch = target.Branch };
        if (options.NoPush) return result;

        // Wait for the clone's lock while watching the outbox: when the holder pushes our update along with its own
        // (the usual case under contention), we are done without taking the lock at all.
        var lockPath = LockPath(repo, outbox);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        FileLock? held;
        bool told = false;
        while ((held = FileLock.TryAcquire(lockPath, new LockOptions { Reporter = options.Reporter, Purpose = $"Sync-JobStatus {update.JobName}" })) is null)
        {
            if (!outbox.Contains(entry)) return PushedByOther(outbox, entry, result, options);
            if (clock.Elapsed >= options.LockTimeout)
            {
                options.Reporter.Warning($"Queued: timed out after {options.LockTimeout.TotalSeconds:0.###} s waiting for lock '{lockPath}', held by {LockInspector.Inspect(lockPath).Describe()}. {KeptIn(repo)}");
                return result;
            }
            if (!told) { options.Reporter.Verbose($"Waiting for lock '{lockPath}' (another Sync-JobStatus is pushing)."); told = true; }
            if (token.WaitHandle.WaitOne(25)) token.ThrowIfCancellationRequested();
        }
        using var _ = held;
        if (!outbox.Contains(entry)) return PushedByOther(outbox, entry, result, options);
        var mine = new OutboxPusher(repo, outbox, options, target, token).Run(entry);
        if (!mine.Pushed || !mine.Entries.Any(e => e.Id == entry.Id)) return result with { Attempts = mine.Attempts };
        return result with { Commit = mine.Commit, Pushed = true, Queued = false, Attempts = mine.Attempts };
    }

    /// <summary>The cron form: pushes whatever waits in the outbox for the options' target, coalesced into one commit.</summary>
    public static IReadOnlyList<JobStatusResult> Flush(JobStatusOptions options, CancellationToken token = default)
    {
        var (repo, target) = Open(options, token);
        var outbox = new Outbox(repo.StateDirectory);
        if (outbox.ReadAll().Count == 0) { options.Reporter.Verbose($"Nothing waits in the outbox of '{repo.Path}'."); return []; }
        using var held = TryLock(repo, outbox, options, token);
        if (held is null)
            return Outbox.Newest(outbox.ReadFor(target)).Select(e => Result(e, repo, target, false, null, 0)).ToList();
        var o = new OutboxPusher(repo, outbox, options, target, token).Run(null);
        return Outbox.Newest(o.Entries).Select(e => Result(e, repo, target, o.Pushed, o.Commit, o.Attempts)).ToList();
    }

    static JobStatusResult Result(OutboxEntry e, GitRepository repo, OutboxTarget target, bool pushed, string? commit, int attempts) => new()
    {
        JobName = e.JobName, Status = e.Status, Commit = pushed ? commit : null, Pushed = pushed, Queued = !pushed,
        Attempts = attempts, Repository = repo.Path, Branch = target.Branch,
    };

    /// <summary>Validates the options and opens the clone; the target is what the caller named (the branch resolved).</summary>
    internal static (GitRepository Repo, OutboxTarget Target) Open(JobStatusOptions options, CancellationToken token)
    {
        var statusDir = JobName.ValidateRepoDirectory(options.StatusDirectory);
        JobName.ValidateRefName(options.Remote, "Remote");
        if (options.Branch is not null) JobName.ValidateRefName(options.Branch, "Branch");
        var repo = GitRepository.Open(options, token);
        var branch = options.Branch ?? repo.ResolveBranch(options.Remote, token);
        return (repo, new OutboxTarget(options.Remote, branch, statusDir));
    }

    static JobStatusResult PushedByOther(Outbox outbox, OutboxEntry entry, JobStatusResult result, JobStatusOptions options)
    {
        var commit = outbox.TakeReceipt(entry);
        options.Reporter.Verbose($"{entry.JobName} was pushed by another process{(commit is null ? "" : " in " + commit)}.");
        return result with { Commit = commit, Pushed = true, Queued = false };
    }

    static string LockPath(GitRepository repo, Outbox outbox)
    {
        outbox.EnsureStateDirectory();
        return Path.Combine(repo.StateDirectory, "lock");
    }

    internal static string KeptIn(GitRepository repo) =>
        $"The update is kept in the outbox of '{repo.Path}' and goes out with the next Sync-JobStatus on this clone (or run: Sync-JobStatus -Repository '{repo.Path}').";

    static FileLock? TryLock(GitRepository repo, Outbox outbox, JobStatusOptions options, CancellationToken token)
    {
        var lockPath = LockPath(repo, outbox);
        try
        {
            return FileLock.Acquire(lockPath, new LockOptions { Timeout = options.LockTimeout, Reporter = options.Reporter, Purpose = "Sync-JobStatus (outbox)" }, token);
        }
        catch (SafeDeployException e) when (e.ErrorId == "LockTimeout")
        {
            options.Reporter.Warning($"Queued: {e.Message} {KeptIn(repo)}");
            return null;
        }
    }
}
