using System.Text;
using SafeDeploy.Engine.Errors;

namespace SafeDeploy.Engine.JobStatus;

/// <summary>Reads job statuses back: the remote branch as last fetched or pushed, overlaid with updates still in the outbox.</summary>
public static class JobStatusReader
{
    /// <summary>Statuses of <paramref name="jobNames"/> (every job when empty; wildcards * and ? allowed), sorted by name.</summary>
    public static IReadOnlyList<JobStatusRecord> Read(JobStatusOptions options, IReadOnlyList<string> jobNames, bool fetch, CancellationToken token = default)
    {
        var statusDir = JobName.ValidateRepoDirectory(options.StatusDirectory);
        JobName.ValidateRefName(options.Remote, "Remote");
        if (options.Branch is not null) JobName.ValidateRefName(options.Branch, "Branch");
        var repo = GitRepository.Open(options.Repository, options.GitTimeout, options.NetworkTimeout, options.Reporter, token);
        var branch = options.Branch ?? JobStatusSync.ResolveBranch(repo, options.Remote, token);
        var tracking = $"refs/remotes/{options.Remote}/{branch}";
        if (fetch)
        {
            var f = repo.Run(["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", options.Remote, $"+refs/heads/{branch}:{tracking}"], network: true, token: token);
            if (!f.Succeeded) options.Reporter.Warning($"Cannot fetch {options.Remote}/{branch}; showing what was last fetched: {f.StandardError.Trim()}");
        }
        var rev = repo.Run(["rev-parse", "-q", "--verify", tracking + "^{commit}"], token: token);
        if (!rev.Succeeded) rev = repo.Run(["rev-parse", "-q", "--verify", "HEAD^{commit}"], token: token);
        string? commit = rev.Succeeded ? rev.StandardOutput.Trim() : null;

        var found = new Dictionary<string, JobStatusRecord>(StringComparer.Ordinal);
        if (commit is not null)
        {
            var listing = repo.RunChecked(["ls-tree", "-z", "--full-tree", commit, statusDir + "/"], token: token);
            var files = listing.Split('\0', StringSplitOptions.RemoveEmptyEntries)
                .Select(l => l.Split('\t', 2)).Where(p => p.Length == 2 && p[0].Contains(" blob ") && p[1].EndsWith(".json"))
                .Select(p => (Sha: p[0].Split(' ')[2], Path: p[1], Job: Path.GetFileNameWithoutExtension(p[1])))
                .Where(f => JobName.IsValid(f.Job) && Matches(f.Job, jobNames)).ToList();
            if (files.Count > 0)
            {
                var raw = Encoding.UTF8.GetBytes(repo.RunChecked(["cat-file", "--batch"], stdin: string.Concat(files.Select(f => f.Sha + "\n")), token: token));
                int pos = 0;
                foreach (var f in files)
                {
                    int nl = Array.IndexOf(raw, (byte)'\n', pos);
                    var header = Encoding.UTF8.GetString(raw, pos, nl - pos).Split(' ');
                    pos = nl + 1;
                    if (header.Length != 3 || !int.TryParse(header[2], out var size)) continue;
                    var json = Encoding.UTF8.GetString(raw, pos, size);
                    pos += size + 1;
                    try { found[f.Job] = StatusJson.Parse(f.Job, json, f.Path, commit, pending: false); }
                    catch (System.Text.Json.JsonException) { options.Reporter.Warning($"'{f.Path}' in {commit} is not valid JSON; skipped."); }
                }
            }
        }
        foreach (var e in Outbox.Newest(new Outbox(repo.StateDirectory).ReadAll().Where(e => e.Remote == options.Remote && e.Branch == branch && e.StatusDirectory == statusDir)))
        {
            if (!Matches(e.JobName, jobNames)) continue;
            if (found.TryGetValue(e.JobName, out var have) && have.UpdatedAt is { } t && t.UtcTicks > e.UpdatedAtTicks) continue;
            found[e.JobName] = StatusJson.Parse(e.JobName, e.Content, e.RepoPath, null, pending: true);
        }
        return found.Values.OrderBy(r => r.JobName, StringComparer.Ordinal).ToList();
    }

    /// <summary>True when a -JobName pattern has * or ?.</summary>
    public static bool HasWildcard(string s) => s.IndexOfAny(['*', '?']) >= 0;

    static bool Matches(string job, IReadOnlyList<string> patterns) =>
        patterns.Count == 0 || patterns.Any(p => HasWildcard(p)
            ? System.Text.RegularExpressions.Regex.IsMatch(job, "^" + System.Text.RegularExpressions.Regex.Escape(p).Replace("\\*", ".*").Replace("\\?", ".") + "$")
            : p == job);
}
