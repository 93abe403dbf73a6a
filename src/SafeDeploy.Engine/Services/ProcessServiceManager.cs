using System.Diagnostics;
using System.Globalization;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Files;
using SafeDeploy.Engine.Platform;
using SafeDeploy.Engine.SharedLibraries;

namespace SafeDeploy.Engine.Services;

/// <summary>How SafeDeploy runs a service itself (the `process` manager): for containers and VMs without systemd.</summary>
internal sealed record ProcessServiceOptions
{
    /// <summary>Program and arguments.</summary>
    public required IReadOnlyList<string> Command { get; init; }
    /// <summary>Where the pid is kept (already under -Root).</summary>
    public required string PidFile { get; init; }
    /// <summary>stdout and stderr of the service are appended here (already under -Root); null: /dev/null.</summary>
    public string? LogFile { get; init; }
    public string? WorkingDirectory { get; init; }
    public IReadOnlyDictionary<string, string> Environment { get; init; } = new Dictionary<string, string>();
    /// <summary>The environment the service starts from (null: <see cref="ProcessEnvironment.Default"/>); <see cref="Environment"/> is set on top.</summary>
    public ProcessEnvironment? BaseEnvironment { get; init; }
    /// <summary>
    /// An ld.so.preload file (already under -Root) whose entries the service is started with, through LD_PRELOAD, as the
    /// real loader would apply /etc/ld.so.preload; entries are placed under <see cref="Root"/>.
    /// </summary>
    public string? PreloadFile { get; init; }
    public string? Root { get; init; }
    /// <summary>How long SIGTERM may take before SIGKILL.</summary>
    public TimeSpan StopTimeout { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>Send SIGKILL when SIGTERM was not enough within StopTimeout (false: the stop fails instead, and a deployment rolls back).</summary>
    public bool Escalate { get; init; } = true;
    /// <summary>How long to wait for the pid file, and how long the new process must stay up to count as started.</summary>
    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(10);
    public TimeSpan StartGrace { get; init; } = TimeSpan.FromMilliseconds(300);
}

/// <summary>
/// Starts a command detached (setsid: its own session, so it survives the deployer and its terminal) with a pid file,
/// and stops it with SIGTERM, then SIGKILL after the timeout; both confirmed through /proc.
/// </summary>
internal sealed class ProcessServiceManager(ProcessServiceOptions options) : IServiceManager
{
    // Runs in the detached session: says its own pid on stdout (SafeDeploy writes the pid file itself), detaches stdio,
    // closes every other descriptor it inherited (a deployer's pipes must not stay open for the life of the service; bash
    // can close any number, sh only 3-9), applies the preload to the service only (not to this shell), then becomes the
    // service, so the pid said is the service's. The log path was checked first (a directory only root or we can write).
    const string Launcher = """
        echo $$
        exec >>"$1" 2>&1 </dev/null
        if [ -n "$BASH_VERSION" ]; then for fd in /proc/$$/fd/*; do fd=${fd##*/}; if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi; done 2>/dev/null; fi
        shift 1
        if [ -n "$SAFEDEPLOY_LD_PRELOAD" ]; then LD_PRELOAD="$SAFEDEPLOY_LD_PRELOAD"; export LD_PRELOAD; fi
        unset SAFEDEPLOY_LD_PRELOAD
        exec "$@"
        """;

    readonly PidFile pidFile = new(options.PidFile, options.Root);

    public ProcessServiceOptions Options => options;

    public string Describe() => $"process '{ExternalCommand.Format(options.Command[0], options.Command.Skip(1))}' (pid file {options.PidFile})";

    public Task<ServiceStatus> GetStatusAsync(CancellationToken cancellationToken)
    {
        var pid = ReadPid();
        if (pid is null) return Task.FromResult(new ServiceStatus(false, null, $"no pid in {options.PidFile}"));
        if (!IsOurs(pid.Value)) return Task.FromResult(new ServiceStatus(false, null, $"pid {pid} from {options.PidFile} is gone (or is not the process SafeDeploy started)"));
        return Task.FromResult(new ServiceStatus(true, pid, $"running as pid {pid}"));
    }

    public async Task<ServiceStopResult> StopAsync(IOperationReporter reporter, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var status = await GetStatusAsync(cancellationToken).ConfigureAwait(false);
        if (!status.Running) { reporter.Verbose($"{Describe()}: not running ({status.Detail})."); return new ServiceStopResult(false, false, null, clock.Elapsed); }
        int pid = status.Pid!.Value;
        reporter.Verbose($"Stopping pid {pid}: SIGTERM, SIGKILL after {options.StopTimeout.TotalSeconds:0.#} s.");
        Native.Kill(pid, 15);
        bool escalated = false;
        if (!await ProcessLiveness.WaitGoneAsync(pid, options.StopTimeout, cancellationToken).ConfigureAwait(false))
        {
            if (!options.Escalate)
                throw new SafeDeployException("ServiceStopTimeout", ErrorKind.OperationTimeout, options.PidFile,
                    $"{Describe()}: pid {pid} still runs {options.StopTimeout.TotalSeconds:0.#} s after SIGTERM, and escalation is off.",
                    "Find out why the service ignores SIGTERM, or allow escalation to SIGKILL (escalate: true).");
            escalated = true;
            reporter.Warning($"{Describe()}: pid {pid} ignored SIGTERM for {options.StopTimeout.TotalSeconds:0.#} s; sent SIGKILL.");
            Native.Kill(pid, 9);
            if (!await ProcessLiveness.WaitGoneAsync(pid, TimeSpan.FromSeconds(10), cancellationToken).ConfigureAwait(false))
                throw new SafeDeployException("ServiceStopFailed", ErrorKind.OperationTimeout, options.PidFile,
                    $"{Describe()}: pid {pid} survived SIGKILL for 10 s (stuck in the kernel, uninterruptible sleep?).",
                    "Look at the process (cat /proc/<pid>/stack as root); the deployment was not continued.");
        }
        pidFile.Delete();
        return new ServiceStopResult(true, escalated, pid, clock.Elapsed);
    }

