using System.Text;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.JobStatus;

/// <summary>One object read by <see cref="GitRepository.CatFiles"/>: null Type when git has no such object.</summary>
internal sealed record GitObject(string Name, string? Sha, string? Type, string? Content);

/// <summary>A blob in a tree listing.</summary>
internal sealed record GitTreeEntry(string Sha, string Path);

// The git plumbing Sync-JobStatus and Get-JobStatus share. Values that come from the user or from a file (a remote,
// a branch, a path, a revision) always come after "--" or "--end-of-options"; paths go through stdin where git allows.
internal sealed partial class GitRepository
{
    /// <summary>refs/remotes/&lt;remote&gt;/&lt;branch&gt;.</summary>
    public static string TrackingRef(string remote, string branch) => $"refs/remotes/{remote}/{branch}";

    /// <summary>The remote's HEAD branch (refs/remotes/R/HEAD), else the checked-out branch, else main.</summary>
    public string ResolveBranch(string remote, CancellationToken token)
    {
        var r = Run(["symbolic-ref", "-q", "--short", "--end-of-options", $"refs/remotes/{remote}/HEAD"], token: token);
        if (r.Succeeded && r.StandardOutput.Trim() is { Length: > 0 } s && s.StartsWith(remote + "/")) return s[(remote.Length + 1)..];
        r = Run(["symbolic-ref", "-q", "--short", "--end-of-options", "HEAD"], token: token);
        return r.Succeeded && r.StandardOutput.Trim() is { Length: > 0 } head ? head : "main";
    }

    /// <summary>The commit a revision names, or null.</summary>
    public string? ResolveCommit(string revision, CancellationToken token)
    {
        var r = Run(["rev-parse", "-q", "--verify", "--end-of-options", revision + "^{commit}"], token: token);
        return r.Succeeded ? r.StandardOutput.Trim() : null;
    }

    /// <summary>A loose ref's value read directly (one process less per update); null sends the caller to git.</summary>
    public string? ReadLooseRef(string name)
    {
        try
        {
            var text = File.ReadAllText(System.IO.Path.Combine(GitDirectory, name)).Trim();
            return text.Length == 40 && text.All(char.IsAsciiHexDigitLower) ? text : null;
        }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }

    /// <summary>Fetches one branch into its remote-tracking ref. A branch the remote lacks is an empty tip; a failure is an error text.</summary>
    public (bool Ok, string? Tip, string? Error) FetchBranch(string remote, string branch, CancellationToken token)
    {
        var tracking = TrackingRef(remote, branch);
        var r = Run(["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--no-recurse-submodules", "--", remote, $"+refs/heads/{branch}:{tracking}"],
            network: true, token: token);
        if (!r.Succeeded)
        {
            if (!r.TimedOut && r.StandardError.Contains("couldn't find remote ref")) return (true, null, null);
            return (false, null, Describe(r));
        }
        return (true, ResolveCommit(tracking, token), null);
    }

    /// <summary>The remote branch's tip as the remote reports it now (ls-remote), or null.</summary>
    public string? RemoteTip(string remote, string branch, CancellationToken token)
    {
        var r = Run(["ls-remote", "--heads", "--", remote, $"refs/heads/{branch}"], network: true, token: token);
        return r.Succeeded ? r.StandardOutput.Split('\t', 2)[0].Trim() : null;
    }

    /// <summary>Pushes a commit to a branch (no force). <paramref name="noVerify"/> skips the clone's pre-push hook.</summary>
    public CommandResult Push(string remote, string commit, string branch, bool noVerify, CancellationToken token)
    {
        var args = new List<string> { "push", "--porcelain" };
        if (noVerify) args.Add("--no-verify");
        args.AddRange(["--", remote, $"{commit}:refs/heads/{branch}"]);
        return Run(args, network: true, token: token);
    }

    public bool IsAncestor(string commit, string of, CancellationToken token) =>
        Run(["merge-base", "--is-ancestor", "--end-of-options", commit, of], token: token).Succeeded;

    /// <summary>The blobs under <paramref name="directory"/> in <paramref name="commit"/>'s tree.</summary>
    public IReadOnlyList<GitTreeEntry> ListBlobs(string commit, string directory, CancellationToken token) =>
        RunChecked(["ls-tree", "-z", "--full-tree", "--end-of-options", commit, "--", directory + "/"], token: token)
            .Split('\0', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split('\t', 2))
            .Where(p => p.Length == 2 && p[0].Contains(" blob "))
            .Select(p => new GitTreeEntry(p[0].Split(' ')[2], p[1]))
            .ToList();

