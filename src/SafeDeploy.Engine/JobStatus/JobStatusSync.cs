using System.Text;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Locking;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.JobStatus;

/// <summary>
/// Gets job status updates into the dashboard repository's remote branch without ever losing one. Each update is first
/// written atomically to the clone's outbox (.git/safedeploy/outbox); then, under the clone's flock, the outbox is
/// pushed as one commit built with git plumbing and a private index (GIT_INDEX_FILE), so the user's work tree, index
/// and branches are never touched. A non-fast-forward reject means another clone pushed first: fetch, rebuild the
/// commit on the new tip, retry with jittered backoff. No stash, no --force, no reset.
/// </summary>
public static class JobStatusSync
{
    /// <summary>Records one update and pushes it (with whatever else waits in the outbox).</summary>
    public static JobStatusResult Sync(JobStatusUpdate update, JobStatusOptions options, CancellationToken token = default)
    {
        JobName.Validate(update.JobName);
        update = update with { Status = JobStatusNames.Normalize(update.Status) };
        if (update.Progress is < 0 or > 100)
            throw new SafeDeployException("InvalidProgress", ErrorKind.InvalidArgument, update.Progress,
                $"Progress {update.Progress} is outside 0..100.", "Pass a percentage from 0 to 100.");
        var (repo, statusDir, branch) = Open(options, token);
        var outbox = new Outbox(repo.StateDirectory);
        var entry = outbox.Add(update, StatusJson.Serialize(update), options.Remote, branch, statusDir);
        options.Reporter.Verbose($"Recorded {update.JobName} = {update.Status} in the outbox of '{repo.Path}'.");
        var result = new JobStatusResult { JobName = update.JobName, Status = update.Status, Queued = true, Repository = repo.Path, Branch = branch };
        if (options.NoPush) return result;

        // Wait for the clone's lock while watching the outbox: when the holder pushes our update along with its own
        // (the usual case under contention), we are done without taking the lock at all.
        var lockPath = LockPath(repo);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        FileLock? held;
        bool told = false;
        while ((held = FileLock.TryAcquire(lockPath, new LockOptions { Reporter = options.Reporter, Purpose = $"Sync-JobStatus {update.JobName}" })) is null)
        {
            if (!outbox.Contains(entry)) return PushedByOther(outbox, entry, result, options);
            if (clock.Elapsed >= options.LockTimeout)
            {
                options.Reporter.Warning($"Queued: timed out after {options.LockTimeout.TotalSeconds:0.###} s waiting for lock '{lockPath}', held by {LockInspector.Inspect(lockPath).Describe()}. The update is kept in the outbox of '{repo.Path}' and goes out with the next Sync-JobStatus on this clone (or run: Sync-JobStatus -Repository '{repo.Path}').");
                return result;
            }
            if (!told) { options.Reporter.Verbose($"Waiting for lock '{lockPath}' (another Sync-JobStatus is pushing)."); told = true; }
            if (token.WaitHandle.WaitOne(25)) token.ThrowIfCancellationRequested();
        }
        using var _ = held;
        if (!outbox.Contains(entry)) return PushedByOther(outbox, entry, result, options);
        var outcomes = PushOutbox(repo, outbox, options, entry, token);
        var mine = outcomes.SingleOrDefault(o => o.Entries.Any(e => e.Id == entry.Id));
        if (mine is null || !mine.Pushed) return result with { Attempts = mine?.Attempts ?? 0 };
        return result with { Commit = mine.Commit, Pushed = true, Queued = false, Attempts = mine.Attempts };
    }

    static JobStatusResult PushedByOther(Outbox outbox, OutboxEntry entry, JobStatusResult result, JobStatusOptions options)
    {
        var commit = outbox.TakeReceipt(entry);
        options.Reporter.Verbose($"{entry.JobName} was pushed by another process{(commit is null ? "" : " in " + commit)}.");
        return result with { Commit = commit, Pushed = true, Queued = false };
    }

    static string LockPath(GitRepository repo)
    {
        Directory.CreateDirectory(repo.StateDirectory);
        return Path.Combine(repo.StateDirectory, "lock");
    }