    public async Task<ServiceStartResult> StartAsync(IOperationReporter reporter, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var before = await GetStatusAsync(cancellationToken).ConfigureAwait(false);
        if (before.Running) { reporter.Verbose($"{Describe()}: already running as pid {before.Pid}."); return new ServiceStartResult(true, before.Pid, clock.Elapsed); }

        var env = (options.BaseEnvironment ?? ProcessEnvironment.Default()).With(options.Environment.Select(p => new KeyValuePair<string, string?>(p.Key, p.Value)));
        var program = ExternalCommand.Which(options.Command[0], env.Variables.GetValueOrDefault("PATH")) ?? throw new SafeDeployException("CommandNotFound", ErrorKind.ObjectNotFound, options.Command[0],
            $"Cannot start the service: '{options.Command[0]}' does not exist or is not on the service's PATH.", "Fix the service's command, or install the program.");
        pidFile.Delete();
        var log = options.LogFile is null ? "/dev/null" : ServicePath.PrepareLog(options.LogFile, options.Root);

        string? preload = options.PreloadFile is null ? null : PreloadFile.ToLdPreload(options.PreloadFile, options.Root);
        var launch = new Dictionary<string, string?>(StringComparer.Ordinal) { ["SAFEDEPLOY_LD_PRELOAD"] = preload ?? "", [PidFile.TokenVariable] = pidFile.Token };
        reporter.Verbose($"Starting {Describe()}{(preload is null ? "" : $" with LD_PRELOAD={preload} (from {options.PreloadFile})")}.");

        var setsid = ExternalCommand.Setsid ?? throw new SafeDeployException("CommandNotFound", ErrorKind.NotInstalled, "setsid",
            "The process service manager needs setsid(1) (util-linux) to detach the service from the deployer.", "Install util-linux.");
        var shell = File.Exists("/bin/bash") ? "/bin/bash" : "/bin/sh";
        var result = await new ExternalCommand
        {
            Program = setsid,
            Arguments = ["--fork", shell, "-c", Launcher, "safedeploy-service", log, Path.GetFullPath(program), .. options.Command.Skip(1)],
            WorkingDirectory = options.WorkingDirectory, IsolatedEnvironment = env, Environment = launch, Timeout = options.StartTimeout,
        }.RunAsync(cancellationToken).ConfigureAwait(false);
        if (!result.Succeeded)
            throw StartFailed($"setsid exited with {result.ExitCode}{(result.TimedOut ? " (timed out)" : "")}: {result.StandardError.Trim()}");
        if (!int.TryParse(result.StandardOutput.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var started) || started <= 1)
            throw StartFailed($"the launcher did not say its pid (it printed '{result.StandardOutput.Trim()}')");
        pidFile.Write(started);
        int? pid = started;
        // The pid is the launcher shell's until it execs the service; give the service a moment to prove it stays up.
        await Task.Delay(options.StartGrace, cancellationToken).ConfigureAwait(false);
        if (!ProcessLiveness.IsAlive(pid.Value))
            throw StartFailed($"pid {pid} exited right after starting{LogTail()}");
        reporter.Verbose($"{Describe()}: running as pid {pid}.");
        return new ServiceStartResult(false, pid, clock.Elapsed);
    }

    SafeDeployException StartFailed(string why) =>
        new("ServiceStartFailed", ErrorKind.InvalidOperation, options.PidFile, $"Cannot start {Describe()}: {why}.",
            options.LogFile is null ? "Run the command by hand to see why it fails." : $"Read the service's log, {options.LogFile}.");

    string LogTail()
    {
        if (options.LogFile is null || !File.Exists(options.LogFile)) return "";
        var text = File.ReadAllText(options.LogFile).Trim();
        return text.Length == 0 ? "" : "; its log ends: " + (text.Length > 300 ? text[^300..] : text);
    }

    int? ReadPid() => pidFile.Read();

    /// <summary>The pid is alive, was started by our launcher for this pid file, and runs our program (not a stranger that reused the pid).</summary>
    bool IsOurs(int pid)
    {
        if (!pidFile.IsOurs(pid)) return false;
        string[] argv;
        try { argv = File.ReadAllText($"/proc/{pid}/cmdline").Split('\0'); }
        catch (IOException) { return false; }
        var program = ExternalCommand.Which(options.Command[0]) is { } p ? Path.GetFullPath(p) : options.Command[0];
        return argv.Contains(program, StringComparer.Ordinal);
    }
}
