using System.Diagnostics;
using System.Text.Json.Nodes;
using SafeDeploy.Engine.Actions;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Locking;
using SafeDeploy.Engine.Manifest;
using SafeDeploy.Engine.Platform;
using SafeDeploy.Engine.StateDirectories;

namespace SafeDeploy.Engine.Deployment;

/// <summary>
/// Runs manifests: <see cref="Plan"/> reads the manifest once into a <see cref="DeploymentPlan"/>; <see cref="Invoke(DeploymentPlan, IOperationReporter, ScriptInvoker?, CancellationToken)"/>
/// holds the deployment lock, rolls back runs whose process died (<see cref="Recovery"/>), schedules the phases
/// (<see cref="PhaseScheduler"/>), journals every step and on failure undoes every phase that ran, newest first.
/// </summary>
internal sealed class DeploymentEngine
{
    public DeploymentEngine(StateDirectory state, ActionRegistry? registry = null)
    {
        Store = new DeploymentStore(state);
        Registry = registry ?? ActionRegistry.CreateDefault();
    }

    public DeploymentStore Store { get; }
    public ActionRegistry Registry { get; }

    /// <summary>Reads and checks the manifest once: what will run, where, and what it changes. Nothing is touched.</summary>
    public DeploymentPlan Plan(DeployOptions options)
    {
        var root = DeploymentRoot.From(options.Root);
        root.Verify(create: false);
        var manifest = new ManifestParser(Registry).ParseFile(options.ManifestPath, options.Variables, root).GetOrThrow(options.ManifestPath);
        var selected = SelectPhases(manifest, options.Phases);
        if (options.TrySeconds is not null && options.Watchdog is null)
            throw new SafeDeployException("TryModeUnavailable", ErrorKind.InvalidArgument, manifest.Name,
                "Try mode needs a watchdog host, and none was given.", "Locate one with WatchdogHost.Locate.");
        return new DeploymentPlan
        {
            Manifest = manifest, Root = root, Phases = selected, ThrottleLimit = Math.Max(1, options.ThrottleLimit), LockTimeout = options.LockTimeout,
            TrySeconds = options.TrySeconds, Watchdog = options.Watchdog,
            Writes = selected.ToDictionary(p => p.Name, p => (IReadOnlyList<string>)p.Writes.Select(root.Show).ToList()),
        };
    }

    /// <summary>Plans and runs a deployment (for callers that show no plan).</summary>
    public DeployResult Invoke(DeployOptions options, IOperationReporter? reporter = null, ScriptInvoker? scriptInvoker = null, CancellationToken cancellationToken = default) =>
        Invoke(Plan(options), reporter ?? NullReporter.Instance, scriptInvoker, cancellationToken);