    /// <summary>The cron form: pushes whatever waits in the outbox, coalesced into one commit per branch.</summary>
    public static IReadOnlyList<JobStatusResult> Flush(JobStatusOptions options, CancellationToken token = default)
    {
        var repo = GitRepository.Open(options.Repository, options.GitTimeout, options.NetworkTimeout, options.Reporter, token);
        var outbox = new Outbox(repo.StateDirectory);
        if (outbox.ReadAll().Count == 0) { options.Reporter.Verbose($"Nothing waits in the outbox of '{repo.Path}'."); return []; }
        using var held = TryLock(repo, options, "Sync-JobStatus (outbox)", token);
        if (held is null)
            return Outbox.Newest(outbox.ReadAll()).Select(e => new JobStatusResult { JobName = e.JobName, Status = e.Status, Queued = true, Repository = repo.Path, Branch = e.Branch }).ToList();
        return PushOutbox(repo, outbox, options, null, token)
            .SelectMany(o => Outbox.Newest(o.Entries).Select(e => new JobStatusResult
            {
                JobName = e.JobName, Status = e.Status, Commit = o.Pushed ? o.Commit : null, Pushed = o.Pushed, Queued = !o.Pushed,
                Attempts = o.Attempts, Repository = repo.Path, Branch = o.Branch,
            })).ToList();
    }

    static (GitRepository Repo, string StatusDir, string Branch) Open(JobStatusOptions options, CancellationToken token)
    {
        var statusDir = JobName.ValidateRepoDirectory(options.StatusDirectory);
        JobName.ValidateRefName(options.Remote, "Remote");
        if (options.Branch is not null) JobName.ValidateRefName(options.Branch, "Branch");
        var repo = GitRepository.Open(options.Repository, options.GitTimeout, options.NetworkTimeout, options.Reporter, token);
        var branch = options.Branch ?? ResolveBranch(repo, options.Remote, token);
        return (repo, statusDir, branch);
    }

    /// <summary>The remote's HEAD branch (refs/remotes/R/HEAD), else the checked-out branch, else main.</summary>
    internal static string ResolveBranch(GitRepository repo, string remote, CancellationToken token)
    {
        var r = repo.Run(["symbolic-ref", "-q", "--short", $"refs/remotes/{remote}/HEAD"], token: token);
        if (r.Succeeded && r.StandardOutput.Trim() is { Length: > 0 } s && s.StartsWith(remote + "/")) return s[(remote.Length + 1)..];
        r = repo.Run(["symbolic-ref", "-q", "--short", "HEAD"], token: token);
        return r.Succeeded && r.StandardOutput.Trim() is { Length: > 0 } head ? head : "main";
    }

    static FileLock? TryLock(GitRepository repo, JobStatusOptions options, string purpose, CancellationToken token)
    {
        var lockPath = LockPath(repo);
        try
        {
            return FileLock.Acquire(lockPath, new LockOptions { Timeout = options.LockTimeout, Reporter = options.Reporter, Purpose = purpose }, token);
        }
        catch (SafeDeployException e) when (e.ErrorId == "LockTimeout")
        {
            options.Reporter.Warning($"Queued: {e.Message} The update is kept in the outbox of '{repo.Path}' and goes out with the next Sync-JobStatus on this clone (or run: Sync-JobStatus -Repository '{repo.Path}').");
            return null;
        }
    }

    /// <summary>What became of one (remote, branch) group of outbox entries.</summary>
    sealed record GroupOutcome(string Remote, string Branch, IReadOnlyList<OutboxEntry> Entries, bool Pushed, string? Commit, int Attempts);

