using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Actions;

/// <summary>A command line (run by /bin/sh -c) or an argument list (run directly).</summary>
internal sealed record CommandSpec(string? CommandLine, IReadOnlyList<string>? Arguments)
{
    public string Program => CommandLine is not null ? "/bin/sh" : Arguments![0];
    public IReadOnlyList<string> ProgramArguments => CommandLine is not null ? ["-c", CommandLine] : Arguments!.Skip(1).ToArray();
    public override string ToString() => CommandLine ?? ExternalCommand.Format(Arguments![0], Arguments.Skip(1));
}

/// <summary>`run`: an external command with optional working directory, environment, timeout and undo command.</summary>
internal sealed class RunAction : IDeployAction
{
    public required CommandSpec Command { get; init; }
    public CommandSpec? Undo { get; init; }
    public string? WorkingDirectory { get; init; }
    /// <summary>The phase's <c>environment:</c> and <c>inheritEnvironment:</c> (over the deployment's).</summary>
    public EnvironmentSpec? EnvironmentSpec { get; init; }
    public TimeSpan Timeout { get; init; } = TimeSpan.FromMinutes(30);
    public IReadOnlyList<string> WritesDeclared { get; init; } = Array.Empty<string>();

    public string Kind => "run";
    public IReadOnlyList<string> Writes => WritesDeclared;
    public string Describe() => $"run: {Command}" + (Undo is null ? "" : $" (undo: {Undo})");

    public async Task ExecuteAsync(ActionContext context)
    {
        if (Undo is not null) context.RecordUndo("run", new Dictionary<string, string?> { ["command"] = Command.ToString() });
        await RunAsync(context, Command, "command").ConfigureAwait(false);
    }

    public async Task UndoAsync(ActionContext context, IReadOnlyList<UndoRecord> recorded)
    {
        if (Undo is null || !recorded.Any(r => r.Step == "run")) return;
        await RunAsync(context, Undo, "undo command").ConfigureAwait(false);
    }

    async Task RunAsync(ActionContext context, CommandSpec spec, string what)
    {
        // A clean environment (never the deployer's secrets), then the manifest's, then SafeDeploy's own variables.
        var env = ProcessEnvironment.FromManifest(context.DeploymentEnvironment, EnvironmentSpec)
            .With(context.Root.Environment(context.PhaseName, context.DeploymentName));
        var wd = WorkingDirectory is null ? context.ManifestDirectory : context.ResolveSource(WorkingDirectory);
        // Its own process group, journaled twice: its token before the start (recovery ends every process carrying it), and
        // right after the start its pgid with the leader's start time (recovery ends the group even where a process dropped
        // the token from its environment, and a reused pid never matches). The second record is written even when the
        // leader is already gone (then as a token record), so every run writes the same number of records.
        var token = ProcessGroup.NewToken();
        context.ProcessGroup(ProcessGroupRecord.ForToken(token));
        var result = await context.RunCommandAsync(new ExternalCommand
        {
            Program = spec.Program, Arguments = spec.ProgramArguments, WorkingDirectory = wd, IsolatedEnvironment = env, Timeout = Timeout,
            ProcessGroupToken = token, OnGroupStarted = context.ProcessGroup,
        }).ConfigureAwait(false);
        if (result.TimedOut)
            throw new SafeDeployException("PhaseTimeout", ErrorKind.OperationTimeout, context.PhaseName,
                $"Phase '{context.PhaseName}': {what} '{spec}' did not finish within {Timeout.TotalSeconds:0.#} s and was killed.",
                "Raise the phase's run timeout, or find out why the command hangs (its output is in the phase log).");
        if (result.ExitCode != 0)
            throw new SafeDeployException("PhaseCommandFailed", ErrorKind.InvalidOperation, context.PhaseName,
                $"Phase '{context.PhaseName}': {what} '{spec}' exited with code {result.ExitCode}.{Tail(result.StandardError)}",
                "Read the phase's output (Output in the result, or the log file), fix the cause and deploy again.");
    }

    static string Tail(string stderr)
    {
        var t = stderr.Trim();
        if (t.Length == 0) return "";
        return " " + (t.Length > 400 ? "..." + t[^400..] : t);
    }
}
