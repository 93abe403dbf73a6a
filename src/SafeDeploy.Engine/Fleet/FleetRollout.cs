using SafeDeploy.Engine.Actions;
using SafeDeploy.Engine.Manifest;
using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using SafeDeploy.Engine.Deployment;
using SafeDeploy.Engine.Platform;
using SafeDeploy.Engine.StateDirectories;

namespace SafeDeploy.Engine.Fleet;

/// <summary>How to roll a manifest out across hosts.</summary>
internal sealed record RolloutOptions
{
    public required string ManifestPath { get; init; }
    /// <summary>The inventory file (null with -HostName alone).</summary>
    public string? InventoryPath { get; init; }
    public required IReadOnlyList<FleetHost> Hosts { get; init; }
    /// <summary>-Variables: for every host, below each host's own variables.</summary>
    public IReadOnlyDictionary<string, string>? Variables { get; init; }
    public IReadOnlyList<string>? BatchSize { get; init; }
    public string? MaxFailed { get; init; }
    public FailureAction OnFailure { get; init; } = FailureAction.RollBack;
    /// <summary>Hosts deployed at once within a wave.</summary>
    public int ThrottleLimit { get; init; } = 5;
    public int? TrySeconds { get; init; }
    /// <summary>The runtime staged to the hosts, and how they are reached.</summary>
    public required FleetRuntime Runtime { get; init; }
    public IOperationReporter Reporter { get; init; } = NullReporter.Instance;
}

/// <summary>
/// A deployment of deployments: waves in order, each host staged by hash and then deployed by its own engine (with its own
/// journal), a failure budget over the whole rollout, and on a spent budget every host this rollout deployed undone,
/// newest first. The controller journals each step, so the same command resumes a rollout whose controller died.
/// </summary>
internal sealed class FleetRollout(StateDirectory state)
{
    const int activity = 8600;

    /// <summary>The -WhatIf text: the waves and each host's plan.</summary>
    public string Plan(RolloutOptions o)
    {
        var engine = new DeploymentEngine(state);
        var waves = WavePlan.Split(o.Hosts, o.BatchSize);
        var budget = FailureBudget.Parse(o.MaxFailed, o.Hosts.Count);
        var sb = new StringBuilder($"Roll '{Path.GetFileName(o.ManifestPath)}' out to {o.Hosts.Count} host(s) in {waves.Count} wave(s); " +
            $"stop after more than {budget.Allowed} failed host(s), then {o.OnFailure}.");
        for (int w = 0; w < waves.Count; w++)
        {
            sb.Append($"\n  wave {w + 1}{(w == 0 ? " (canary)" : "")}:");
            foreach (var h in waves[w])
            {
                var m = new ManifestParser(engine.Registry).ParseFile(o.ManifestPath, VariablesFor(o, h), DeploymentRoot.From(h.Root)).GetOrThrow(o.ManifestPath);
                sb.Append($"\n    {h.Name} ({h.Address}{(h.Root is null ? "" : ", root " + h.Root)}): {string.Join(" -> ", m.Phases.Select(p => p.Name))}");
            }
        }
        return sb.ToString();
    }