    static IReadOnlyList<GroupOutcome> PushOutbox(GitRepository repo, Outbox outbox, JobStatusOptions options, OutboxEntry? own, CancellationToken token)
    {
        var all = outbox.ReadAll(file => options.Reporter.Warning($"Outbox file '{file}' cannot be read and is left in place."));
        var outcomes = new List<GroupOutcome>();
        foreach (var group in all.GroupBy(e => (e.Remote, e.Branch)))
        {
            var entries = group.ToList();
            var pusher = new GroupPusher(repo, options, group.Key.Remote, group.Key.Branch, token);
            var (pushed, commit, attempts, error) = pusher.Push(Outbox.Newest(entries));
            if (pushed)
            {
                foreach (var e in entries) outbox.Complete(e, commit!, keepReceipt: e.Id != own?.Id);
                options.Reporter.Verbose($"Pushed {entries.Count} update(s) of {entries.Select(e => e.JobName).Distinct().Count()} job(s) to {group.Key.Remote}/{group.Key.Branch} in {commit} (attempt {attempts}).");
            }
            else
                options.Reporter.Warning($"Queued: the status of {string.Join(", ", entries.Select(e => e.JobName).Distinct().Take(5))}{(entries.Count > 5 ? ", ..." : "")} was not pushed to {group.Key.Remote}/{group.Key.Branch}: {error} It is kept in the outbox of '{repo.Path}' and goes out with the next Sync-JobStatus on this clone (or run: Sync-JobStatus -Repository '{repo.Path}').");
            outcomes.Add(new GroupOutcome(group.Key.Remote, group.Key.Branch, entries, pushed, commit, attempts));
        }
        outbox.PruneReceipts();
        return outcomes;
    }

    /// <summary>Builds and pushes one commit for a set of newest-per-job entries, rebuilding it on every reject.</summary>
    sealed class GroupPusher(GitRepository repo, JobStatusOptions options, string remote, string branch, CancellationToken token)
    {
        string TrackingRef => $"refs/remotes/{remote}/{branch}";
        string IndexPath => Path.Combine(repo.StateDirectory, "index");

        public (bool Pushed, string? Commit, int Attempts, string? Error) Push(IReadOnlyList<OutboxEntry> entries)
        {
            string? tip = ReadLooseRef(TrackingRef);
            if (tip is null)
            {
                var local = repo.Run(["rev-parse", "-q", "--verify", TrackingRef + "^{commit}"], token: token);
                tip = local.Succeeded ? local.StandardOutput.Trim() : null;
            }
            if (tip is null)
            {
                var (ok, fetched, error) = Fetch();
                if (!ok) return (false, null, 0, error);
                tip = fetched;
            }
            string? lastError = null;
            for (int attempt = 1; attempt <= options.MaxAttempts; attempt++)
            {
                token.ThrowIfCancellationRequested();
                var commit = Build(tip, entries);
                if (commit is null) return (true, tip, attempt - 1, null); // the remote already has every update (or newer ones)
                var r = repo.Run(["push", "--porcelain", "--no-verify", remote, $"{commit}:refs/heads/{branch}"], network: true, token: token);
                if (r.Succeeded)
                {
                    if (Confirm(commit, out var why)) return (true, commit, attempt, null);
                    return (false, null, attempt, why);
                }
                lastError = Describe(r);
                if (!IsReject(r)) return (false, null, attempt, lastError);
                options.Reporter.Verbose($"Push to {remote}/{branch} rejected (attempt {attempt}): the remote moved; fetching and rebuilding.");
                Backoff(attempt);
                var (fetchedOk, newTip, fetchError) = Fetch();
                if (!fetchedOk) return (false, null, attempt, fetchError);
                tip = newTip;
            }
            return (false, null, options.MaxAttempts, $"still rejected after {options.MaxAttempts} attempts (the remote keeps moving): {lastError}");
        }

        // A push loses the race (the remote moved): [rejected] (fetch first / non-fast-forward) from the client, or the
        // remote's ref lock taken by a concurrent push. Anything else (no such remote, no network) is not retried here.
        static bool IsReject(CommandResult r)
        {
            var text = r.StandardOutput + r.StandardError;
            return text.Contains("[rejected]") || text.Contains("non-fast-forward") || text.Contains("fetch first")
                || text.Contains("cannot lock ref") || text.Contains("failed to update ref") || text.Contains("stale info");
        }

        static string Describe(CommandResult r) =>
            $"'{r.CommandLine}' failed{(r.TimedOut ? $" (timed out after {r.Duration.TotalSeconds:0} s)" : $" (exit {r.ExitCode})")}: {(r.StandardError.Trim() + " " + r.StandardOutput.Trim()).Trim()}";

        void Backoff(int attempt)
        {
            var ceiling = Math.Min(1000, 20 << Math.Min(attempt - 1, 6));
            var ms = Random.Shared.Next(ceiling / 4, ceiling + 1);
            if (token.WaitHandle.WaitOne(ms)) token.ThrowIfCancellationRequested();
        }

