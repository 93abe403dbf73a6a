using System.Text;

namespace SafeDeploy.Engine.JobStatus;

/// <summary>What became of the outbox's entries for one target.</summary>
internal sealed record PushOutcome(OutboxTarget Target, IReadOnlyList<OutboxEntry> Entries, bool Pushed, string? Commit, int Attempts);

/// <summary>
/// Builds and pushes one commit holding the newest outbox entry of each job for one target, rebuilding it on the new
/// remote tip after every reject. Runs only under the clone's lock.
/// </summary>
internal sealed class OutboxPusher(GitRepository repo, Outbox outbox, JobStatusOptions options, OutboxTarget target, CancellationToken token)
{
    string Remote => target.Remote;
    string Branch => target.Branch;
    string TrackingRef => GitRepository.TrackingRef(Remote, Branch);
    readonly Dictionary<string, string> blobs = new(StringComparer.Ordinal);

    /// <summary>Pushes what waits for the target; <paramref name="own"/> (the caller's entry) gets no receipt.</summary>
    public PushOutcome Run(OutboxEntry? own)
    {
        var entries = outbox.ReadFor(target, options.Reporter.Warning, options.Reporter.Warning);
        if (entries.Count == 0) return new PushOutcome(target, entries, true, null, 0);
        var work = outbox.NewWorkDirectory();
        (bool pushed, string? commit, int attempts, string? error) result;
        try { result = Push(Outbox.Newest(entries), work); }
        finally { outbox.RemoveWorkDirectory(work); }
        var (pushed, commit, attempts, error) = result;
        if (pushed)
        {
            foreach (var e in entries) outbox.Complete(e, commit!, keepReceipt: e.Id != own?.Id);
            options.Reporter.Verbose($"Pushed {entries.Count} update(s) of {entries.Select(e => e.JobName).Distinct().Count()} job(s) to {Remote}/{Branch} in {commit} (attempt {attempts}).");
        }
        else
            options.Reporter.Warning($"Queued: the status of {string.Join(", ", entries.Select(e => e.JobName).Distinct().Take(5))}{(entries.Count > 5 ? ", ..." : "")} was not pushed to {Remote}/{Branch}: {error} {JobStatusSync.KeptIn(repo)}");
        outbox.PruneReceipts(options.Reporter.Warning);
        return new PushOutcome(target, entries, pushed, commit, attempts);
    }

    (bool Pushed, string? Commit, int Attempts, string? Error) Push(IReadOnlyList<OutboxEntry> entries, OutboxFiles work)
    {
        string? tip = repo.ReadLooseRef(TrackingRef) ?? repo.ResolveCommit(TrackingRef, token);
        if (tip is null)
        {
            var (ok, fetched, error) = repo.FetchBranch(Remote, Branch, token);
            if (!ok) return (false, null, 0, error);
            tip = fetched;
        }
        string? lastError = null;
        for (int attempt = 1; attempt <= options.MaxAttempts; attempt++)
        {
            token.ThrowIfCancellationRequested();
            var commit = Build(tip, entries, work);
            if (commit is null) return (true, tip, attempt - 1, null); // the remote already has every update (or newer ones)
            var r = repo.Push(Remote, commit, Branch, options.NoVerify, token);
            if (r.Succeeded)
            {
                if (Confirm(commit, out var why)) return (true, commit, attempt, null);
                return (false, null, attempt, why);
            }
            lastError = GitRepository.Describe(r);
            if (!IsReject(r)) return (false, null, attempt, lastError);
            options.Reporter.Verbose($"Push to {Remote}/{Branch} rejected (attempt {attempt}): the remote moved; fetching and rebuilding.");
            Backoff(attempt);
            var (fetchedOk, newTip, fetchError) = repo.FetchBranch(Remote, Branch, token);
            if (!fetchedOk) return (false, null, attempt, fetchError);
            tip = newTip;
        }
        return (false, null, options.MaxAttempts, $"still rejected after {options.MaxAttempts} attempts (the remote keeps moving): {lastError}");
    }

