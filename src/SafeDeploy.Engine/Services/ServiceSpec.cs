using SafeDeploy.Engine.Actions;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Services;

/// <summary>How a manifest names a service: manager and settings, shared by the service and loaded actions.</summary>
internal sealed record ServiceSpec
{
    public static readonly string[] Keys = ["manager", "unit", "user", "command", "pidFile", "logFile", "preloadFile", "workingDirectory", "environment",
        "inheritEnvironment", "start", "stop", "status", "kill", "stopTimeout", "startTimeout", "escalate", "systemctl"];

    public required string Manager { get; init; }
    public string? Unit { get; init; }
    public bool User { get; init; }
    public IReadOnlyList<string>? Command { get; init; }
    public string? PidFile { get; init; }
    public string? LogFile { get; init; }
    public string? PreloadFile { get; init; }
    public string? WorkingDirectory { get; init; }
    /// <summary>The phase's <c>environment:</c> and <c>inheritEnvironment:</c> (over the deployment's), as for a run phase.</summary>
    public EnvironmentSpec? EnvironmentSpec { get; init; }
    public IReadOnlyList<string>? Start { get; init; }
    public IReadOnlyList<string>? Stop { get; init; }
    public IReadOnlyList<string>? Status { get; init; }
    public IReadOnlyList<string>? Kill { get; init; }
    public TimeSpan? StopTimeout { get; init; }
    public TimeSpan? StartTimeout { get; init; }
    public bool Escalate { get; init; } = true;
    public string Systemctl { get; init; } = "systemctl";

    public IReadOnlyList<string> Writes => new[] { PidFile }.OfType<string>().ToList();

    public string Describe() => Manager switch
    {
        "systemd" => $"systemd unit {Unit}",
        "process" => $"process {ExternalCommand.Format(Command![0], Command.Skip(1))} (pid file {PidFile})",
        _ => $"service (status: {ExternalCommand.Format(Status![0], Status.Skip(1))})",
    };

    public IServiceManager Create(ActionContext context)
    {
        var stopTimeout = StopTimeout ?? TimeSpan.FromSeconds(10);
        return Manager switch
        {
            "systemd" => new SystemdServiceManager(new SystemdServiceOptions
            {
                Unit = Unit!, User = User, Systemctl = Systemctl, StopTimeout = StopTimeout ?? TimeSpan.FromSeconds(30), StartTimeout = StartTimeout ?? TimeSpan.FromSeconds(60),
            }),
            "command" => new CommandServiceManager(new CommandServiceOptions
            {
                Start = Start!, Stop = Stop!, Status = Status!, Kill = Escalate ? Kill : null, StopTimeout = stopTimeout, StartTimeout = StartTimeout ?? TimeSpan.FromSeconds(60),
                BaseEnvironment = Environment(context), WorkingDirectory = WorkingDirectory is null ? context.ManifestDirectory : context.ResolveSource(WorkingDirectory),
            }),
            _ => new ProcessServiceManager(new ProcessServiceOptions
            {
                Command = Command!.Select((a, i) => i == 0 && !Path.IsPathRooted(a) && a.Contains('/') ? context.ResolveSource(a) : a).ToList(),
                PidFile = context.MapPath(PidFile!), LogFile = LogFile is null ? null : context.MapPath(LogFile),
                PreloadFile = PreloadFile is null ? null : context.MapPath(PreloadFile), Root = context.Root.Path,
                WorkingDirectory = WorkingDirectory is null ? context.ManifestDirectory : context.ResolveSource(WorkingDirectory),
                BaseEnvironment = Environment(context), StopTimeout = stopTimeout, StartTimeout = StartTimeout ?? TimeSpan.FromSeconds(10), Escalate = Escalate,
            }),
        };
    }

    // As a run phase's: a clean environment (never the deployer's secrets), the manifest's, then SafeDeploy's own variables.
    ProcessEnvironment Environment(ActionContext context) =>
        ProcessEnvironment.FromManifest(context.DeploymentEnvironment, EnvironmentSpec)
            .With(context.Root.Environment(context.PhaseName, context.DeploymentName));
}
