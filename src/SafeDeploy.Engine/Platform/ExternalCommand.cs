using System.Diagnostics;
using System.Text;
using CliWrap;
using CliWrap.Buffered;
using SafeDeploy.Engine.Errors;

namespace SafeDeploy.Engine.Platform;

/// <summary>What an external command did.</summary>
public sealed record CommandResult(string Program, IReadOnlyList<string> Arguments, int ExitCode, string StandardOutput,
    string StandardError, TimeSpan Duration, bool TimedOut)
{
    public bool Succeeded => ExitCode == 0 && !TimedOut;
    /// <summary>"git push origin main" — for messages (arguments are not secrets by convention; never pass secrets as arguments).</summary>
    public string CommandLine => ExternalCommand.Format(Program, Arguments);
}

/// <summary>The one way SafeDeploy runs an external program: CliWrap, arguments as a list, always a timeout, always cancellable.</summary>
public sealed record ExternalCommand
{
    public required string Program { get; init; }
    public IReadOnlyList<string> Arguments { get; init; } = Array.Empty<string>();
    public string? WorkingDirectory { get; init; }
    public IReadOnlyDictionary<string, string?> Environment { get; init; } = new Dictionary<string, string?>();
    public TimeSpan Timeout { get; init; } = TimeSpan.FromMinutes(5);
    public string? StandardInput { get; init; }
    /// <summary>Receives each line of stdout and stderr as it arrives (for per-phase logs and verbose output).</summary>
    public Action<string>? OnLine { get; init; }

    /// <summary>Runs to completion. A non-zero exit is a result, not an exception; a timeout kills the process (and is reported).</summary>
    public async Task<CommandResult> RunAsync(CancellationToken cancellationToken = default)
    {
        var clock = Stopwatch.StartNew();
        using var timeout = new CancellationTokenSource(Timeout);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        var cmd = Cli.Wrap(Program)
            .WithArguments(Arguments)
            .WithValidation(CommandResultValidation.None)
            .WithStandardOutputPipe(PipeTarget.Merge(PipeTarget.ToStringBuilder(stdout), LineTarget()))
            .WithStandardErrorPipe(PipeTarget.Merge(PipeTarget.ToStringBuilder(stderr), LineTarget()));
        if (WorkingDirectory is not null) cmd = cmd.WithWorkingDirectory(WorkingDirectory);
        if (Environment.Count > 0) cmd = cmd.WithEnvironmentVariables(Environment);
        if (StandardInput is not null) cmd = cmd.WithStandardInputPipe(PipeSource.FromString(StandardInput));
        try
        {
            var result = await cmd.ExecuteAsync(linked.Token).ConfigureAwait(false);
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

    PipeTarget LineTarget() => OnLine is null ? PipeTarget.Null : PipeTarget.ToDelegate(OnLine);

    public static string Format(string program, IEnumerable<string> arguments) =>
        string.Join(' ', new[] { program }.Concat(arguments).Select(Quote));

    static string Quote(string a) => a.Length > 0 && a.All(c => char.IsLetterOrDigit(c) || "-_./=:@%+,".Contains(c)) ? a : "'" + a.Replace("'", "'\\''") + "'";

    /// <summary>Finds a program on PATH (null when absent).</summary>
    public static string? Which(string program)
    {
        if (program.Contains('/')) return File.Exists(program) ? program : null;
        foreach (var dir in (System.Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = System.IO.Path.Combine(dir, program);
            if (File.Exists(candidate)) return candidate;
        }
        return null;
    }
}
