using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Platform;
using SafeDeploy.Engine.Services;
using SafeDeploy.Engine.SharedLibraries;

namespace SafeDeploy.Engine.Actions;

/// <summary>`health`: HTTP GET (status and body pattern) or a command, retried until its timeout; failure rolls the deployment back.</summary>
internal sealed class HealthAction : IDeployAction
{
    public required HealthProbeOptions Probe { get; init; }

    public string Kind => "health";
    public IReadOnlyList<string> Writes => Array.Empty<string>();
    public string Describe() => Probe.Url is not null
        ? $"health GET {Probe.Url} expects {Probe.ExpectStatus}{(Probe.BodyPattern is null ? "" : $" and /{Probe.BodyPattern}/")} within {Probe.Timeout.TotalSeconds:0.#} s"
        : $"health command {ExternalCommand.Format(Probe.Command![0], Probe.Command.Skip(1))} within {Probe.Timeout.TotalSeconds:0.#} s";

    public async Task ExecuteAsync(ActionContext context)
    {
        var result = await HealthProbe.RunAsync(Probe, new LogReporter(context), context.Cancellation).ConfigureAwait(false);
        context.Log.WriteLine(result.Describe() + (result.LastBody is { Length: > 0 } b ? $"\nbody: {b.Trim()}" : ""));
        if (!result.Healthy)
            throw new SafeDeployException("HealthCheckFailed", ErrorKind.InvalidOperation, Probe.Url?.ToString() ?? context.PhaseName,
                $"Phase '{context.PhaseName}': the service is not healthy: {result.LastError} ({result.Attempts} attempts in {result.Duration.TotalSeconds:0.#} s).",
                "Read the service's log; the deployment was rolled back to the previous generation.");
    }

    public Task UndoAsync(ActionContext context, IReadOnlyList<UndoRecord> recorded) => Task.CompletedTask;
}
