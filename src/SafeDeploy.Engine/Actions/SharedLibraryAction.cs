using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Platform;
using SafeDeploy.Engine.Services;
using SafeDeploy.Engine.SharedLibraries;

namespace SafeDeploy.Engine.Actions;

/// <summary>`sharedLibrary`: Test-SharedLibrary as a phase; an invalid library stops the deployment before anything is installed.</summary>
internal sealed class SharedLibraryAction : IDeployAction
{
    public required string Path { get; init; }
    public IReadOnlyList<string> Symbols { get; init; } = Array.Empty<string>();
    public bool Canary { get; init; } = true;
    public IReadOnlyList<string> Probes { get; init; } = Array.Empty<string>();
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(10);

    public string Kind => "sharedLibrary";
    public IReadOnlyList<string> Writes => Array.Empty<string>();
    public string Describe() => $"validate {Path}" + (Symbols.Count > 0 ? $" (exports {string.Join(", ", Symbols)})" : "") + (Canary ? ", canary processes" : "");

    public async Task ExecuteAsync(ActionContext context)
    {
        // The library is read where it was built (relative to the manifest), before any install: not placed under -Root.
        var path = context.ResolveSource(Path);
        var report = await SharedLibraryValidator.ValidateAsync(path, new SharedLibraryCheckOptions
        {
            Symbols = Symbols, Canary = Canary, Probes = Probes, Timeout = Timeout, Reporter = context.Reporter,
        }, context.Cancellation).ConfigureAwait(false);
        context.Log.WriteLine($"{path}: {report.Class} {report.Machine} {report.Type} ({report.Kind}), needs {string.Join(", ", report.Needed)}, sha256 {report.Sha256}");
        if (Symbols.Count > 0) context.Log.WriteLine($"symbols found: {string.Join(", ", report.SymbolsFound)}; missing: {string.Join(", ", report.SymbolsMissing)}");
        foreach (var c in report.Canary)
            context.Log.WriteLine($"canary {c.Program}: {(c.Skipped ? "skipped" : c.Passed ? "ok" : "FAIL")} exit {c.ExitCode}{(c.Signal is { } s ? $" signal {s}" : "")}{(c.TimedOut ? " timed out" : "")} in {c.Duration.TotalMilliseconds:0} ms{(c.StdErr.Length > 0 ? "\n  stderr: " + c.StdErr.Trim() : "")}");
        if (!report.IsValid)
            throw new SafeDeployException("SharedLibraryInvalid", ErrorKind.InvalidData, path,
                $"Phase '{context.PhaseName}': '{path}' must not be preloaded: {string.Join(" ", report.Problems)}",
                "Fix the library (see the phase output for each check), rebuild and deploy again.");
    }

    public Task UndoAsync(ActionContext context, IReadOnlyList<UndoRecord> recorded) => Task.CompletedTask;
}
