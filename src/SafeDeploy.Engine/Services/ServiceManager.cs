using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Services;

/// <summary>Whether a service runs, checked (never assumed from a command's exit code alone).</summary>
internal sealed record ServiceStatus(bool Running, int? Pid, string Detail);

/// <summary>What a stop did: whether the service had been running, and whether a hanging stop was escalated to a kill.</summary>
internal sealed record ServiceStopResult(bool WasRunning, bool Escalated, int? Pid, TimeSpan Duration);

/// <summary>What a start did.</summary>
internal sealed record ServiceStartResult(bool WasRunning, int? Pid, TimeSpan Duration);

/// <summary>
/// Stops, starts and checks one service. A stop counts only when the service is seen gone, a start only when it is seen
/// running; a stop that does not finish in time is escalated (SIGTERM, then SIGKILL, or the manager's kill).
/// </summary>
internal interface IServiceManager
{
    /// <summary>"process sample-service (pid file /run/sample.pid)", "systemd unit nginx.service".</summary>
    string Describe();
    Task<ServiceStatus> GetStatusAsync(CancellationToken cancellationToken);
    Task<ServiceStopResult> StopAsync(IOperationReporter reporter, CancellationToken cancellationToken);
    Task<ServiceStartResult> StartAsync(IOperationReporter reporter, CancellationToken cancellationToken);
}

/// <summary>Liveness of a pid read from /proc: a zombie (exited, not yet reaped) counts as gone.</summary>
internal static class ProcessLiveness
{
    public static bool IsAlive(int pid)
    {
        if (pid <= 0 || !Native.ProcessExists(pid)) return false;
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            int close = stat.LastIndexOf(')');
            return close < 0 || close + 2 >= stat.Length || stat[close + 2] is not ('Z' or 'X');
        }
        catch (IOException) { return false; }
    }

    /// <summary>Polls until the process is gone or the time is up; true when gone.</summary>
    public static async Task<bool> WaitGoneAsync(int pid, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (IsAlive(pid))
        {
            if (DateTime.UtcNow >= deadline) return false;
            await Task.Delay(20, cancellationToken).ConfigureAwait(false);
        }
        return true;
    }
}