    /// <summary>Runs (or resumes) the rollout; every host's results go to <paramref name="emit"/> as they happen; returns the final ones.</summary>
    public IReadOnlyList<HostDeployResult> Run(RolloutOptions o, Action<HostDeployResult> emit, CancellationToken token)
    {
        var engine = new DeploymentEngine(state);
        var manifestPath = Path.GetFullPath(o.ManifestPath);
        var manifest = new ManifestParser(engine.Registry).ParseFile(manifestPath, o.Variables).GetOrThrow(manifestPath);
        var name = manifest.Name;
        // Phases that run PowerShell need a runspace on the host; the others run in the host's engine alone (HostStep).
        bool engineStep = !manifest.Phases.Any(p => p.Action is ScriptAction);
        var waves = WavePlan.Split(o.Hosts, o.BatchSize);
        var budget = FailureBudget.Parse(o.MaxFailed, o.Hosts.Count);
        // The canary's ssh connection opens now, while the journal is written and the bundles are hashed.
        using var connection = new FleetConnection(o.Runtime, engine.Registry, o.Reporter, waves.Count > 0 ? waves[0] : []);
        var key = RolloutJournal.Key(manifestPath, o.InventoryPath is null ? null : Path.GetFullPath(o.InventoryPath), o.Hosts.Select(h => h.Name));
        using var journal = RolloutJournal.OpenOrCreate(state, key, id => new JsonObject
        {
            ["name"] = name, ["manifest"] = manifestPath, ["inventory"] = o.InventoryPath is null ? null : Path.GetFullPath(o.InventoryPath),
            ["hosts"] = new JsonArray(o.Hosts.Select(h => (JsonNode)h.Name).ToArray()),
            ["waves"] = new JsonArray(waves.Select(w => (JsonNode)new JsonArray(w.Select(h => (JsonNode)h.Name).ToArray())).ToArray()),
            ["onFailure"] = o.OnFailure.ToString(), ["budget"] = budget.Allowed, ["pid"] = Environment.ProcessId,
        });
        var run = new RunState(o, journal, name, budget, emit);
        if (journal.Resumed)
        {
            o.Reporter.Warning($"Resuming rollout {journal.Id} of '{name}', whose controller stopped before it finished ({journal.Path}).");
            run.Replay(waves);
        }
        try
        {
            var deployer = new HostDeployer(connection.Runner, connection.Staging, journal.Id, o, name, engineStep);
            for (int w = 0; w < waves.Count && !run.Halted && !token.IsCancellationRequested; w++)
            {
                o.Reporter.Progress(new ProgressUpdate(activity, $"Rollout of '{name}'", $"wave {w + 1} of {waves.Count}{(w == 0 ? " (canary)" : "")}", w * 100 / waves.Count));
                var todo = waves[w].Where(h => !run.Finished.ContainsKey(h.Name)).ToList();
                if (w + 1 < waves.Count) connection.Ssh.Warm(waves[w + 1].Where(h => !run.Finished.ContainsKey(h.Name)));
                using var gate = new SemaphoreSlim(Math.Max(1, o.ThrottleLimit));
                var tasks = todo.Select(h => Task.Run(() =>
                {
                    gate.Wait(token);
                    try
                    {
                        if (run.Halted) return;
                        o.Reporter.Progress(new ProgressUpdate(activity + 1 + Array.IndexOf(o.Hosts.ToArray(), h), h.Name, "staging and deploying", -1, activity));
                        run.Record(deployer.Deploy(h, w + 1, journal, token));
                    }
                    finally
                    {
                        gate.Release();
                        o.Reporter.Progress(new ProgressUpdate(activity + 1 + Array.IndexOf(o.Hosts.ToArray(), h), h.Name, "done", 100, activity, Completed: true));
                    }
                }, CancellationToken.None)).ToArray();
                Task.WhenAll(tasks).ContinueWith(_ => { }, TaskScheduler.Default).GetAwaiter().GetResult();
                foreach (var t in tasks) if (t.Exception is { } e && !token.IsCancellationRequested) throw e.InnerException ?? e;
            }
            if (run.BudgetSpent && o.OnFailure == FailureAction.RollBack)
            {
                o.Reporter.Warning($"Rollout of '{name}': {run.FailedCount} host(s) failed (budget {budget.Allowed}); rolling back every host it deployed, newest first.");
                journal.Write("rollback-start", new JsonObject { ["failed"] = run.FailedCount });
                foreach (var h in run.ToRollBack(o.Hosts))
                    { if (deployer.RollBack(h, run.Finished[h.Name], journal, CancellationToken.None) is { } undone) run.Record(undone, "rollback"); }
            }
        }
        finally
        {
            o.Reporter.Progress(new ProgressUpdate(activity, $"Rollout of '{name}'", "done", 100, Completed: true));
        }
        token.ThrowIfCancellationRequested();
        foreach (var h in o.Hosts.Where(h => !run.Finished.ContainsKey(h.Name)))
            run.Record(new HostDeployResult { HostName = h.Name, Status = HostStatus.NotStarted, Batch = run.BatchOf(waves, h), Name = name, Rollout = journal.Id }, null);
        var status = !run.BudgetSpent ? (run.FailedCount == 0 ? RolloutStatus.Succeeded : RolloutStatus.Failed)
            : o.OnFailure switch { FailureAction.RollBack => RolloutStatus.RolledBack, FailureAction.Stop => RolloutStatus.Stopped, _ => RolloutStatus.Failed };
        journal.Write("end", new JsonObject { ["status"] = StatusName.Of(status) });
        return o.Hosts.Select(h => run.Finished[h.Name]).ToList();
    }