    /// <summary>Runs a plan to the end: Succeeded (every phase did), or rolled back.</summary>
    public DeployResult Invoke(DeploymentPlan plan, IOperationReporter reporter, ScriptInvoker? scriptInvoker, CancellationToken cancellationToken = default)
    {
        var manifest = plan.Manifest;
        foreach (var w in manifest.Warnings) reporter.Warning(w.ToString());
        plan.Root.Verify(create: true);
        using var held = AcquireDeploymentLock(manifest.Name, manifest.Lock, plan.LockTimeout, reporter, cancellationToken);
        var recovery = new Recovery(Store, Registry, reporter, scriptInvoker);
        var recovered = recovery.RecoverIncomplete(manifest.Name);
        foreach (var r in recovered) reporter.Warning($"Rolled back run '{r}' of '{manifest.Name}', whose process had died, before deploying.");
        var history = Store.History(manifest.Name, plan.Root);
        TryMode.RefuseIfOpen(Store, manifest.Name, plan.Root.Path);

        int previousGeneration = CurrentGeneration(history);
        int generation = NextGeneration(history);
        var runId = DeploymentStore.NewRunId();
        using var journal = Journal.Create(Store.JournalPath(manifest.Name, runId));
        var clock = Stopwatch.StartNew();
        var started = DateTimeOffset.UtcNow;
        journal.Write(JournalRecord.Start, new JsonObject
        {
            ["id"] = runId, ["name"] = manifest.Name, ["lock"] = manifest.Lock, ["generation"] = generation,
            ["previousGeneration"] = previousGeneration, ["pid"] = Environment.ProcessId, ["host"] = ProcessInfo.HostName,
            ["bootId"] = ProcessInfo.BootId, ["manifestFile"] = manifest.File, ["manifestText"] = manifest.Text,
            ["root"] = plan.Root.Path,
            ["variables"] = new JsonObject(manifest.Variables.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)JsonValue.Create(kv.Value)))),
            ["phases"] = new JsonArray(plan.Phases.Select(p => (JsonNode)JsonValue.Create(p.Name)!).ToArray()),
        });

        var run = new RunState(manifest, runId, Store.RunDirectory(manifest.Name, runId), journal, plan.Root, reporter, scriptInvoker);
        var outcome = new PhaseScheduler(Store.State, run).Run(plan.Phases, plan.ThrottleLimit, cancellationToken);
        bool cancelled = cancellationToken.IsCancellationRequested;
        string? error = outcome.Error ?? (cancelled ? "The deployment was interrupted (Ctrl+C)." : null);
        var phaseResults = outcome.Results;
        DeployStatus status;
        int resultGeneration;
        if (error is null)
        {
            status = DeployStatus.Succeeded;
            resultGeneration = generation;
        }
        else
        {
            reporter.Warning($"Deployment '{manifest.Name}' failed ({error}); rolling back every phase that ran, newest first.");
            journal.Write(JournalRecord.RollbackStart, new JsonObject { ["reason"] = error });
            var rollback = recovery.RollBack(run, JournalView.Load(journal.Path), CancellationToken.None);
            status = rollback.Failed ? DeployStatus.RollbackFailed : rollback.UndidAnything ? DeployStatus.RolledBack : DeployStatus.Failed;
            phaseResults = phaseResults.Select(r => rollback.Phases.TryGetValue(r.Name, out var u) ? Recovery.Merge(r, u) : r).ToList();
            resultGeneration = previousGeneration;
            if (rollback.Failed) error += " Rollback failed: " + rollback.Errors;
        }
        journal.Write(JournalRecord.End, new JsonObject { ["status"] = StatusName.Of(status), ["generation"] = resultGeneration, ["error"] = error });
        foreach (var id in Store.Prune(manifest.Name)) reporter.Verbose($"Removed the backups of run '{id}' (retention: the newest {DeploymentStore.DefaultKeepGenerations} standing generations keep theirs).");
        var result = new DeployResult
        {
            Name = manifest.Name, Id = runId, Status = status, Phases = phaseResults, Duration = clock.Elapsed, Generation = resultGeneration,
            Started = started, Error = error, RecoveredRuns = recovered, JournalPath = journal.Path, LogDirectory = Path.Combine(run.Directory, "logs"),
        };
        if (result.Succeeded && plan.TrySeconds is { } seconds)
        {
            result = result with { RollbackAt = TryMode.Arm(Store, result, seconds, plan.Watchdog!) };
            reporter.Warning($"Try mode: '{result.Name}' is rolled back at {result.RollbackAt:u} unless you run Confirm-SafeDeploy -Name {result.Name} before.");
        }
        return result;
    }

    /// <summary>
    /// Rolls the latest run still standing of <paramref name="name"/> back (under <paramref name="root"/> when given; run
    /// <paramref name="id"/>, when given, must be that run). A run whose undo or rollback failed part-way stands in part:
    /// it is the one undone next, and the undo goes on from where it stopped (phases already undone are not run again).
    /// </summary>
    public DeployResult Undo(string name, string? id, IOperationReporter reporter, ScriptInvoker? scriptInvoker, TimeSpan? lockTimeout = null,
        CancellationToken cancellationToken = default, bool unlessConfirmed = false, DeploymentRoot? root = null)
    {
        var history = Store.History(name);
        if (history.Count == 0) throw ErrorCatalog.DeploymentNotFound(name, Store.State.StateDir);
        using var held = AcquireDeploymentLock(name, JournalView.Load(history[^1].JournalPath).LockName, lockTimeout, reporter, cancellationToken);
        var recovery = new Recovery(Store, Registry, reporter, scriptInvoker);
        var recovered = recovery.RecoverIncomplete(name);
        history = Store.History(name);
        // An undo whose process died part-way (or whose journal write failed) was just finished by the recovery: that was this undo.
        if (history.LastOrDefault(h => recovered.Contains(h.Id) && h.Status == DeployStatus.Undone && (id is null || h.Id == id)
                                       && (root is null || h.Root == root.Path)) is { } finished)
        {
            reporter.Warning($"Run '{finished.Id}' of '{name}' was being undone when that undo stopped; its undo is now finished.");
            return new DeployResult
            {
                Name = name, Id = finished.Id, Status = DeployStatus.Undone, Generation = CurrentGeneration(history.Where(h => h.Root == finished.Root).ToList()),
                Started = finished.Started, RecoveredRuns = recovered, JournalPath = finished.JournalPath,
                LogDirectory = Path.Combine(Store.RunDirectory(name, finished.Id), "logs"),
            };
        }
        var rootPath = id is not null && history.FirstOrDefault(h => h.Id == id) is { } chosen ? chosen.Root : root?.Path;
        var latest = history.LastOrDefault(h => Standing(h) && (rootPath is null && root is null && id is null || h.Root == rootPath));
        if (latest is null && id is null)
            throw new SafeDeployException("NothingToUndo", ErrorKind.ObjectNotFound, name,
                $"Deployment '{name}' has no successful run left to undo{(root is null ? "" : $" under {root.Path ?? "/"}")}.", "See Get-SafeDeployHistory -Name " + name + ".");
        if (id is not null && latest?.Id != id)
        {
            var target = history.FirstOrDefault(h => h.Id == id);
            throw new SafeDeployException(target is null ? "RunNotFound" : "NotLatestGeneration", target is null ? ErrorKind.ObjectNotFound : ErrorKind.InvalidOperation, id,
                target is null ? $"Deployment '{name}' has no run '{id}'." :
                    $"Run '{id}' of '{name}' is {target.Status}, not the latest successful run ({(latest is null ? "none" : $"'{latest.Id}'")}); only the newest generation can be undone.",
                "Undo the newer runs first (Undo-SafeDeploy -Name " + name + "), or pick the Id from Get-SafeDeployHistory.");
        }
        var clock = Stopwatch.StartNew();
        if (unlessConfirmed && (latest!.Confirmed || File.Exists(Store.ConfirmMarker(name, latest.Id))))
        {
            reporter.Verbose($"Run '{latest.Id}' of '{name}' was confirmed; nothing undone.");
            return new DeployResult
            {
                Name = name, Id = latest.Id, Status = DeployStatus.Succeeded, Generation = latest.Generation, Started = latest.Started, JournalPath = latest.JournalPath,
                RecoveredRuns = recovered,
            };
        }
        var view = JournalView.Load(latest!.JournalPath);
        using var journal = Journal.Append(latest.JournalPath);
        var run = recovery.Rebuild(view, journal);
        journal.Write(JournalRecord.UndoStart, new JsonObject { ["pid"] = Environment.ProcessId });
        var rollback = recovery.RollBack(run, JournalView.Load(latest.JournalPath), cancellationToken);
        var previous = history.LastOrDefault(h => h.Status == DeployStatus.Succeeded && h.Id != latest.Id && h.Root == latest.Root)?.Generation ?? 0;
        if (latest.Status == DeployStatus.RollbackFailed) reporter.Warning($"Run '{latest.Id}' of '{name}' was rolled back only in part; finishing its rollback.");
        var status = rollback.Failed ? DeployStatus.RollbackFailed : DeployStatus.Undone;
        var error = rollback.Failed ? rollback.Errors : null;
        journal.Write(JournalRecord.End, new JsonObject { ["status"] = StatusName.Of(status), ["generation"] = previous, ["error"] = error });
        return new DeployResult
        {
            Name = name, Id = latest.Id, Status = status, Generation = previous, Duration = clock.Elapsed, Started = DateTimeOffset.UtcNow - clock.Elapsed,
            Phases = rollback.Phases.Values.Select(u => new PhaseResult { Name = u.Phase, Status = u.Error is null ? PhaseStatus.RolledBack : PhaseStatus.RollbackFailed, Error = u.Error, Output = u.Output, Duration = u.Duration }).ToList(),
            Error = error, RecoveredRuns = recovered, JournalPath = latest.JournalPath, LogDirectory = Path.Combine(run.Directory, "logs"),
        };
    }

    /// <summary>A run whose changes stand, in whole (Succeeded) or in part (its rollback or undo failed part-way).</summary>
    static bool Standing(DeployHistoryEntry h) => h.Status is DeployStatus.Succeeded or DeployStatus.RollbackFailed;

    /// <summary>The generation a deployment is at: that of its latest run still standing (Succeeded), or 0.</summary>
    public static int CurrentGeneration(IReadOnlyList<DeployHistoryEntry> history) =>
        history.LastOrDefault(h => h.Status == DeployStatus.Succeeded)?.Generation ?? 0;

    /// <summary>The number a new run gets: one more than any run that ever stood (runs rolled back have none of their own).</summary>
    static int NextGeneration(IReadOnlyList<DeployHistoryEntry> history) =>
        history.Select(h => h.Generation).DefaultIfEmpty(0).Max() + 1;

    FileLock AcquireDeploymentLock(string name, string lockName, TimeSpan? timeout, IOperationReporter reporter, CancellationToken token)
    {
        SecureDirectory.Ensure(Store.State.LockDir, 0x1C0);
        SecureDirectory.Ensure(Store.State.StateDir, 0x1C0);
        var path = Store.State.LockPath(lockName);
        var options = new LockOptions { Purpose = $"deployment {name}", Reporter = reporter, Timeout = timeout };
        var held = FileLock.TryAcquire(path, options);
        if (held is not null) return held;
        var holder = LockInspector.Inspect(path);
        reporter.Warning($"Deployment '{name}' is being run by {holder.Describe()}; waiting for it to finish (lock '{path}').");
        return FileLock.Acquire(path, options, token);
    }

    static List<PhaseDefinition> SelectPhases(DeploymentManifest manifest, IReadOnlyList<string>? names)
    {
        if (names is null || names.Count == 0) return manifest.Phases.ToList();
        var unknown = names.Where(n => manifest.Phases.All(p => p.Name != n)).ToList();
        if (unknown.Count > 0)
            throw new SafeDeployException("PhaseNotFound", ErrorKind.ObjectNotFound, unknown[0],
                $"The manifest has no phase named {string.Join(", ", unknown.Select(u => $"'{u}'"))}. Phases: {string.Join(", ", manifest.Phases.Select(p => p.Name))}.",
                "Give -Phase names from the manifest.");
        return manifest.Phases.Where(p => names.Contains(p.Name)).ToList();
    }
}

