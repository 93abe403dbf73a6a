using System.Text.RegularExpressions;
using SafeDeploy.Engine.Errors;

namespace SafeDeploy.Engine.JobStatus;

/// <summary>Reads job statuses back: the remote branch as last fetched or pushed, overlaid with updates still in the outbox.</summary>
internal static class JobStatusReader
{
    /// <summary>Statuses of <paramref name="jobNames"/> (every job when empty; wildcards * and ? allowed), sorted by name.</summary>
    public static IReadOnlyList<JobStatusRecord> Read(JobStatusOptions options, IReadOnlyList<string> jobNames, bool fetch, CancellationToken token = default)
    {
        var (repo, target) = JobStatusSync.Open(options, token);
        var tracking = GitRepository.TrackingRef(target.Remote, target.Branch);
        if (fetch)
        {
            var (ok, _, error) = repo.FetchBranch(target.Remote, target.Branch, token);
            if (!ok) options.Reporter.Warning($"Cannot fetch {target.Remote}/{target.Branch}; showing what was last fetched: {error}");
        }
        var commit = repo.ResolveCommit(tracking, token) ?? repo.ResolveCommit("HEAD", token);

        var found = new Dictionary<string, JobStatusRecord>(StringComparer.Ordinal);
        if (commit is not null)
        {
            var files = repo.ListBlobs(commit, target.StatusDirectory, token)
                .Where(f => f.Path.EndsWith(".json", StringComparison.Ordinal))
                .Select(f => (f.Sha, f.Path, Job: Path.GetFileNameWithoutExtension(f.Path)))
                .Where(f => JobName.IsValid(f.Job) && Matches(f.Job, jobNames)).ToList();
            if (files.Count > 0)
            {
                foreach (var (f, o) in files.Zip(repo.CatFiles(files.Select(f => f.Sha).ToList(), token)))
                {
                    if (o.Content is null) continue;
                    try { found[f.Job] = StatusJson.Parse(f.Job, o.Content, f.Path, commit, pending: false); }
                    catch (System.Text.Json.JsonException) { options.Reporter.Warning($"'{f.Path}' in {commit} is not valid JSON; skipped."); }
                }
            }
        }
        foreach (var e in Outbox.Newest(new Outbox(repo.StateDirectory).ReadFor(target, options.Reporter.Warning)))
        {
            if (!Matches(e.JobName, jobNames)) continue;
            if (found.TryGetValue(e.JobName, out var have) && have.UpdatedAt is { } t && t.UtcTicks > e.UpdatedAtTicks) continue;
            found[e.JobName] = StatusJson.Parse(e.JobName, e.Content, e.RepoPath, null, pending: true);
        }
        return found.Values.OrderBy(r => r.JobName, StringComparer.Ordinal).ToList();
    }

    /// <summary>True when a -JobName pattern has * or ?.</summary>
    public static bool HasWildcard(string s) => s.IndexOfAny(['*', '?']) >= 0;

    /// <summary>The error for a job name (without wildcards) that has no status.</summary>
    public static SafeDeployException NotFound(string name, string repository) => ErrorCatalog.JobStatusNotFound(name, repository);

    static bool Matches(string job, IReadOnlyList<string> patterns) =>
        patterns.Count == 0 || patterns.Any(p => HasWildcard(p)
            ? Regex.IsMatch(job, "^" + Regex.Escape(p).Replace("\\*", ".*").Replace("\\?", ".") + "$")
            : p == job);
}
