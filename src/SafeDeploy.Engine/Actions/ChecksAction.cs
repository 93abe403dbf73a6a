using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Actions;

/// <summary>One precondition of a `checks` phase.</summary>
internal abstract record Check
{
    public abstract string Describe();
    /// <summary>Null when the check holds, else why it does not.</summary>
    public abstract Task<string?> EvaluateAsync(ActionContext context);
}

/// <summary>At least Minimum bytes free (for unprivileged users) on the filesystem holding Path (under -Root).</summary>
internal sealed record DiskFreeCheck(string Path, long Minimum) : Check
{
    public override string Describe() => $"diskFree {Path} >= {Minimum / 1048576.0:0.#} MiB";
    public override Task<string?> EvaluateAsync(ActionContext context)
    {
        var p = context.MapPath(Path);
        while (!Directory.Exists(p) && System.IO.Path.GetDirectoryName(p) is { } parent) p = parent; // nearest existing ancestor
        var free = Native.StatFs(p).AvailableBytes;
        return Task.FromResult(free >= Minimum ? null
            : $"only {free / 1048576.0:0.#} MiB free on the filesystem of '{context.MapPath(Path)}', {Minimum / 1048576.0:0.#} MiB needed");
    }
}

/// <summary>A file (or directory) exists (under -Root).</summary>
internal sealed record FileExistsCheck(string Path) : Check
{
    public override string Describe() => $"fileExists {Path}";
    public override Task<string?> EvaluateAsync(ActionContext context)
    {
        var p = System.IO.Path.IsPathRooted(Path) ? context.MapPath(Path) : context.ResolveSource(Path);
        return Task.FromResult(File.Exists(p) || Directory.Exists(p) ? null : $"'{p}' does not exist");
    }
}

/// <summary>A program is on PATH.</summary>
internal sealed record CommandExistsCheck(string Name) : Check
{
    public override string Describe() => $"commandExists {Name}";
    public override Task<string?> EvaluateAsync(ActionContext context) =>
        Task.FromResult(ExternalCommand.Which(Name) is null ? $"command '{Name}' is not on PATH" : null);
}

/// <summary>A command exits with 0.</summary>
internal sealed record CommandCheck(CommandSpec Command, TimeSpan Timeout) : Check
{
    public override string Describe() => $"command {Command} exits 0";
    public override async Task<string?> EvaluateAsync(ActionContext context)
    {
        var r = await context.RunCommandAsync(new ExternalCommand
        {
            Program = Command.Program, Arguments = Command.ProgramArguments, WorkingDirectory = context.ManifestDirectory, Timeout = Timeout,
            Environment = context.Root.Environment(),
        }).ConfigureAwait(false);
        return r.TimedOut ? $"'{Command}' timed out after {Timeout.TotalSeconds:0.#} s" : r.ExitCode != 0 ? $"'{Command}' exited with code {r.ExitCode}" : null;
    }
}

/// <summary>`checks`: preconditions; every failed one is named, and nothing is changed.</summary>
internal sealed class ChecksAction : IDeployAction
{
    public required IReadOnlyList<Check> Checks { get; init; }

    public string Kind => "checks";
    public IReadOnlyList<string> Writes => Array.Empty<string>();
    public string Describe() => "check " + string.Join("; ", Checks.Select(c => c.Describe()));

    public async Task ExecuteAsync(ActionContext context)
    {
        var failed = new List<string>();
        foreach (var check in Checks)
        {
            context.Cancellation.ThrowIfCancellationRequested();
            var why = await check.EvaluateAsync(context).ConfigureAwait(false);
            context.Log.WriteLine($"{(why is null ? "ok  " : "FAIL")} {check.Describe()}{(why is null ? "" : ": " + why)}");
            if (why is not null) failed.Add(why);
        }
        if (failed.Count > 0)
            throw new SafeDeployException("CheckFailed", ErrorKind.ResourceUnavailable, context.PhaseName,
                $"Phase '{context.PhaseName}': {failed.Count} check(s) failed: {string.Join("; ", failed)}.",
                "Fix what the checks name (free space, install the missing command or file), then deploy again.");
    }

    public Task UndoAsync(ActionContext context, IReadOnlyList<UndoRecord> recorded) => Task.CompletedTask;
}
