using System.Diagnostics;
using System.Text.Json.Nodes;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Fleet;

/// <summary>
/// Deploys to, and rolls back, one host: stage by hash, then the host's own engine (a remoting session, or ssh). With
/// <paramref name="engineStep"/> (the manifest runs no PowerShell) a host run by the uploaded safedeploy host gets a
/// <see cref="HostStep"/> request instead of a script.
/// </summary>
sealed class HostDeployer(RemoteRunner runner, HostStaging staging, string rollout, RolloutOptions options, string name, bool engineStep)
{
    readonly Dictionary<string, HostStage> stages = new(StringComparer.Ordinal);

    public HostDeployResult Deploy(FleetHost host, int batch, RolloutJournal journal, CancellationToken token)
    {
        var clock = Stopwatch.StartNew();
        HostDeployResult Result(HostStatus status, string? error, RemoteOutcome? o = null) => new()
        {
            HostName = host.Name, Status = status, Batch = batch, Generation = o?.Generation ?? 0, Id = o?.Id, Error = error,
            Duration = clock.Elapsed, Name = name, Rollout = rollout, RollbackAt = o?.RollbackAt,
        };
        HostStage stage;
        CommandResult? ran;
        var variables = FleetRollout.VariablesFor(options, host);
        // The host-start record comes first: a step may run in the probe's round trip (nothing to upload, no pwsh there).
        journal.Write("host-start", new JsonObject { ["host"] = host.Name, ["batch"] = batch });
        try
        {
            var payload = staging.Payload(options.ManifestPath, host, variables);
            stage = staging.Stage(host, payload, Path.GetFileName(options.ManifestPath), !engineStep ? null : at =>
                (RemoteScripts.StepRunner(at.FleetDir, rollout, host.Name, at.Module, at.HostBundle!),
                 RemoteScripts.DeployRequest(at.FleetDir, rollout, host, at.ManifestPath, variables, options.TrySeconds)), token, out ran);
            lock (stages) stages[host.Name] = stage;
            options.Reporter.Verbose($"Host '{host.Name}': {(ran is null ? "staged" : "found staged, and deployed in the same ssh call,")} in {clock.ElapsedMilliseconds} ms " +
                $"({(stage.Pwsh is null ? "safedeploy host" : "pwsh " + stage.Pwsh)}).");
        }
        catch (SafeDeployException e) when (!token.IsCancellationRequested)
        {
            options.Reporter.Warning($"Host '{host.Name}' is unreachable and was not changed: {e.Message}");
            return Result(HostStatus.Unreachable, e.Message);
        }
        var script = RemoteScripts.Deploy(stage.FleetDir, rollout, host, stage.ManifestPath, variables, options.TrySeconds);
        var remote = Stopwatch.StartNew();
        var step = engineStep ? RemoteScripts.DeployRequest(stage.FleetDir, rollout, host, stage.ManifestPath, variables, options.TrySeconds) : null;
        string? failure;
        var outcome = ran is not null ? runner.Finish(host, ran, out failure) : runner.Run(host, stage, rollout, script, token, out failure, step);
        if (outcome is null) return Result(HostStatus.Failed, failure);
        options.Reporter.Verbose($"Host '{host.Name}': {outcome.Status}, generation {outcome.Generation} (run {outcome.Id}); " +
            $"remote run {(long)(ran?.Duration ?? remote.Elapsed).TotalMilliseconds} ms ({outcome.Channel}), of which the deployment {(long)outcome.EngineTime.TotalMilliseconds} ms.");
        return outcome.Status switch
        {
            RemoteStatus.Succeeded => Result(HostStatus.Succeeded, null, outcome),
            RemoteStatus.RollbackFailed => Result(HostStatus.RollbackFailed, outcome.Error, outcome),
            // The host's own engine rolled its phases back: it is as it was.
            RemoteStatus.RolledBack or RemoteStatus.Failed => Result(HostStatus.Failed, outcome.Error, outcome),
            _ => Result(HostStatus.Failed, outcome.Error),
        };
    }

    /// <summary>Undoes this rollout's run on the host; null when the host has nothing of this rollout to undo.</summary>
    public HostDeployResult? RollBack(FleetHost host, HostDeployResult deployed, RolloutJournal journal, CancellationToken token)
    {
        var clock = Stopwatch.StartNew();
        HostStage? stage;
        lock (stages) stages.TryGetValue(host.Name, out stage);
        try
        {
            // A resumed controller has not staged this host yet: the runtime is there already (the host was deployed), the probe finds it.
            stage ??= staging.Stage(host, staging.Payload(options.ManifestPath, host, FleetRollout.VariablesFor(options, host)), Path.GetFileName(options.ManifestPath), token);
        }
        catch (SafeDeployException e)
        {
            return deployed with { Status = HostStatus.RollbackFailed, Error = $"Could not reach the host to roll it back: {e.Message}", Duration = clock.Elapsed, Resumed = false };
        }
        journal.Write("rollback-host-start", new JsonObject { ["host"] = host.Name });
        var outcome = runner.Run(host, stage, rollout, RemoteScripts.RollBack(stage.FleetDir, rollout, host, name), token, out var failure,
            engineStep ? RemoteScripts.RollBackRequest(stage.FleetDir, rollout, host, name) : null);
        if (outcome?.Status == RemoteStatus.NotDeployed) return null;
        if (outcome is not null)
            options.Reporter.Verbose($"Host '{host.Name}': rollback {outcome.Status}, generation {outcome.Generation} in {clock.ElapsedMilliseconds} ms " +
                $"({outcome.Channel}).");
        var ok = outcome?.Status == RemoteStatus.Undone;
        return deployed with
        {
            Status = ok ? HostStatus.RolledBack : HostStatus.RollbackFailed, Generation = ok ? outcome!.Generation : deployed.Generation,
            Error = ok ? deployed.Error : outcome?.Error ?? failure, Duration = clock.Elapsed, Resumed = false,
        };
    }
}
