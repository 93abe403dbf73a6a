using System.Globalization;
using System.Text.Json.Nodes;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Locking;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Deployment;

/// <summary>How to start the watchdog: a PowerShell host program (safedeploy or pwsh) and the module it imports.</summary>
internal sealed record WatchdogLaunch(string HostProgram, string ModuleManifest, string? StateDirectoryBase);

/// <summary>
/// Try mode, as `netplan try`: after a successful run, a detached watchdog process (its own session, surviving the
/// deployer's shell) rolls the run back after a delay unless Confirm-SafeDeploy confirms it first.
/// </summary>
internal static class TryMode
{
    /// <summary>
    /// Journals the pending confirmation, then starts the watchdog detached (setsid): <see cref="WatchdogLaunch.HostProgram"/>
    /// by its absolute path, -NoProfile -NonInteractive, the documented default environment (<see cref="ProcessEnvironment"/>)
    /// plus its parameters as SAFEDEPLOY_TRY_* variables. Returns the rollback time.
    /// </summary>
    public static DateTimeOffset Arm(DeploymentStore store, DeployResult result, int seconds, WatchdogLaunch launch)
    {
        var setsid = ExternalCommand.Setsid ?? throw new SafeDeployException("TryModeUnavailable", ErrorKind.NotInstalled, "setsid",
            "Try mode starts its watchdog with setsid(1), which is not installed; the deployment stays as deployed.",
            "Install util-linux, or undo by hand with Undo-SafeDeploy if needed.");
        var host = TryWatchdog.CheckHost(launch.HostProgram);
        var runDir = store.RunDirectory(result.Name, result.Id);
        Directory.CreateDirectory(runDir);
        var log = Path.Combine(runDir, "watchdog.log");
        var outcome = Path.Combine(runDir, TryWatchdog.OutcomeFileName);
        var marker = store.ConfirmMarker(result.Name, result.Id);
        var rollbackAt = DateTimeOffset.UtcNow.AddSeconds(seconds);
        var env = TryWatchdog.Environment(new Dictionary<string, string>
        {
            ["NAME"] = result.Name, ["ID"] = result.Id, ["SECONDS"] = seconds.ToString(CultureInfo.InvariantCulture), ["MARKER"] = marker,
            ["OUTCOME"] = outcome, ["MODULE"] = launch.ModuleManifest, ["STATE"] = launch.StateDirectoryBase ?? "",
        });
        // A safedeploy host that is not the one-file build finds its module through SAFEDEPLOY_MODULE (a fleet host gets it so, its
        // module staged beside the host): the watchdog imports the deployer's own module, not whatever it would find by itself.
        if (Path.IsPathRooted(launch.ModuleManifest)) env = env.With([new KeyValuePair<string, string?>("SAFEDEPLOY_MODULE", launch.ModuleManifest)]);
        using (var journal = Journal.Append(result.JournalPath!))
            journal.Write("try", new JsonObject
            {
                ["rollbackAt"] = rollbackAt.ToString("o", CultureInfo.InvariantCulture), ["seconds"] = seconds,
                ["watchdog"] = host, ["watchdogLog"] = log, ["watchdogOutcome"] = outcome, ["confirmMarker"] = marker,
            });
        // The watchdog's output goes to its log, never to our pipes, so this returns as soon as setsid has forked. The shell
        // only redirects; host, script and log reach it as positional arguments.
        var r = new ExternalCommand
        {
            Program = setsid,
            Arguments = ["-f", "/bin/sh", "-c", "exec \"$0\" -NoProfile -NonInteractive -Command \"$1\" </dev/null >>\"$2\" 2>&1", host, TryWatchdog.Script, log],
            IsolatedEnvironment = env, WorkingDirectory = "/", Timeout = TimeSpan.FromSeconds(30),
        }.Run();
        if (!r.Succeeded)
            throw new SafeDeployException("TryModeUnavailable", ErrorKind.InvalidOperation, result.Name,
                $"Could not start the try-mode watchdog ({r.CommandLine} exited with {r.ExitCode}: {r.StandardError.Trim()}); the deployment stays as deployed.",
                "Confirm nothing is needed; undo with Undo-SafeDeploy if the change must go.");
        return rollbackAt;
    }

    /// <summary>
    /// What the watchdog of run <paramref name="runId"/> did (null: not a try-mode run). A watchdog whose process is gone while it
    /// still watched, or that never reported two minutes past the deadline, is <see cref="WatchdogState.Lost"/>: nobody will roll back.
    /// </summary>
    public static WatchdogOutcome? Outcome(DeploymentStore store, string name, string runId)
    {
        var records = Journal.Read(store.JournalPath(name, runId));
        var armed = records.LastOrDefault(r => (string?)r["type"] == "try");
        if (armed is null) return null;
        var rollbackAt = DateTimeOffset.Parse((string)armed["rollbackAt"]!, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind);
        var read = TryWatchdog.Read(Path.Combine(store.RunDirectory(name, runId), TryWatchdog.OutcomeFileName));
        // A host starting on a loaded machine can take many seconds before its first word: only long silence counts as lost.
        if (read is null)
            return DateTimeOffset.UtcNow > rollbackAt.AddMinutes(2)
                ? new WatchdogOutcome(WatchdogState.Lost, null, null, null, "the watchdog never reported (it did not start, or died at once)")
                : new WatchdogOutcome(WatchdogState.Watching, null, null, null, null);
        if (read.State == WatchdogState.Watching && (read.Pid is not { } pid || !Services.ProcessLiveness.IsAlive(pid)))
            return read with { State = WatchdogState.Lost, Message = "the watchdog stopped before rolling back (killed, or the machine rebooted)" };
        return read;
    }

