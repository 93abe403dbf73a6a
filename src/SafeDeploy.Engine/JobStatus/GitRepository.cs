using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.JobStatus;

/// <summary>
/// A clone, and git run in it through <see cref="ExternalCommand"/> with timeouts, stable English messages and no prompts.
/// Every call puts its options first and ends them with "--" (or "--end-of-options" where "--" would start pathspecs),
/// so no value — a remote, a branch, a job's path — is ever read as an option. The plumbing the sync and the reader
/// share is in GitRepository.Plumbing.cs.
/// </summary>
internal sealed partial class GitRepository
{
    readonly TimeSpan localTimeout, networkTimeout;
    readonly IOperationReporter reporter;

    GitRepository(string path, string gitDirectory, TimeSpan localTimeout, TimeSpan networkTimeout, IOperationReporter reporter)
    {
        Path = path;
        GitDirectory = gitDirectory;
        this.localTimeout = localTimeout;
        this.networkTimeout = networkTimeout;
        this.reporter = reporter;
    }

    /// <summary>The path the caller gave (the error target).</summary>
    public string Path { get; }
    public string GitDirectory { get; }
    /// <summary>SafeDeploy's own directory inside .git: lock, outbox, receipts, private work directories.</summary>
    public string StateDirectory => System.IO.Path.Combine(GitDirectory, "safedeploy");

    /// <summary>Opens a clone; a path that is missing or not a git repository is an error naming that path.</summary>
    public static GitRepository Open(JobStatusOptions options, CancellationToken token)
    {
        var path = options.Repository;
        if (!Directory.Exists(path))
            throw new SafeDeployException("RepositoryNotFound", ErrorKind.ObjectNotFound, path,
                $"Repository '{path}' does not exist.", "Pass the path of a clone of the dashboard repository (git clone <url> <path> first).");
        // Fast path for the common layout (a work tree with a .git directory); anything else asks git.
        var dotGit = System.IO.Path.Combine(path, ".git");
        string gitDir;
        if (Directory.Exists(dotGit) && File.Exists(System.IO.Path.Combine(dotGit, "HEAD")) && Directory.Exists(System.IO.Path.Combine(dotGit, "objects")))
            gitDir = System.IO.Path.GetFullPath(dotGit);
        else
        {
            var probe = new GitRepository(path, path, options.GitTimeout, options.NetworkTimeout, options.Reporter);
            var r = probe.Run(["rev-parse", "--absolute-git-dir"], token: token);
            if (!r.Succeeded)
                throw new SafeDeployException("NotAGitRepository", ErrorKind.InvalidArgument, path,
                    $"'{path}' is not a git repository: {FirstLine(r.StandardError)}",
                    "Pass the path of a clone of the dashboard repository (git clone <url> <path> first).");
            gitDir = r.StandardOutput.Trim();
        }
        return new GitRepository(path, gitDir, options.GitTimeout, options.NetworkTimeout, options.Reporter);
    }

    /// <summary>Runs git; a failure is a result. <paramref name="network"/> selects the longer timeout.</summary>
    public CommandResult Run(IReadOnlyList<string> args, string? stdin = null, IReadOnlyDictionary<string, string?>? env = null,
        bool network = false, CancellationToken token = default)
    {
        var environment = new Dictionary<string, string?>
        {
            ["LC_ALL"] = "C", ["LANGUAGE"] = null, ["GIT_TERMINAL_PROMPT"] = "0", ["GIT_ASKPASS"] = "true",
            ["GIT_OPTIONAL_LOCKS"] = "0",
        };
        if (env is not null) foreach (var (k, v) in env) environment[k] = v;
        var cmd = new ExternalCommand
        {
            Program = "git",
            Arguments = args,
            WorkingDirectory = Path,
            Environment = environment,
            StandardInput = stdin,
            Timeout = network ? networkTimeout : localTimeout,
        };
        var result = cmd.Run(token);
        if (result.TimedOut) reporter.Verbose($"git {string.Join(' ', args)} timed out after {cmd.Timeout.TotalSeconds:0} s.");
        return result;
    }

    /// <summary>Runs git and throws, with git's stderr in the message, when it fails.</summary>
    public string RunChecked(IReadOnlyList<string> args, string? stdin = null, IReadOnlyDictionary<string, string?>? env = null,
        bool network = false, CancellationToken token = default)
    {
        var r = Run(args, stdin, env, network, token);
        if (!r.Succeeded) throw Failed(r);
        return r.StandardOutput;
    }

    public SafeDeployException Failed(CommandResult r) => new("GitFailed", r.TimedOut ? ErrorKind.OperationTimeout : ErrorKind.InvalidOperation, Path,
        r.TimedOut ? $"'{r.CommandLine}' in '{Path}' timed out after {r.Duration.TotalSeconds:0} s. {r.StandardError.Trim()}"
                   : $"'{r.CommandLine}' in '{Path}' failed (exit {r.ExitCode}): {r.StandardError.Trim()}",
        "Read git's message above; fix the clone (or the remote) and run the command again. Queued updates stay in the outbox.");

    /// <summary>"'git push ...' failed (exit 1): stderr stdout" for warnings.</summary>
    public static string Describe(CommandResult r) =>
        $"'{r.CommandLine}' failed{(r.TimedOut ? $" (timed out after {r.Duration.TotalSeconds:0} s)" : $" (exit {r.ExitCode})")}: {(r.StandardError.Trim() + " " + r.StandardOutput.Trim()).Trim()}";

    static string FirstLine(string s) => s.Trim().Split('\n').FirstOrDefault()?.Trim() ?? "";
}
