using System.Diagnostics;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Services;

/// <summary>A service driven by commands (an init script, docker, supervisorctl ...): status exits 0 while it runs.</summary>
internal sealed record CommandServiceOptions
{
    public required IReadOnlyList<string> Start { get; init; }
    public required IReadOnlyList<string> Stop { get; init; }
    public required IReadOnlyList<string> Status { get; init; }
    /// <summary>Run when the service still runs after Stop and StopTimeout (the escalation); null: a hanging stop fails.</summary>
    public IReadOnlyList<string>? Kill { get; init; }
    public TimeSpan StopTimeout { get; init; } = TimeSpan.FromSeconds(30);
    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(60);
    public IReadOnlyDictionary<string, string?> Environment { get; init; } = new Dictionary<string, string?>();
    /// <summary>The environment the commands start from (null: <see cref="ProcessEnvironment.Default"/>); <see cref="Environment"/> is set on top.</summary>
    public ProcessEnvironment? BaseEnvironment { get; init; }
    public string? WorkingDirectory { get; init; }
}

/// <summary>The `command` manager: start/stop/status commands, with stop and start confirmed by the status command.</summary>
internal sealed class CommandServiceManager(CommandServiceOptions options) : IServiceManager
{
    public string Describe() => $"service with status command '{Format(options.Status)}'";

    static string Format(IReadOnlyList<string> argv) => ExternalCommand.Format(argv[0], argv.Skip(1));

    ExternalCommand Cmd(IReadOnlyList<string> argv, TimeSpan timeout)
    {
        var env = (options.BaseEnvironment ?? ProcessEnvironment.Default()).With(options.Environment);
        return new()
        {
            // Looked up on the commands' own PATH, not the deployer's.
            Program = ExternalCommand.Which(argv[0], env.Variables.GetValueOrDefault("PATH")) ?? argv[0], Arguments = argv.Skip(1).ToArray(), Timeout = timeout,
            IsolatedEnvironment = env, WorkingDirectory = options.WorkingDirectory,
        };
    }

    public async Task<ServiceStatus> GetStatusAsync(CancellationToken cancellationToken)
    {
        var r = await Cmd(options.Status, TimeSpan.FromSeconds(30)).RunAsync(cancellationToken).ConfigureAwait(false);
        return new ServiceStatus(r.Succeeded, null, r.Succeeded ? "status command exits 0" : $"status command exits {r.ExitCode}");
    }

    async Task<bool> WaitAsync(bool running, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            if ((await GetStatusAsync(cancellationToken).ConfigureAwait(false)).Running == running) return true;
            if (DateTime.UtcNow > deadline) return false;
            await Task.Delay(100, cancellationToken).ConfigureAwait(false);
        }
    }

    public async Task<ServiceStopResult> StopAsync(IOperationReporter reporter, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        if (!(await GetStatusAsync(cancellationToken).ConfigureAwait(false)).Running) return new ServiceStopResult(false, false, null, clock.Elapsed);
        reporter.Verbose($"Stopping: {Format(options.Stop)}");
        var stop = await Cmd(options.Stop, options.StopTimeout).RunAsync(cancellationToken).ConfigureAwait(false);
        var left = options.StopTimeout - clock.Elapsed;
        if (!stop.TimedOut && await WaitAsync(false, left > TimeSpan.Zero ? left : TimeSpan.Zero, cancellationToken).ConfigureAwait(false))
            return new ServiceStopResult(true, false, null, clock.Elapsed);
        if (options.Kill is null)
            throw new SafeDeployException("ServiceStopFailed", ErrorKind.OperationTimeout, Format(options.Stop),
                $"The service still runs {options.StopTimeout.TotalSeconds:0.#} s after '{Format(options.Stop)}', and no kill command is configured.",
                "Add a 'kill' command to the service (the escalation), or raise 'stopTimeout'.");
        reporter.Warning($"The service did not stop within {options.StopTimeout.TotalSeconds:0.#} s; escalating: {Format(options.Kill)}");
        await Cmd(options.Kill, TimeSpan.FromSeconds(30)).RunAsync(cancellationToken).ConfigureAwait(false);
        if (!await WaitAsync(false, TimeSpan.FromSeconds(10), cancellationToken).ConfigureAwait(false))
            throw new SafeDeployException("ServiceStopFailed", ErrorKind.OperationTimeout, Format(options.Kill),
                $"The service still runs after '{Format(options.Stop)}' and '{Format(options.Kill)}'.", "Stop it by hand, then deploy again.");
        return new ServiceStopResult(true, true, null, clock.Elapsed);
    }

    public async Task<ServiceStartResult> StartAsync(IOperationReporter reporter, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        if ((await GetStatusAsync(cancellationToken).ConfigureAwait(false)).Running) return new ServiceStartResult(true, null, clock.Elapsed);
        reporter.Verbose($"Starting: {Format(options.Start)}");
        var start = await Cmd(options.Start, options.StartTimeout).RunAsync(cancellationToken).ConfigureAwait(false);
        var left = options.StartTimeout - clock.Elapsed;
        if (!start.Succeeded || !await WaitAsync(true, left > TimeSpan.Zero ? left : TimeSpan.Zero, cancellationToken).ConfigureAwait(false))
            throw new SafeDeployException("ServiceStartFailed", ErrorKind.InvalidOperation, Format(options.Start),
                $"The service did not start: '{Format(options.Start)}' {(start.TimedOut ? "timed out" : $"exited with {start.ExitCode}")}{(start.Succeeded ? ", but the status command never reported it running" : "")}. {start.StandardError.Trim()}",
                "Run the start and status commands by hand to see why.");
        return new ServiceStartResult(false, null, clock.Elapsed);
    }
}