    /// <summary>The error a rollout that did not fully succeed reports (null when every host succeeded).</summary>
    public static Errors.SafeDeployException? Failure(IReadOnlyList<HostDeployResult> results)
    {
        var bad = results.Where(r => !r.Succeeded).ToList();
        if (bad.Count == 0) return null;
        var name = results[0].Name;
        bool rolledBack = results.Any(r => r.Status == HostStatus.RolledBack);
        var id = results.Any(r => r.Status == HostStatus.RollbackFailed) ? "RolloutRollbackFailed" : rolledBack ? "RolloutRolledBack" : "RolloutFailed";
        return new Errors.SafeDeployException(id, Errors.ErrorKind.InvalidOperation, name,
            $"Rollout {results[0].Rollout} of '{name}': " + string.Join(", ", bad.GroupBy(r => r.Status).Select(g => $"{g.Count()} {g.Key} ({string.Join(", ", g.Select(r => r.HostName))})")) +
            (bad.FirstOrDefault(r => r.Error is not null) is { } first ? $". First error, on {first.HostName}: {first.Error}" : "."),
            id == "RolloutRollbackFailed" ? "Repair the hosts whose rollback failed by hand (their journals: Get-SafeDeployHistory on the host), then run the rollout again."
                : "Look at each host's Error (Format-List *), fix the cause, and run the same command again.");
    }

    /// <summary>Variables for one host: -Variables, then the host's own (they win).</summary>
    internal static Dictionary<string, string> VariablesFor(RolloutOptions o, FleetHost h)
    {
        var v = new Dictionary<string, string>(o.Variables ?? new Dictionary<string, string>(), StringComparer.Ordinal);
        foreach (var (k, x) in h.Variables) v[k] = x;
        return v;
    }

    /// <summary>The rollout's progress: each host's latest result, the failure count, the deployed hosts in order.</summary>
    sealed class RunState(RolloutOptions o, RolloutJournal journal, string name, FailureBudget budget, Action<HostDeployResult> emit)
    {
        readonly object gate = new();
        readonly List<string> deployedInOrder = new();
        public Dictionary<string, HostDeployResult> Finished { get; } = new(StringComparer.Ordinal);
        public int FailedCount { get; private set; }
        public bool BudgetSpent => budget.IsSpent(FailedCount);
        public bool Halted => BudgetSpent && o.OnFailure != FailureAction.Continue;

        /// <summary>Reports again what the interrupted controller finished, so that the resumed rollout goes on from there.</summary>
        public void Replay(IReadOnlyList<IReadOnlyList<FleetHost>> waves)
        {
            foreach (var r in journal.Earlier.Where(r => (string?)r["type"] is "host" or "rollback"))
                Apply(RolloutJournal.ToResult(r, name, journal.Id), (string)r["type"]!);
            foreach (var r in Finished.Values.ToList()) emit(r);
        }

        public void Record(HostDeployResult r, string? type = "host")
        {
            if (type is not null) journal.HostResult(type, r);
            lock (gate) Apply(r, type ?? "host");
            emit(r);
        }

        void Apply(HostDeployResult r, string type)
        {
            Finished[r.HostName] = r;
            if (type == "host" && r.Status is not (HostStatus.Succeeded or HostStatus.NotStarted)) FailedCount++;
            if (type == "host" && r.Status != HostStatus.Unreachable) deployedInOrder.Add(r.HostName);
            if (type == "rollback") deployedInOrder.Remove(r.HostName);
        }

        /// <summary>Hosts to undo, newest first: every host this rollout ran on (a failed one may have half-finished when its connection dropped).</summary>
        public IEnumerable<FleetHost> ToRollBack(IReadOnlyList<FleetHost> hosts)
        {
            List<string> order;
            lock (gate) order = deployedInOrder.Where(n => Finished[n].Status is HostStatus.Succeeded || Finished[n].Id is null && Finished[n].Status == HostStatus.Failed).Reverse().ToList();
            return order.Select(n => hosts.First(h => h.Name == n)).ToList();
        }

        public int BatchOf(IReadOnlyList<IReadOnlyList<FleetHost>> waves, FleetHost h)
        {
            for (int w = 0; w < waves.Count; w++) if (waves[w].Any(x => x.Name == h.Name)) return w + 1;
            return 0;
        }
    }
}
