using System.Diagnostics;
using System.Globalization;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Files;
using SafeDeploy.Engine.Platform;
using SafeDeploy.Engine.SharedLibraries;

namespace SafeDeploy.Engine.Services;

/// <summary>How SafeDeploy runs a service itself (the `process` manager): for containers and VMs without systemd.</summary>
public sealed record ProcessServiceOptions
{
    /// <summary>Program and arguments.</summary>
    public required IReadOnlyList<string> Command { get; init; }
    /// <summary>Where the pid is kept (already under -Root).</summary>
    public required string PidFile { get; init; }
    /// <summary>stdout and stderr of the service are appended here (already under -Root); null: /dev/null.</summary>
    public string? LogFile { get; init; }
    public string? WorkingDirectory { get; init; }
    public IReadOnlyDictionary<string, string> Environment { get; init; } = new Dictionary<string, string>();
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
public sealed class ProcessServiceManager(ProcessServiceOptions options) : IServiceManager
{
    // Runs in the detached session: records its own pid, detaches stdio, closes every other descriptor it inherited (a
    // deployer's pipes must not stay open for the life of the service; bash can close any number, sh only 3-9), applies the preload to the service only
    // (not to this shell), then becomes the service, so the recorded pid is the service's.
    const string Launcher = """
        echo $$ > "$1.tmp" && mv -f "$1.tmp" "$1" || exit 111
        exec >>"$2" 2>&1 </dev/null
        if [ -n "$BASH_VERSION" ]; then for fd in /proc/$$/fd/*; do fd=${fd##*/}; if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi; done 2>/dev/null; fi
        shift 2
        if [ -n "$SAFEDEPLOY_LD_PRELOAD" ]; then LD_PRELOAD="$SAFEDEPLOY_LD_PRELOAD"; export LD_PRELOAD; fi
        unset SAFEDEPLOY_LD_PRELOAD
        exec "$@"
        """;

    public ProcessServiceOptions Options => options;

    public string Describe() => $"process '{ExternalCommand.Format(options.Command[0], options.Command.Skip(1))}' (pid file {options.PidFile})";

    public Task<ServiceStatus> GetStatusAsync(CancellationToken cancellationToken)
    {
        var pid = ReadPid();
        if (pid is null) return Task.FromResult(new ServiceStatus(false, null, $"no pid in {options.PidFile}"));
        if (!IsOurs(pid.Value)) return Task.FromResult(new ServiceStatus(false, null, $"pid {pid} from {options.PidFile} is gone (or is another program now)"));
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
        try { File.Delete(options.PidFile); } catch (IOException) { }
        return new ServiceStopResult(true, escalated, pid, clock.Elapsed);
    }

    public async Task<ServiceStartResult> StartAsync(IOperationReporter reporter, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var before = await GetStatusAsync(cancellationToken).ConfigureAwait(false);
        if (before.Running) { reporter.Verbose($"{Describe()}: already running as pid {before.Pid}."); return new ServiceStartResult(true, before.Pid, clock.Elapsed); }

        var program = ExternalCommand.Which(options.Command[0]) ?? throw new SafeDeployException("CommandNotFound", ErrorKind.ObjectNotFound, options.Command[0],
            $"Cannot start the service: '{options.Command[0]}' does not exist or is not on PATH.", "Fix the service's command, or install the program.");
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(options.PidFile))!);
        if (options.LogFile is not null) Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(options.LogFile))!);
        try { File.Delete(options.PidFile); } catch (IOException) { }

        var env = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var (k, v) in options.Environment) env[k] = v;
        string? preload = options.PreloadFile is null ? null : PreloadFile.ToLdPreload(options.PreloadFile, options.Root);
        env["SAFEDEPLOY_LD_PRELOAD"] = preload ?? "";
        reporter.Verbose($"Starting {Describe()}{(preload is null ? "" : $" with LD_PRELOAD={preload} (from {options.PreloadFile})")}.");

        var setsid = ExternalCommand.Which("setsid") ?? throw new SafeDeployException("CommandNotFound", ErrorKind.NotInstalled, "setsid",
            "The process service manager needs setsid(1) (util-linux) to detach the service from the deployer.", "Install util-linux.");
        var result = await new ExternalCommand
        {
            Program = setsid,
            Arguments = ["--fork", File.Exists("/bin/bash") ? "/bin/bash" : "/bin/sh", "-c", Launcher, "safedeploy-service", Path.GetFullPath(options.PidFile), options.LogFile ?? "/dev/null", Path.GetFullPath(program), .. options.Command.Skip(1)],
            WorkingDirectory = options.WorkingDirectory, Environment = env, Timeout = options.StartTimeout,
        }.RunAsync(cancellationToken).ConfigureAwait(false);
        if (!result.Succeeded)
            throw StartFailed($"setsid exited with {result.ExitCode}{(result.TimedOut ? " (timed out)" : "")}: {result.StandardError.Trim()}");

        var deadline = DateTime.UtcNow + options.StartTimeout;
        int? pid;
        while ((pid = ReadPid()) is null)
        {
            if (DateTime.UtcNow > deadline) throw StartFailed($"no pid file appeared at {options.PidFile} within {options.StartTimeout.TotalSeconds:0.#} s");
            await Task.Delay(10, cancellationToken).ConfigureAwait(false);
        }
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

    int? ReadPid()
    {
        try
        {
            var text = LockedFileEditor.ReadUnlocked(options.PidFile);
            if (text is null) return null;
            return int.TryParse(System.Text.Encoding.ASCII.GetString(text).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && pid > 0 ? pid : null;
        }
        catch (IOException) { return null; }
    }

    /// <summary>The pid is alive and runs our program (not a stranger that reused the pid after a reboot or a crash).</summary>
    bool IsOurs(int pid)
    {
        if (!ProcessLiveness.IsAlive(pid)) return false;
        string[] argv;
        try { argv = File.ReadAllText($"/proc/{pid}/cmdline").Split('\0'); }
        catch (IOException) { return false; }
        var program = ExternalCommand.Which(options.Command[0]) is { } p ? Path.GetFullPath(p) : options.Command[0];
        // argv[0] of the service is the resolved program path (the launcher execs it so); during the launch window the pid
        // is still the launcher shell, whose command line holds that path as an argument.
        return argv.Contains(program, StringComparer.Ordinal);
    }
}