        /// <summary>Fetches the branch into its remote-tracking ref; a missing branch is an empty tip, an unreachable remote an error.</summary>
        (bool Ok, string? Tip, string? Error) Fetch()
        {
            var r = repo.Run(["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--no-recurse-submodules", remote, $"+refs/heads/{branch}:{TrackingRef}"], network: true, token: token);
            if (!r.Succeeded)
            {
                if (!r.TimedOut && r.StandardError.Contains("couldn't find remote ref")) return (true, null, null);
                return (false, null, Describe(r));
            }
            var tip = repo.Run(["rev-parse", "-q", "--verify", TrackingRef + "^{commit}"], token: token);
            return (true, tip.Succeeded ? tip.StandardOutput.Trim() : null, null);
        }

        readonly Dictionary<string, string> blobs = new(StringComparer.Ordinal);

        /// <summary>The commit on <paramref name="tip"/> that writes every entry newer than the tip's copy; null when nothing changes.</summary>
        string? Build(string? tip, IReadOnlyList<OutboxEntry> entries)
        {
            var env = new Dictionary<string, string?> { ["GIT_INDEX_FILE"] = IndexPath };
            // Under the clone's flock nobody else uses the private index: whatever a killed run left is ours to remove.
            DeleteIfExists(IndexPath + ".lock");
            DeleteIfExists(IndexPath);
            string? tipTree = null;
            var wanted = entries;
            if (tip is not null)
            {
                var (copies, tree) = ReadTip(tip, entries);
                tipTree = tree;
                wanted = entries.Where(e => IsNewerThanRemote(e, copies)).ToList();
            }
            if (wanted.Count == 0) return null;

            HashBlobs(wanted); // once per push: a rebuild after a reject reuses them
            repo.RunChecked(tip is null ? ["read-tree", "--empty"] : ["read-tree", tip], env: env, token: token);
            var info = new StringBuilder();
            foreach (var e in wanted) info.Append("100644 ").Append(blobs[e.Id]).Append('\t').Append(e.RepoPath).Append('\n');
            repo.RunChecked(["update-index", "--add", "--index-info"], stdin: info.ToString(), env: env, token: token);
            var newTree = repo.RunChecked(["write-tree"], env: env, token: token).Trim();
            DeleteIfExists(IndexPath);
            if (newTree == tipTree) return null;
            return CommitTree(newTree, tip, Message(wanted));
        }

        void HashBlobs(IReadOnlyList<OutboxEntry> wanted)
        {
            var missing = wanted.Where(e => !blobs.ContainsKey(e.Id)).ToList();
            if (missing.Count == 0) return;
            var blobDir = Path.Combine(repo.StateDirectory, "blobs");
            Directory.CreateDirectory(blobDir);
            var files = new List<string>();
            try
            {
                foreach (var e in missing)
                {
                    var f = Path.Combine(blobDir, e.Id);
                    File.WriteAllText(f, e.Content);
                    files.Add(f);
                }
                var shas = repo.RunChecked(["hash-object", "-w", "--no-filters", "--stdin-paths"], stdin: string.Join('\n', files) + "\n", token: token)
                    .Split('\n', StringSplitOptions.RemoveEmptyEntries);
                if (shas.Length != missing.Count) throw new SafeDeployException("GitFailed", ErrorKind.InvalidOperation, repo.Path, "git hash-object returned an unexpected number of objects.");
                for (int i = 0; i < missing.Count; i++) blobs[missing[i].Id] = shas[i].Trim();
            }
            finally { foreach (var f in files) DeleteIfExists(f); }
        }

        /// <summary>The tip's copy of each entry's file and the tip's tree id, in one cat-file --batch.</summary>
        (Dictionary<string, string> Copies, string? Tree) ReadTip(string tip, IReadOnlyList<OutboxEntry> entries)
        {
            // The tree goes last: its (binary) content is not decoded, only its header line is read.
            var r = repo.RunChecked(["cat-file", "--batch"], stdin: string.Concat(entries.Select(e => $"{tip}:{e.RepoPath}\n")) + $"{tip}^{{tree}}\n", token: token);
            var copies = new Dictionary<string, string>(StringComparer.Ordinal);
            var bytes = Encoding.UTF8.GetBytes(r);
            int pos = 0;
            foreach (var e in entries)
            {
                int nl = Array.IndexOf(bytes, (byte)'\n', pos);
                if (nl < 0) return (copies, null);
                var header = Encoding.UTF8.GetString(bytes, pos, nl - pos).Split(' ');
                pos = nl + 1;
                if (header.Length == 3 && header[1] == "blob" && int.TryParse(header[2], out var size))
                {
                    copies[e.RepoPath] = Encoding.UTF8.GetString(bytes, pos, size);
                    pos += size + 1;
                }
            }
            int end = Array.IndexOf(bytes, (byte)'\n', pos);
            var last = end < 0 ? [] : Encoding.UTF8.GetString(bytes, pos, end - pos).Split(' ');
            return (copies, last.Length == 3 && last[1] == "tree" ? last[0] : null);
        }

