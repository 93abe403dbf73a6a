using System.Diagnostics;
using SafeDeploy.Tests.Infrastructure;

namespace SafeDeploy.Tests.JobStatus;

/// <summary>
/// A bare remote on the local disk (receive.denyNonFastForwards=true, so a force push cannot happen) with one commit
/// on main, and clones of it. Git identity comes from the environment, so machines without a global identity work.
/// </summary>
public sealed class GitRemote : IDisposable
{
    readonly TempDir root = new("jobstatus");
    readonly EnvScope identity = new(("GIT_AUTHOR_NAME", "SafeDeploy Test"), ("GIT_AUTHOR_EMAIL", "test@safedeploy.invalid"),
        ("GIT_COMMITTER_NAME", "SafeDeploy Test"), ("GIT_COMMITTER_EMAIL", "test@safedeploy.invalid"), ("GIT_CONFIG_NOSYSTEM", "1"));

    public GitRemote()
    {
        BarePath = root["remote.git"];
        Git(root.Path, "init", "-q", "--bare", "-b", "main", BarePath);
        Git(BarePath, "config", "receive.denyNonFastForwards", "true");
        Git(BarePath, "config", "core.logAllRefUpdates", "always");
        var seed = root["seed"];
        Git(root.Path, "clone", "-q", BarePath, seed);
        File.WriteAllText(Path.Combine(seed, "README.md"), "dashboard\n");
        Directory.CreateDirectory(Path.Combine(seed, "data", "status"));
        File.WriteAllText(Path.Combine(seed, "data", "status", "other-team.json"), "{\"job_name\":\"other-team\",\"status\":\"running\"}\n");
        Git(seed, "add", "-A");
        Git(seed, "commit", "-q", "-m", "init");
        Git(seed, "push", "-q", "origin", "HEAD:main");
    }

    public string Root => root.Path;
    public string BarePath { get; }

    public string Clone(string name)
    {
        var path = root[name];
        Git(root.Path, "clone", "-q", BarePath, path);
        return path;
    }

    /// <summary>The remote's copy of a file on main, or null.</summary>
    public string? Show(string repoPath)
    {
        var r = TryGit(BarePath, "show", "main:" + repoPath);
        return r.ExitCode == 0 ? r.Output : null;
    }

    public IReadOnlyList<string> StatusFiles() =>
        Git(BarePath, "ls-tree", "--name-only", "main", "data/status/").Split('\n', StringSplitOptions.RemoveEmptyEntries);

    /// <summary>True when main has no merge commits and every reflog step of main was a fast-forward.</summary>
    public bool HistoryIsLinearWithoutForcePush()
    {
        if (Git(BarePath, "rev-list", "--min-parents=2", "main").Trim().Length > 0) return false;
        var log = Git(BarePath, "reflog", "show", "--format=%H", "refs/heads/main").Split('\n', StringSplitOptions.RemoveEmptyEntries);
        for (int i = 0; i + 1 < log.Length; i++)
            if (TryGit(BarePath, "merge-base", "--is-ancestor", log[i + 1], log[i]).ExitCode != 0) return false;
        return true;
    }

    public static string Git(string dir, params string[] args)
    {
        var r = TryGit(dir, args);
        if (r.ExitCode != 0) throw new InvalidOperationException($"git {string.Join(' ', args)} failed: {r.Error}");
        return r.Output;
    }

    public static (int ExitCode, string Output, string Error) TryGit(string dir, params string[] args)
    {
        var psi = new ProcessStartInfo("git") { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, output, err.Result);
    }

    public void Dispose()
    {
        identity.Dispose();
        root.Dispose();
    }
}
