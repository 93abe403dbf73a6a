using System.Diagnostics;
using System.Globalization;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Services;

/// <summary>A systemd unit, through systemctl.</summary>
internal sealed record SystemdServiceOptions
{
    public required string Unit { get; init; }
    /// <summary>How long `systemctl stop` may take before the unit is killed (systemctl kill --signal=SIGKILL).</summary>
    public TimeSpan StopTimeout { get; init; } = TimeSpan.FromSeconds(30);
    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(60);
    /// <summary>The systemctl program (tests point this at a recording stand-in; never at real units).</summary>
    public string Systemctl { get; init; } = "systemctl";
    /// <summary>--user units instead of system ones.</summary>
    public bool User { get; init; }
}

/// <summary>
/// systemd: `systemctl stop` under a timeout, then `systemctl kill --signal=SIGKILL`, confirmed by `systemctl is-active`;
/// `systemctl start`, confirmed by `is-active`. The commands are built here as argument lists (see the *Command methods).
/// </summary>
internal sealed class SystemdServiceManager(SystemdServiceOptions options) : IServiceManager
{
    public SystemdServiceOptions Options => options;

    public string Describe() => $"systemd unit {options.Unit}";

    public ExternalCommand StopCommand() => Systemctl(options.StopTimeout, "stop", options.Unit);
    public ExternalCommand StartCommand() => Systemctl(options.StartTimeout, "start", options.Unit);
    public ExternalCommand IsActiveCommand() => Systemctl(TimeSpan.FromSeconds(15), "is-active", "--quiet", options.Unit);
    public ExternalCommand KillCommand() => Systemctl(TimeSpan.FromSeconds(15), "kill", "--signal=SIGKILL", options.Unit);
    public ExternalCommand MainPidCommand() => Systemctl(TimeSpan.FromSeconds(15), "show", "--property=MainPID", "--value", options.Unit);

    ExternalCommand Systemctl(TimeSpan timeout, params string[] args) => new()
    {
        Program = options.Systemctl,
        Arguments = options.User ? ["--user", .. args] : args,
        Timeout = timeout,
    };

    public async Task<ServiceStatus> GetStatusAsync(CancellationToken cancellationToken)
    {
        var active = await IsActiveCommand().RunAsync(cancellationToken).ConfigureAwait(false);
        if (!active.Succeeded) return new ServiceStatus(false, null, $"{options.Unit} is not active");
        var show = await MainPidCommand().RunAsync(cancellationToken).ConfigureAwait(false);
        int? pid = int.TryParse(show.StandardOutput.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var p) && p > 0 ? p : null;
        return new ServiceStatus(true, pid, $"{options.Unit} is active{(pid is null ? "" : $" (main pid {pid})")}");
    }

    public async Task<ServiceStopResult> StopAsync(IOperationReporter reporter, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var before = await GetStatusAsync(cancellationToken).ConfigureAwait(false);
        if (!before.Running) return new ServiceStopResult(false, false, null, clock.Elapsed);
        reporter.Verbose($"systemctl stop {options.Unit} (kill after {options.StopTimeout.TotalSeconds:0.#} s)");
        var stop = await StopCommand().RunAsync(cancellationToken).ConfigureAwait(false);
        bool escalated = false;
        if (stop.TimedOut || (await GetStatusAsync(cancellationToken).ConfigureAwait(false)).Running)
        {
            escalated = true;
            reporter.Warning($"{options.Unit} did not stop within {options.StopTimeout.TotalSeconds:0.#} s; systemctl kill --signal=SIGKILL.");
            await KillCommand().RunAsync(cancellationToken).ConfigureAwait(false);
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
            while ((await GetStatusAsync(cancellationToken).ConfigureAwait(false)).Running)
            {
                if (DateTime.UtcNow > deadline)
                    throw new SafeDeployException("ServiceStopFailed", ErrorKind.OperationTimeout, options.Unit,
                        $"systemd unit {options.Unit} is still active after stop and SIGKILL.", $"Look at `systemctl status {options.Unit}` and `journalctl -u {options.Unit}`.");
                await Task.Delay(100, cancellationToken).ConfigureAwait(false);
            }
        }
        return new ServiceStopResult(true, escalated, before.Pid, clock.Elapsed);
    }

    public async Task<ServiceStartResult> StartAsync(IOperationReporter reporter, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var before = await GetStatusAsync(cancellationToken).ConfigureAwait(false);
        if (before.Running) return new ServiceStartResult(true, before.Pid, clock.Elapsed);
        reporter.Verbose($"systemctl start {options.Unit}");
        var start = await StartCommand().RunAsync(cancellationToken).ConfigureAwait(false);
        var after = await GetStatusAsync(cancellationToken).ConfigureAwait(false);
        if (!start.Succeeded || !after.Running)
            throw new SafeDeployException("ServiceStartFailed", ErrorKind.InvalidOperation, options.Unit,
                $"systemd unit {options.Unit} did not start{(start.TimedOut ? " (systemctl start timed out)" : start.ExitCode != 0 ? $" (systemctl start exited with {start.ExitCode}: {start.StandardError.Trim()})" : " (not active afterwards)")}.",
                $"Look at `systemctl status {options.Unit}` and `journalctl -u {options.Unit}`.");
        return new ServiceStartResult(false, after.Pid, clock.Elapsed);
    }
}