        /// <summary>Newest wins, across clones too: an update older than the remote's copy of the same job is not written.</summary>
        static bool IsNewerThanRemote(OutboxEntry e, Dictionary<string, string> copies)
        {
            if (!copies.TryGetValue(e.RepoPath, out var remoteCopy)) return true;
            if (remoteCopy == e.Content) return false;
            var theirs = StatusJson.UpdatedAtOf(remoteCopy);
            return theirs is null || theirs.Value.UtcTicks <= e.UpdatedAtTicks;
        }

        string CommitTree(string tree, string? parent, string message)
        {
            var args = new List<string> { "commit-tree", tree };
            if (parent is not null) { args.Add("-p"); args.Add(parent); }
            args.Add("-F"); args.Add("-");
            var r = repo.Run(args, stdin: message, token: token);
            if (!r.Succeeded && (r.StandardError.Contains("tell me who you are") || r.StandardError.Contains("empty ident") || r.StandardError.Contains("auto-detect")))
            {
                // A batch node often has no git identity; name the commit after SafeDeploy and the host rather than fail.
                var who = new Dictionary<string, string?>
                {
                    ["GIT_AUTHOR_NAME"] = "SafeDeploy", ["GIT_AUTHOR_EMAIL"] = $"safedeploy@{ProcessInfo.HostName}",
                    ["GIT_COMMITTER_NAME"] = "SafeDeploy", ["GIT_COMMITTER_EMAIL"] = $"safedeploy@{ProcessInfo.HostName}",
                };
                r = repo.Run(args, stdin: message, env: who, token: token);
            }
            if (!r.Succeeded) throw repo.Failed(r);
            return r.StandardOutput.Trim();
        }

        static string Message(IReadOnlyList<OutboxEntry> entries)
        {
            if (entries.Count == 1) return $"status: {entries[0].JobName} {entries[0].Status}\n";
            var sb = new StringBuilder($"status: {entries.Count} jobs\n\n");
            foreach (var e in entries.OrderBy(e => e.JobName, StringComparer.Ordinal)) sb.Append(e.JobName).Append(": ").Append(e.Status).Append('\n');
            return sb.ToString();
        }

        /// <summary>The remote branch contains the commit: its tip is the commit, or (after a fetch) a descendant of it.</summary>
        bool Confirm(string commit, out string? why)
        {
            why = null;
            var r = repo.Run(["ls-remote", "--heads", remote, $"refs/heads/{branch}"], network: true, token: token);
            var remoteTip = r.Succeeded ? r.StandardOutput.Split('\t', 2)[0].Trim() : null;
            if (remoteTip == commit) return true; // git push itself moved the remote-tracking ref
            var (ok, tip, error) = Fetch();
            if (ok && tip is not null && repo.Run(["merge-base", "--is-ancestor", commit, tip], token: token).Succeeded) return true;
            why = ok ? $"the push of {commit} succeeded but the remote branch does not contain it" : $"cannot confirm the push of {commit}: {error}";
            return false;
        }

        /// <summary>A loose ref's value read directly (one process less per update); null sends the caller to git.</summary>
        string? ReadLooseRef(string name)
        {
            try
            {
                var text = File.ReadAllText(Path.Combine(repo.GitDirectory, name)).Trim();
                return text.Length == 40 && text.All(char.IsAsciiHexDigitLower) ? text : null;
            }
            catch (IOException) { return null; }
            catch (UnauthorizedAccessException) { return null; }
        }

        static void DeleteIfExists(string path)
        {
            try { File.Delete(path); } catch (DirectoryNotFoundException) { }
        }
    }
}