    /// <summary>
    /// The try-mode run of <paramref name="name"/> (under <paramref name="root"/>: null is the real machine) that is neither
    /// confirmed nor undone, or null. The engine refuses a new deployment of the name while one is open (<see cref="RefuseIfOpen"/>).
    /// </summary>
    public static DeployHistoryEntry? OpenTry(DeploymentStore store, string name, string? root) =>
        store.History(name).LastOrDefault(h => h.RollbackAt is not null && !h.Confirmed && h.Status is not (DeployStatus.Undone or DeployStatus.RolledBack or DeployStatus.Incomplete) && SameRoot(h.Root, root)
                                               && !File.Exists(store.ConfirmMarker(name, h.Id)));

    /// <summary>Throws TryPending when a try-mode run of the name is still unconfirmed (call under the deployment's lock).</summary>
    public static void RefuseIfOpen(DeploymentStore store, string name, string? root)
    {
        if (OpenTry(store, name, root) is not { } open) return;
        var outcome = Outcome(store, name, open.Id);
        var state = outcome?.State switch
        {
            WatchdogState.RollbackFailed => $"its watchdog could not roll it back ({outcome.ErrorId}: {outcome.Message})",
            WatchdogState.Lost => $"its watchdog is gone ({outcome.Message})",
            _ => $"it rolls back at {open.RollbackAt:u} unless confirmed",
        };
        throw new SafeDeployException("TryPending", ErrorKind.ResourceBusy, name,
            $"Deployment '{name}' has an unconfirmed try-mode run '{open.Id}': {state}. A new deployment on top of it would leave the watchdog nothing it can undo.",
            $"Keep it with Confirm-SafeDeploy -Name {name}, or undo it with Undo-SafeDeploy -Name {name}, then deploy again.");
    }

    /// <summary>Journals the watchdog's final outcome (type "watchdog") once it has one; true when it wrote the record. Call under the deployment's lock.</summary>
    public static bool RecordOutcome(DeploymentStore store, string name, string runId)
    {
        if (Outcome(store, name, runId) is not { State: not WatchdogState.Watching } outcome) return false;
        var path = store.JournalPath(name, runId);
        if (Journal.Read(path).Any(r => (string?)r["type"] == "watchdog" && (string?)r["outcome"] == outcome.State.ToString())) return false;
        using var journal = Journal.Append(path);
        journal.Write("watchdog", outcome.ToJson());
        return true;
    }

    static bool SameRoot(string? a, string? b) =>
        string.IsNullOrEmpty(a) ? string.IsNullOrEmpty(b) : !string.IsNullOrEmpty(b) && Path.GetFullPath(a).TrimEnd('/') == Path.GetFullPath(b).TrimEnd('/');

    /// <summary>Confirms the latest try-mode run of <paramref name="name"/> so that its watchdog leaves it in place.</summary>
    public static DeployHistoryEntry Confirm(DeploymentStore store, string name, IOperationReporter reporter, CancellationToken token)
    {
        var history = store.History(name);
        var pending = history.LastOrDefault(h => h.RollbackAt is not null && !h.Confirmed)
            ?? throw new SafeDeployException("NothingToConfirm", ErrorKind.ObjectNotFound, name,
                $"Deployment '{name}' has no try-mode run waiting for confirmation.", "Deploy with Invoke-SafeDeploy -TrySeconds first; see Get-SafeDeployHistory.");
        var lockName = (string?)Journal.Read(pending.JournalPath).FirstOrDefault()?["lock"] ?? name;
        using var held = FileLock.Acquire(store.State.LockPath(lockName), new LockOptions { Purpose = $"confirm {name}", Reporter = reporter }, token);
        var now = store.Summarize(pending.JournalPath);
        RecordOutcome(store, name, now.Id); // a watchdog that already failed to roll back says so in the journal, before the confirmation
        // A run whose watchdog could not roll it back stands in part: confirming keeps it as it is, on purpose.
        bool rollbackFailed = now.Status == DeployStatus.RollbackFailed && Outcome(store, name, now.Id)?.State == WatchdogState.RollbackFailed;
        if (now.Status != DeployStatus.Succeeded && !rollbackFailed)
            throw new SafeDeployException("TryExpired", ErrorKind.InvalidOperation, name,
                $"Run '{now.Id}' of '{name}' is already {now.Status}: it was not confirmed before {now.RollbackAt:u}.",
                "Deploy again (with a longer -TrySeconds) and confirm in time.");
        Files.AtomicFile.WriteAllText(store.ConfirmMarker(name, now.Id), DateTimeOffset.UtcNow.ToString("o", CultureInfo.InvariantCulture));
        using (var journal = Journal.Append(pending.JournalPath))
            journal.Write("confirmed", new JsonObject { ["pid"] = Environment.ProcessId });
        return store.Summarize(pending.JournalPath);
    }
}
