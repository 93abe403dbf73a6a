using System.Diagnostics;
using System.Text;
using CliWrap;
using CliWrap.Buffered;
using SafeDeploy.Engine.Errors;

namespace SafeDeploy.Engine.Platform;

/// <summary>What an external command did.</summary>
internal sealed record CommandResult(string Program, IReadOnlyList<string> Arguments, int ExitCode, string StandardOutput,
    string StandardError, TimeSpan Duration, bool TimedOut)
{
    public bool Succeeded => ExitCode == 0 && !TimedOut;
    /// <summary>"git push origin main" — for messages (arguments are not secrets by convention; never pass secrets as arguments).</summary>
    public string CommandLine => ExternalCommand.Format(Program, Arguments);
}

/// <summary>The one way SafeDeploy runs an external program: CliWrap, arguments as a list, always a timeout, always cancellable.</summary>
internal sealed record ExternalCommand
{
    public required string Program { get; init; }
    public IReadOnlyList<string> Arguments { get; init; } = Array.Empty<string>();
    public string? WorkingDirectory { get; init; }
    public IReadOnlyDictionary<string, string?> Environment { get; init; } = new Dictionary<string, string?>();
    public TimeSpan Timeout { get; init; } = TimeSpan.FromMinutes(5);
    public string? StandardInput { get; init; }
    /// <summary>Receives each line of stdout and stderr as it arrives (for per-phase logs and verbose output).</summary>
    public Action<string>? OnLine { get; init; }
    /// <summary>
    /// The child's whole environment (the deployer's is not inherited: what is not in it is removed); <see cref="Environment"/>
    /// entries are applied on top. Null: the deployer's environment with <see cref="Environment"/> overlaid (SafeDeploy's own git and tools).
    /// </summary>
    public ProcessEnvironment? IsolatedEnvironment { get; init; }
    /// <summary>
    /// Non-null: the command runs in its own session and process group (setsid), every process of it carries this token
    /// (<see cref="ProcessGroup.TokenVariable"/>), and a timeout or cancel kills the whole group, not just the leader.
    /// </summary>
    public string? ProcessGroupToken { get; init; }
    /// <summary>Called once the group's leader runs (with <see cref="ProcessGroupToken"/>): the place to journal it.</summary>
    public Action<ProcessGroupRecord>? OnGroupStarted { get; init; }