    /// <summary>
    /// Reads objects in one cat-file --batch. Blob contents are decoded as UTF-8; the first object of another type
    /// (a tree, whose bytes are binary) ends the batch, so ask for such an object last.
    /// </summary>
    public IReadOnlyList<GitObject> CatFiles(IReadOnlyList<string> names, CancellationToken token)
    {
        var bytes = Encoding.UTF8.GetBytes(RunChecked(["cat-file", "--batch"], stdin: string.Concat(names.Select(n => n + "\n")), token: token));
        var list = new List<GitObject>(names.Count);
        int pos = 0;
        foreach (var name in names)
        {
            int nl = Array.IndexOf(bytes, (byte)'\n', pos);
            if (nl < 0) break;
            var header = Encoding.UTF8.GetString(bytes, pos, nl - pos).Split(' ');
            pos = nl + 1;
            if (header.Length != 3 || !int.TryParse(header[2], out var size)) { list.Add(new GitObject(name, null, null, null)); continue; }
            if (header[1] != "blob") { list.Add(new GitObject(name, header[0], header[1], null)); break; }
            list.Add(new GitObject(name, header[0], "blob", Encoding.UTF8.GetString(bytes, pos, Math.Min(size, bytes.Length - pos))));
            pos += size + 1;
        }
        return list;
    }

    /// <summary>Writes the given files as blobs (git hash-object -w, paths on stdin); their ids in order.</summary>
    public IReadOnlyList<string> HashFiles(IReadOnlyList<string> files, CancellationToken token)
    {
        var shas = RunChecked(["hash-object", "-w", "--no-filters", "--stdin-paths"], stdin: string.Join('\n', files) + "\n", token: token)
            .Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(s => s.Trim()).ToList();
        if (shas.Count != files.Count) throw new Errors.SafeDeployException("GitFailed", Errors.ErrorKind.InvalidOperation, Path, "git hash-object returned an unexpected number of objects.");
        return shas;
    }

    /// <summary>
    /// The tree of <paramref name="baseCommit"/> (empty when null) with the given blobs placed at their paths, built in a
    /// private index file; returns the new tree id.
    /// </summary>
    public string BuildTree(string indexFile, string? baseCommit, IEnumerable<(string Blob, string Path)> files, CancellationToken token)
    {
        var env = new Dictionary<string, string?> { ["GIT_INDEX_FILE"] = indexFile };
        RunChecked(baseCommit is null ? ["read-tree", "--empty"] : ["read-tree", "--end-of-options", baseCommit], env: env, token: token);
        var info = new StringBuilder();
        foreach (var (blob, path) in files) info.Append("100644 ").Append(blob).Append('\t').Append(path).Append('\n');
        RunChecked(["update-index", "--add", "--index-info"], stdin: info.ToString(), env: env, token: token);
        return RunChecked(["write-tree"], env: env, token: token).Trim();
    }

    /// <summary>A commit of <paramref name="tree"/> on <paramref name="parent"/>; a machine without a git identity commits as SafeDeploy@host.</summary>
    public string CommitTree(string tree, string? parent, string message, CancellationToken token)
    {
        var args = new List<string> { "commit-tree" };
        if (parent is not null) { args.Add("-p"); args.Add(parent); }
        args.AddRange(["-F", "-", "--end-of-options", tree]);
        var r = Run(args, stdin: message, token: token);
        if (!r.Succeeded && (r.StandardError.Contains("tell me who you are") || r.StandardError.Contains("empty ident") || r.StandardError.Contains("auto-detect")))
        {
            // A batch node often has no git identity; name the commit after SafeDeploy and the host rather than fail.
            var who = new Dictionary<string, string?>
            {
                ["GIT_AUTHOR_NAME"] = "SafeDeploy", ["GIT_AUTHOR_EMAIL"] = $"safedeploy@{ProcessInfo.HostName}",
                ["GIT_COMMITTER_NAME"] = "SafeDeploy", ["GIT_COMMITTER_EMAIL"] = $"safedeploy@{ProcessInfo.HostName}",
            };
            r = Run(args, stdin: message, env: who, token: token);
        }
        if (!r.Succeeded) throw Failed(r);
        return r.StandardOutput.Trim();
    }
}
