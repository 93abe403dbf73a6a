using System.Globalization;
using System.Text.Json.Nodes;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Locking;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Deployment;

/// <summary>How to start the watchdog: a PowerShell host program (safedeploy or pwsh) and the module it imports.</summary>
public sealed record WatchdogLaunch(string HostProgram, string ModuleManifest, string? StateDirectoryBase);

/// <summary>
/// Try mode, as `netplan try`: after a successful run, a detached watchdog process (its own session, surviving the
/// deployer's shell) rolls the run back after a delay unless Confirm-SafeDeploy confirms it first.
/// </summary>
public static class TryMode
{
    /// <summary>Journals the pending confirmation, then starts the watchdog detached (setsid); returns the rollback time.</summary>
    public static DateTimeOffset Arm(DeploymentStore store, DeployResult result, int seconds, WatchdogLaunch launch)
    {
        var setsid = ExternalCommand.Which("setsid") ?? throw new SafeDeployException("TryModeUnavailable", ErrorKind.NotInstalled, "setsid",
            "Try mode starts its watchdog with setsid(1), which is not installed; the deployment stays as deployed.",
            "Install util-linux, or undo by hand with Undo-SafeDeploy if needed.");
        var runDir = store.RunDirectory(result.Name, result.Id);
        Directory.CreateDirectory(runDir);
        var log = Path.Combine(runDir, "watchdog.log");
        var marker = store.ConfirmMarker(result.Name, result.Id);
        var rollbackAt = DateTimeOffset.UtcNow.AddSeconds(seconds);
        static string Q(string s) => "'" + s.Replace("'", "''") + "'";
        var script = string.Join("\n",
            $"$deadline = [DateTime]::UtcNow.AddSeconds({seconds.ToString(CultureInfo.InvariantCulture)})",
            $"while ([DateTime]::UtcNow -lt $deadline -and -not [IO.File]::Exists({Q(marker)})) {{ [Threading.Thread]::Sleep(200) }}",
            $"if ([IO.File]::Exists({Q(marker)})) {{ 'confirmed: nothing to roll back'; exit 0 }}",
            $"if (-not (Get-Module SafeDeploy)) {{ Import-Module {Q(launch.ModuleManifest)} }}",
            $"'not confirmed within {seconds} s: rolling back'",
            $"Undo-SafeDeploy -Name {Q(result.Name)} -Id {Q(result.Id)} -UnlessConfirmed -Confirm:$false -ErrorAction Stop" +
                (launch.StateDirectoryBase is null ? "" : $" -StateDirectory {Q(launch.StateDirectoryBase)}"));
        using (var journal = Journal.Append(result.JournalPath!))
            journal.Write("try", new JsonObject
            {
                ["rollbackAt"] = rollbackAt.ToString("o", CultureInfo.InvariantCulture), ["seconds"] = seconds,
                ["watchdog"] = launch.HostProgram, ["watchdogLog"] = log, ["confirmMarker"] = marker,
            });
        // The watchdog's output goes to its log, never to our pipes, so this returns as soon as setsid has forked.
        var r = new ExternalCommand
        {
            Program = setsid,
            Arguments = ["-f", "/bin/sh", "-c", "exec \"$0\" -Command \"$1\" </dev/null >>\"$2\" 2>&1", launch.HostProgram, script, log],
            Timeout = TimeSpan.FromSeconds(30),
        }.Run();
        if (!r.Succeeded)
            throw new SafeDeployException("TryModeUnavailable", ErrorKind.InvalidOperation, result.Name,
                $"Could not start the try-mode watchdog ({r.CommandLine} exited with {r.ExitCode}: {r.StandardError.Trim()}); the deployment stays as deployed.",
                "Confirm nothing is needed; undo with Undo-SafeDeploy if the change must go.");
        return rollbackAt;
    }

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
        if (now.Status != "Succeeded")
            throw new SafeDeployException("TryExpired", ErrorKind.InvalidOperation, name,
                $"Run '{now.Id}' of '{name}' is already {now.Status}: it was not confirmed before {now.RollbackAt:u}.",
                "Deploy again (with a longer -TrySeconds) and confirm in time.");
        Files.AtomicFile.WriteAllText(store.ConfirmMarker(name, now.Id), DateTimeOffset.UtcNow.ToString("o", CultureInfo.InvariantCulture));
        using (var journal = Journal.Append(pending.JournalPath))
            journal.Write("confirmed", new JsonObject { ["pid"] = Environment.ProcessId });
        return store.Summarize(pending.JournalPath);
    }
}
