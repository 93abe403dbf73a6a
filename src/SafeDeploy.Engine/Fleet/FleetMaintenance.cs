using System.Diagnostics;
using SafeDeploy.Engine.Deployment;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Manifest;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Fleet;

/// <summary>What Confirm-SafeDeploy or Undo-SafeDeploy does on each host of a fleet.</summary>
internal enum HostOperation { Confirm, Undo }

/// <summary>Where and how to confirm or undo a deployment across hosts.</summary>
internal sealed record FleetOperationOptions
{
    /// <summary>The deployment's name (the manifest's `name`).</summary>
    public required string Name { get; init; }
    public required IReadOnlyList<FleetHost> Hosts { get; init; }
    /// <summary>Hosts worked on at once.</summary>
    public int ThrottleLimit { get; init; } = 5;
    /// <summary>The runtime staged to the hosts, and how they are reached (as by a rollout).</summary>
    public required FleetRuntime Runtime { get; init; }
    public IOperationReporter Reporter { get; init; } = NullReporter.Instance;
}

/// <summary>
/// Confirms (try mode) or undoes a deployment on every selected host, through the same transport as a rollout: the runtime
/// staged by hash, then the host's own Confirm-SafeDeploy or Undo-SafeDeploy. Hosts are independent: one host's failure
/// does not stop the others. Each host's outcome goes to <c>emit</c> as it comes.
/// </summary>
internal static class FleetMaintenance
{
    public static IReadOnlyList<HostDeployResult> Run(FleetOperationOptions o, HostOperation op, Action<HostDeployResult> emit, CancellationToken token)
    {
        using var connection = new FleetConnection(o.Runtime, ActionRegistry.CreateDefault(), o.Reporter, o.Hosts.Take(Math.Max(1, o.ThrottleLimit)));
        var (staging, runner) = (connection.Staging, connection.Runner);
        var results = new HostDeployResult?[o.Hosts.Count];
        using var gate = new SemaphoreSlim(Math.Max(1, o.ThrottleLimit));
        var tasks = o.Hosts.Select((h, i) => Task.Run(() =>
        {
            gate.Wait(token);
            try { emit(results[i] = One(o, op, h, staging, runner, token)); }
            finally { gate.Release(); }
        }, CancellationToken.None)).ToArray();
        Task.WhenAll(tasks).ContinueWith(_ => { }, TaskScheduler.Default).GetAwaiter().GetResult();
        token.ThrowIfCancellationRequested();
        foreach (var t in tasks) if (t.Exception is { } e) throw e.InnerException ?? e;
        return results.Select(r => r!).ToList();
    }

    static HostDeployResult One(FleetOperationOptions o, HostOperation op, FleetHost host, HostStaging staging, RemoteRunner runner, CancellationToken token)
    {
        var clock = Stopwatch.StartNew();
        var failed = op == HostOperation.Confirm ? HostStatus.Failed : HostStatus.RollbackFailed;
        HostDeployResult Result(HostStatus status, string? error, RemoteOutcome? r = null) => new()
        {
            HostName = host.Name, Status = status, Generation = r?.Generation ?? 0, Id = r?.Id, Error = error, Duration = clock.Elapsed,
            Name = o.Name, Rollout = "", RollbackAt = r?.RollbackAt,
        };
        HostStage stage;
        try { stage = staging.StageRuntime(host, token); }
        catch (SafeDeployException e) when (!token.IsCancellationRequested)
        {
            o.Reporter.Warning($"Host '{host.Name}' is unreachable and was not changed: {e.Message}");
            return Result(HostStatus.Unreachable, e.Message);
        }
        var script = op == HostOperation.Confirm ? RemoteScripts.Confirm(host, o.Name) : RemoteScripts.Undo(host, o.Name);
        var outcome = runner.Run(host, stage, null, script, token, out var failure);
        if (outcome is null) return Result(failed, failure);
        o.Reporter.Verbose($"Host '{host.Name}': {op} gave {outcome.Status}, generation {outcome.Generation} (run {outcome.Id}) in {clock.ElapsedMilliseconds} ms " +
            $"({outcome.Channel}).");
        // A host with no run of it to confirm or undo is left as it was: nothing was started there.
        if (outcome.Status == RemoteStatus.Error && outcome.Error?.StartsWith(NothingTo(op), StringComparison.Ordinal) == true) return Result(HostStatus.NotStarted, outcome.Error, outcome);
        bool ok = op == HostOperation.Confirm ? outcome.Status == RemoteStatus.Succeeded : outcome.Status == RemoteStatus.Undone;
        return Result(ok ? (op == HostOperation.Confirm ? HostStatus.Succeeded : HostStatus.RolledBack) : failed, ok ? null : outcome.Error ?? StatusName.Of(outcome.Status), outcome);
    }

    static string NothingTo(HostOperation op) => op == HostOperation.Confirm ? "NothingToConfirm" : "NothingToUndo";

    /// <summary>
    /// The error for hosts that were not confirmed or undone (null when every host was, or had nothing to do while another
    /// did); NothingToUndo or NothingToConfirm when no host had anything.
    /// </summary>
    public static SafeDeployException? Failure(HostOperation op, string name, IReadOnlyList<HostDeployResult> results)
    {
        var bad = results.Where(r => r.Status is not (HostStatus.Succeeded or HostStatus.RolledBack or HostStatus.NotStarted)).ToList();
        if (bad.Count == 0 && results.Count > 0 && results.All(r => r.Status == HostStatus.NotStarted))
            return new SafeDeployException(NothingTo(op), ErrorKind.ObjectNotFound, name,
                $"None of the {results.Count} host(s) has a run of '{name}' to {(op == HostOperation.Confirm ? "confirm" : "undo")}: " +
                string.Join(", ", results.Select(r => r.HostName)) + ".",
                "Get-SafeDeployHistory on a host shows its runs; check the deployment name and the hosts selected.");
        if (bad.Count == 0) return null;
        var id = op == HostOperation.Confirm ? "FleetConfirmFailed" : "FleetUndoFailed";
        return new SafeDeployException(id, ErrorKind.InvalidOperation, name,
            $"{op} of '{name}' did not finish on {bad.Count} of {results.Count} host(s): " +
            string.Join(", ", bad.GroupBy(r => r.Status).Select(g => $"{g.Count()} {g.Key} ({string.Join(", ", g.Select(r => r.HostName))})")) +
            (bad.FirstOrDefault(r => r.Error is not null) is { } first ? $". First error, on {first.HostName}: {first.Error}" : "."),
            op == HostOperation.Confirm
                ? "Look at each host's Error (Format-List *); a host whose try-mode run expired rolled back on its own: deploy it again."
                : "Look at each host's Error (Format-List *), fix the cause, and run the same command again for those hosts (-HostName).");
    }
}
