using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Fleet;

/// <summary>
/// Runs a host's PowerShell step and parses its result line: in a PowerShell remoting session over SSH where the host has
/// pwsh and the `powershell` subsystem (and the module gave a <see cref="RemoteSessionInvoker"/>), else `ssh host -- pwsh`
/// (or the uploaded safedeploy host). A host whose session cannot be opened falls back to ssh, once for the whole run.
/// </summary>
internal sealed class RemoteRunner(SshTransport ssh, RemoteSessionInvoker? sessions, IOperationReporter reporter, TimeSpan timeout)
{
    readonly HashSet<string> noSession = new(StringComparer.Ordinal);

    /// <summary>
    /// Runs <paramref name="script"/> on the staged host, under the rollout's per-host lock when <paramref name="rollout"/> is
    /// given. A host run by the uploaded safedeploy host gets <paramref name="step"/> instead when there is one: the same work
    /// as a <see cref="HostStep"/> request, without starting PowerShell there.
    /// </summary>
    public RemoteOutcome? Run(FleetHost host, HostStage stage, string? rollout, string script, CancellationToken token, out string? failure, string? step = null)
    {
        void Line(string line) => reporter.Verbose($"[{host.Name}] {line}");
        if (step is not null && rollout is not null && stage.Pwsh is null && stage.HostBundle is { } exe)
            return Finish(host, ssh.Run(host, RemoteScripts.StepRunner(stage.FleetDir, rollout, host.Name, stage.Module, exe), step, timeout, token, Line), out failure);
        if (stage.Pwsh is not null && sessions is not null && !NoSession(host))
        {
            var r = sessions(new RemoteSessionRequest(host.Name, host.Address, host.Port, host.User, host.IdentityFile, ssh.SessionOptions(host),
                RemoteScripts.SessionScript(stage.FleetDir, rollout, host.Name, stage.Module, script, timeout), timeout, Line), token);
            token.ThrowIfCancellationRequested();
            if (r.Opened)
            {
                var got = RemoteScripts.Parse(r.Output);
                failure = got is not null ? null
                    : r.TimedOut ? TimedOut(host)
                    : $"Host '{host.Name}' reported no result through its PowerShell session: {Tail(r.Failure ?? r.Output)}";
                return got;
            }
            lock (noSession) noSession.Add(host.Name);
            reporter.Verbose($"Host '{host.Name}': no PowerShell remoting session over SSH ({Tail(r.Failure ?? "")}); using ssh with pwsh instead.");
        }
        var (command, input) = RemoteScripts.Runner(stage.FleetDir, rollout, host.Name, stage.Pwsh, stage.Module, stage.HostBundle, script);
        return Finish(host, ssh.Run(host, command, input, timeout, token, Line), out failure);
    }

    /// <summary>The outcome of a host step's ssh call (its result line), or null with <paramref name="failure"/> saying why there is none.</summary>
    public RemoteOutcome? Finish(FleetHost host, CommandResult c, out string? failure)
    {
        var outcome = RemoteScripts.Parse(c.StandardOutput);
        failure = outcome is not null ? null
            : c.TimedOut ? TimedOut(host)
            : $"Host '{host.Name}' reported no result ({(SshTransport.IsConnectionFailure(c) ? "the connection was lost" : "exit " + c.ExitCode)}): " +
              Tail(c.StandardError + c.StandardOutput);
        return outcome;
    }

    bool NoSession(FleetHost host) { lock (noSession) return noSession.Contains(host.Name); }

    string TimedOut(FleetHost host) => $"Host '{host.Name}' did not finish within {timeout}; its own journal rolls the run back if its process died.";

    static string Tail(string text) => string.Join(" ", text.Trim().Split('\n').TakeLast(5));
}