/// <summary>One run in progress (or being rolled back): what the scheduler, the phases and the rollback share.</summary>
sealed record RunState(DeploymentManifest Manifest, string Id, string Directory, Journal Journal, DeploymentRoot Root,
    IOperationReporter Reporter, ScriptInvoker? ScriptInvoker)
{
    public ActionContext Context(PhaseDefinition phase, TextWriter log, CancellationToken token) => new()
    {
        DeploymentName = Manifest.Name,
        PhaseName = phase.Name,
        Root = Root,
        ManifestDirectory = System.IO.Path.GetDirectoryName(Manifest.File)!,
        BackupDirectory = System.IO.Path.Combine(Directory, "backups", phase.Name),
        Variables = Manifest.Variables,
        Reporter = Reporter,
        Log = log,
        Cancellation = token,
        Journal = u => Journal.WriteUndo(phase.Name, u),
        Temporary = p => Journal.WriteTemporary(phase.Name, p),
        ProcessGroup = g => Journal.WriteProcessGroup(phase.Name, g),
        DeploymentEnvironment = Manifest.Environment,
        ScriptInvoker = ScriptInvoker,
    };

    public string LogPath(string phase, bool undo = false) => System.IO.Path.Combine(Directory, "logs", phase + (undo ? ".undo.log" : ".log"));
}