    /// <summary>Runs to completion. A non-zero exit is a result, not an exception; a timeout kills the process (and is reported).</summary>
    public async Task<CommandResult> RunAsync(CancellationToken cancellationToken = default)
    {
        var clock = Stopwatch.StartNew();
        using var timeout = new CancellationTokenSource(Timeout);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        var (program, arguments) = ProcessGroupToken is null ? (Program, Arguments)
            : (Setsid ?? throw new SafeDeployException("CommandNotFound", ErrorKind.NotInstalled, "setsid",
                "Running a phase command in its own process group needs setsid(1) (util-linux).", "Install util-linux."),
               (IReadOnlyList<string>)["--wait", Program, .. Arguments]);
        var cmd = Cli.Wrap(program)
            .WithArguments(arguments)
            .WithValidation(CommandResultValidation.None)
            .WithStandardOutputPipe(PipeTarget.Merge(PipeTarget.ToStringBuilder(stdout), LineTarget()))
            .WithStandardErrorPipe(PipeTarget.Merge(PipeTarget.ToStringBuilder(stderr), LineTarget()));
        if (WorkingDirectory is not null) cmd = cmd.WithWorkingDirectory(WorkingDirectory);
        var env = ChildEnvironment();
        if (env.Count > 0) cmd = cmd.WithEnvironmentVariables(env);
        if (StandardInput is not null) cmd = cmd.WithStandardInputPipe(PipeSource.FromString(StandardInput));
        try
        {
            var task = cmd.ExecuteAsync(linked.Token);
            CancellationTokenRegistration killGroup = default;
            if (ProcessGroupToken is not null)
            {
                // A leader already gone (a fast command) leaves only its token: the record is written all the same.
                var group = ProcessGroup.Describe(task.ProcessId, ProcessGroupToken) ?? new ProcessGroupRecord(task.ProcessId, 0, ProcessInfo.BootId, ProcessGroupToken);
                // CliWrap kills only the leader; what it started would keep running (and our pipes open).
                killGroup = linked.Token.Register(() => ProcessGroup.Kill(group));
                try { OnGroupStarted?.Invoke(group); }
                catch
                {
                    // Not journaled (a full disk): nothing may run that recovery could not find; end it before failing.
                    ProcessGroup.Kill(group);
                    try { await task.ConfigureAwait(false); } catch (OperationCanceledException) { }
                    await killGroup.DisposeAsync().ConfigureAwait(false);
                    throw;
                }
            }
            CliWrap.CommandResult result;
            try { result = await task.ConfigureAwait(false); }
            finally { await killGroup.DisposeAsync().ConfigureAwait(false); }
            return new CommandResult(Program, Arguments, result.ExitCode, stdout.ToString(), stderr.ToString(), clock.Elapsed, false);
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            return new CommandResult(Program, Arguments, -1, stdout.ToString(), stderr.ToString(), clock.Elapsed, true);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new SafeDeployException("CommandNotFound", ErrorKind.ObjectNotFound, Program,
                $"Cannot start '{Program}': {e.Message}", $"Install '{Program}' or put it on PATH.", e);
        }
    }

    /// <summary>Runs synchronously (for engine code that is itself synchronous).</summary>
    public CommandResult Run(CancellationToken cancellationToken = default) => RunAsync(cancellationToken).GetAwaiter().GetResult();

    IReadOnlyDictionary<string, string?> ChildEnvironment()
    {
        var env = IsolatedEnvironment is null ? new Dictionary<string, string?>(Environment, StringComparer.Ordinal)
            : new Dictionary<string, string?>(IsolatedEnvironment.AsOverlay(), StringComparer.Ordinal);
        if (IsolatedEnvironment is not null) foreach (var (k, v) in Environment) env[k] = v;
        if (ProcessGroupToken is not null) env[ProcessGroup.TokenVariable] = ProcessGroupToken;
        return env;
    }

    /// <summary>setsid(1) from the system directories (never a PATH look-up).</summary>
    public static string? Setsid => FindSystemProgram("setsid");

    /// <summary>A program from <see cref="ProcessEnvironment.DefaultPath"/>'s directories only (null when absent).</summary>
    public static string? FindSystemProgram(string name) =>
        ProcessEnvironment.DefaultPath.Split(':').Select(d => System.IO.Path.Combine(d, name)).FirstOrDefault(File.Exists);

    PipeTarget LineTarget() => OnLine is null ? PipeTarget.Null : PipeTarget.ToDelegate(OnLine);

    public static string Format(string program, IEnumerable<string> arguments) =>
        string.Join(' ', new[] { program }.Concat(arguments).Select(Quote));

    static string Quote(string a) => a.Length > 0 && a.All(c => char.IsLetterOrDigit(c) || "-_./=:@%+,".Contains(c)) ? a : "'" + a.Replace("'", "'\\''") + "'";

    /// <summary>Finds a program on PATH (null when absent).</summary>
    public static string? Which(string program) => Which(program, System.Environment.GetEnvironmentVariable("PATH"));

    /// <summary>Finds a program on the given PATH value (a child's, not necessarily ours; null when absent).</summary>
    public static string? Which(string program, string? path)
    {
        if (program.Contains('/')) return File.Exists(program) ? program : null;
        foreach (var dir in (path ?? "/usr/bin:/bin").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = System.IO.Path.Combine(dir, program);
            if (File.Exists(candidate)) return candidate;
        }
        return null;
    }
}