    // A push loses the race (the remote moved): [rejected] (fetch first / non-fast-forward) from the client, or the
    // remote's ref lock taken by a concurrent push. Anything else (no such remote, no network, a hook) is not retried.
    static bool IsReject(Platform.CommandResult r)
    {
        var text = r.StandardOutput + r.StandardError;
        return text.Contains("[rejected]") || text.Contains("non-fast-forward") || text.Contains("fetch first")
            || text.Contains("cannot lock ref") || text.Contains("failed to update ref") || text.Contains("stale info");
    }

    void Backoff(int attempt)
    {
        var ceiling = Math.Min(1000, 20 << Math.Min(attempt - 1, 6));
        var ms = Random.Shared.Next(ceiling / 4, ceiling + 1);
        if (token.WaitHandle.WaitOne(ms)) token.ThrowIfCancellationRequested();
    }

    /// <summary>The commit on <paramref name="tip"/> that writes every entry newer than the tip's copy; null when nothing changes.</summary>
    string? Build(string? tip, IReadOnlyList<OutboxEntry> entries, OutboxFiles work)
    {
        string? tipTree = null;
        var wanted = entries;
        if (tip is not null)
        {
            // The tree goes last: cat-file's batch stops at the first object that is not a blob.
            var objects = repo.CatFiles([.. entries.Select(e => $"{tip}:{e.RepoPath}"), $"{tip}^{{tree}}"], token);
            var copies = entries.Zip(objects).Where(p => p.Second.Type == "blob").ToDictionary(p => p.First.RepoPath, p => p.Second.Content!, StringComparer.Ordinal);
            tipTree = objects.LastOrDefault(o => o.Type == "tree")?.Sha;
            wanted = entries.Where(e => IsNewerThanRemote(e, copies)).ToList();
        }
        if (wanted.Count == 0) return null;

        HashBlobs(wanted, work); // once per push: a rebuild after a reject reuses them
        work.Delete("index");
        var newTree = repo.BuildTree(work.FullPath("index"), tip, wanted.Select(e => (blobs[e.Id], e.RepoPath)), token);
        if (newTree == tipTree) return null;
        return repo.CommitTree(newTree, tip, Message(wanted), token);
    }

    void HashBlobs(IReadOnlyList<OutboxEntry> wanted, OutboxFiles work)
    {
        var missing = wanted.Where(e => !blobs.ContainsKey(e.Id)).ToList();
        if (missing.Count == 0) return;
        foreach (var e in missing) work.WriteScratch(e.Id, e.Content);
        var shas = repo.HashFiles(missing.Select(e => work.FullPath(e.Id)).ToList(), token);
        for (int i = 0; i < missing.Count; i++) blobs[missing[i].Id] = shas[i];
        foreach (var e in missing) work.Delete(e.Id);
    }

    /// <summary>Newest wins, across clones too: an update older than the remote's copy of the same job is not written.</summary>
    static bool IsNewerThanRemote(OutboxEntry e, Dictionary<string, string> copies)
    {
        if (!copies.TryGetValue(e.RepoPath, out var remoteCopy)) return true;
        if (remoteCopy == e.Content) return false;
        var theirs = StatusJson.UpdatedAtOf(remoteCopy);
        return theirs is null || theirs.Value.UtcTicks <= e.UpdatedAtTicks;
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
        if (repo.RemoteTip(Remote, Branch, token) == commit) return true; // git push itself moved the remote-tracking ref
        var (ok, tip, error) = repo.FetchBranch(Remote, Branch, token);
        if (ok && tip is not null && repo.IsAncestor(commit, tip, token)) return true;
        why = ok ? $"the push of {commit} succeeded but the remote branch does not contain it" : $"cannot confirm the push of {commit}: {error}";
        return false;
    }
}
