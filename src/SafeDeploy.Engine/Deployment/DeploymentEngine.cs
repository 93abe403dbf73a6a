using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json.Nodes;
using SafeDeploy.Engine.Actions;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Locking;
using SafeDeploy.Engine.Manifest;
using SafeDeploy.Engine.Platform;
using SafeDeploy.Engine.StateDirectories;

namespace SafeDeploy.Engine.Deployment;

/// <summary>How to run a deployment.</summary>
public sealed record DeployOptions
{
    public required string ManifestPath { get; init; }
    public IReadOnlyDictionary<string, string>? Variables { get; init; }
    /// <summary>Sandbox prefix for every absolute path the deployment writes.</summary>
    public string? Root { get; init; }
    /// <summary>Run only these phases (their dependencies outside the selection count as done).</summary>
    public IReadOnlyList<string>? Phases { get; init; }
    public int ThrottleLimit { get; init; } = 5;
    /// <summary>Give up waiting for the deployment lock after this long (null: wait).</summary>
    public TimeSpan? LockTimeout { get; init; }
    public IOperationReporter Reporter { get; init; } = NullReporter.Instance;
    public ScriptInvoker? ScriptInvoker { get; init; }
}

/// <summary>
/// Runs manifests: holds the deployment lock, rolls back runs whose process died, schedules phases in parallel under
/// their resource locks, journals every step, and on failure undoes every phase that ran, newest first.
/// </summary>
public sealed class DeploymentEngine
{
    static int nextActivity = 8100;

    public DeploymentEngine(StateDirectory state, ActionRegistry? registry = null)
    {
        Store = new DeploymentStore(state);
        Registry = registry ?? ActionRegistry.CreateDefault();
    }

    public DeploymentStore Store { get; }
    public ActionRegistry Registry { get; }

    /// <summary>Parses a manifest with this engine's actions.</summary>
    public ManifestParseResult Parse(string path, IReadOnlyDictionary<string, string>? variables = null, string? root = null) =>
        new ManifestParser(Registry).ParseFile(path, variables, root);

    /// <summary>Runs a deployment to the end: Succeeded, or rolled back.</summary>
    public DeployResult Invoke(DeployOptions options, CancellationToken cancellationToken = default)
    {
        var manifest = Parse(options.ManifestPath, options.Variables, options.Root).GetOrThrow(options.ManifestPath);
        foreach (var w in manifest.Warnings) options.Reporter.Warning(w.ToString());
        var selected = SelectPhases(manifest, options.Phases);
        var reporter = options.Reporter;

        using var held = AcquireDeploymentLock(manifest.Name, manifest.Lock, options.LockTimeout, reporter, cancellationToken);
        var recovered = RecoverIncomplete(manifest.Name, reporter, options.ScriptInvoker);

        var history = Store.History(manifest.Name);
        int previousGeneration = CurrentGeneration(history);
        int generation = history.Count == 0 ? 1 : history.Max(h => h.Generation) + 1;
        var runId = DeploymentStore.NewRunId();
        var runDir = Store.RunDirectory(manifest.Name, runId);
        using var journal = Journal.Create(Store.JournalPath(manifest.Name, runId));
        var clock = Stopwatch.StartNew();
        var started = DateTimeOffset.UtcNow;
        journal.Write("start", new JsonObject
        {
            ["id"] = runId, ["name"] = manifest.Name, ["lock"] = manifest.Lock, ["generation"] = generation,
            ["previousGeneration"] = previousGeneration, ["pid"] = Environment.ProcessId, ["host"] = ProcessInfo.HostName,
            ["bootId"] = ProcessInfo.BootId, ["manifestFile"] = manifest.File, ["manifestText"] = manifest.Text,
            ["root"] = options.Root is null ? null : Path.GetFullPath(options.Root),
            ["variables"] = new JsonObject(manifest.Variables.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)JsonValue.Create(kv.Value)))),
            ["phases"] = new JsonArray(selected.Select(p => (JsonNode)JsonValue.Create(p.Name)!).ToArray()),
        });

        var run = new RunState(manifest, runId, runDir, journal, options.Root is null ? null : Path.GetFullPath(options.Root), reporter, options.ScriptInvoker);
        var outcomes = Schedule(run, selected, Math.Max(1, options.ThrottleLimit), cancellationToken);
        var failure = outcomes.Values.Where(o => o.Failed && !o.Phase.ContinueOnError).OrderBy(o => o.Ended).FirstOrDefault();
        bool cancelled = cancellationToken.IsCancellationRequested;

        string status;
        string? error = failure?.Error ?? (cancelled ? "The deployment was interrupted (Ctrl+C)." : null);
        var phaseResults = selected.Select(p => outcomes.TryGetValue(p.Name, out var o) ? o.ToResult() : Skipped(p)).ToList();
        int resultGeneration;
        if (failure is null && !cancelled)
        {
            status = "Succeeded";
            resultGeneration = generation;
        }
        else
        {
            reporter.Warning($"Deployment '{manifest.Name}' failed ({error}); rolling back every phase that ran, newest first.");
            journal.Write("rollback-start", new JsonObject { ["reason"] = error });
            var rollback = RollBack(run, Journal.Read(journal.Path), CancellationToken.None);
            status = rollback.Failed ? "RollbackFailed" : rollback.UndidAnything ? "RolledBack" : "Failed";
            phaseResults = phaseResults.Select(r => rollback.Phases.TryGetValue(r.Name, out var u) ? Merge(r, u) : r).ToList();
            resultGeneration = previousGeneration;
            if (rollback.Failed) error += " Rollback failed: " + string.Join("; ", rollback.Phases.Values.Where(u => u.Error is not null).Select(u => u.Error));
        }
        journal.Write("end", new JsonObject { ["status"] = status, ["generation"] = resultGeneration, ["error"] = error });
        return new DeployResult
        {
            Name = manifest.Name, Id = runId, Status = status, Phases = phaseResults, Duration = clock.Elapsed, Generation = resultGeneration,
            Started = started, Error = error, RecoveredRuns = recovered, JournalPath = journal.Path,
        };
    }

    /// <summary>Rolls the latest successful run of <paramref name="name"/> (or run <paramref name="id"/>, which must be the latest) back.</summary>
    public DeployResult Undo(string name, string? id, IOperationReporter reporter, ScriptInvoker? scriptInvoker, TimeSpan? lockTimeout = null,
        CancellationToken cancellationToken = default, bool unlessConfirmed = false)
    {
        var history = Store.History(name);
        if (history.Count == 0)
            throw new SafeDeployException("DeploymentNotFound", ErrorKind.ObjectNotFound, name,
                $"No deployment named '{name}' has a journal in '{Store.State.StateDir}'.", "Check the name with Get-SafeDeployHistory (and -StateDirectory).");
        var lockName = (string?)Journal.Read(history[^1].JournalPath).FirstOrDefault()?["lock"] ?? name;
        using var held = AcquireDeploymentLock(name, lockName, lockTimeout, reporter, cancellationToken);
        var recovered = RecoverIncomplete(name, reporter, scriptInvoker);
        history = Store.History(name);
        var latest = history.LastOrDefault(h => h.Status == "Succeeded");
        if (latest is null)
            throw new SafeDeployException("NothingToUndo", ErrorKind.ObjectNotFound, name,
                $"Deployment '{name}' has no successful run left to undo.", "See Get-SafeDeployHistory -Name " + name + ".");
        if (id is not null && latest.Id != id)
        {
            var target = history.FirstOrDefault(h => h.Id == id);
            throw new SafeDeployException(target is null ? "RunNotFound" : "NotLatestGeneration", target is null ? ErrorKind.ObjectNotFound : ErrorKind.InvalidOperation, id,
                target is null ? $"Deployment '{name}' has no run '{id}'." :
                    $"Run '{id}' of '{name}' is {target.Status}, not the latest successful run ('{latest.Id}'); only the newest generation can be undone.",
                "Undo the newer runs first (Undo-SafeDeploy -Name " + name + "), or pick the Id from Get-SafeDeployHistory.");
        }
        var clock = Stopwatch.StartNew();
        var records = Journal.Read(latest.JournalPath);
        if (unlessConfirmed && (latest.Confirmed || File.Exists(Store.ConfirmMarker(name, latest.Id))))
        {
            reporter.Verbose($"Run '{latest.Id}' of '{name}' was confirmed; nothing undone.");
            return new DeployResult
            {
                Name = name, Id = latest.Id, Status = "Succeeded", Generation = latest.Generation, Started = latest.Started, JournalPath = latest.JournalPath,
                RecoveredRuns = recovered,
            };
        }
        using var journal = Journal.Append(latest.JournalPath);
        var run = Rebuild(records, journal, reporter, scriptInvoker);
        journal.Write("undo-start", new JsonObject { ["pid"] = Environment.ProcessId });
        var rollback = RollBack(run, Journal.Read(latest.JournalPath), cancellationToken);
        var previous = history.LastOrDefault(h => h.Status == "Succeeded" && h.Id != latest.Id)?.Generation ?? 0;
        var status = rollback.Failed ? "RollbackFailed" : "Undone";
        var error = rollback.Failed ? string.Join("; ", rollback.Phases.Values.Where(u => u.Error is not null).Select(u => u.Error)) : null;
        journal.Write("end", new JsonObject { ["status"] = status, ["generation"] = previous, ["error"] = error });
        return new DeployResult
        {
            Name = name, Id = latest.Id, Status = status, Generation = previous, Duration = clock.Elapsed, Started = DateTimeOffset.UtcNow - clock.Elapsed,
            Phases = rollback.Phases.Values.Select(u => new PhaseResult { Name = u.Phase, Status = u.Error is null ? "RolledBack" : "RollbackFailed", Error = u.Error, Output = u.Output, Duration = u.Duration }).ToList(),
            Error = error, RecoveredRuns = recovered, JournalPath = latest.JournalPath,
        };
    }

    /// <summary>The generation a deployment is at: that of its latest run still standing (Succeeded), or 0.</summary>
    public static int CurrentGeneration(IReadOnlyList<DeployHistoryEntry> history) =>
        history.LastOrDefault(h => h.Status == "Succeeded")?.Generation ?? 0;

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

    /// <summary>Rolls back every run of <paramref name="name"/> whose journal has no end (its process died). Call under the deployment lock.</summary>
    public IReadOnlyList<string> RecoverIncomplete(string name, IOperationReporter reporter, ScriptInvoker? scriptInvoker)
    {
        var done = new List<string>();
        foreach (var path in Store.Journals(name))
        {
            var records = Journal.Read(path);
            if (!DeploymentStore.IsIncomplete(records)) continue;
            var id = (string?)records[0]["id"] ?? Path.GetFileNameWithoutExtension(path);
            bool wasUndo = records.Any(r => (string?)r["type"] == "undo-start");
            reporter.Warning($"Run '{id}' of deployment '{name}' did not finish (its process, pid {(int?)records[0]["pid"]}, died); rolling it back first.");
            using var journal = Journal.Append(path);
            var run = Rebuild(records, journal, reporter, scriptInvoker);
            journal.Write("rollback-start", new JsonObject { ["reason"] = "recovery: the deploying process died", ["pid"] = Environment.ProcessId });
            var rollback = RollBack(run, Journal.Read(path), CancellationToken.None);
            var status = rollback.Failed ? "RollbackFailed" : wasUndo ? "Undone" : "RolledBack";
            journal.Write("end", new JsonObject
            {
                ["status"] = status, ["generation"] = (int?)records[0]["previousGeneration"] ?? 0, ["recovered"] = true,
                ["error"] = rollback.Failed ? "recovery rollback failed" : "the deploying process died; rolled back by the next run",
            });
            if (rollback.Failed)
                throw new SafeDeployException("RecoveryFailed", ErrorKind.InvalidOperation, path,
                    $"Run '{id}' of '{name}' died mid-way and rolling it back failed: {string.Join("; ", rollback.Phases.Values.Where(u => u.Error is not null).Select(u => u.Error))}",
                    "Read the journal and the undo logs beside it, repair by hand, then deploy again.");
            done.Add(id);
        }
        return done;
    }

    RunState Rebuild(List<JsonObject> records, Journal journal, IOperationReporter reporter, ScriptInvoker? scriptInvoker)
    {
        var start = records.First(r => (string?)r["type"] == "start");
        var file = (string)start["manifestFile"]!;
        var variables = (start["variables"] as JsonObject)?.ToDictionary(kv => kv.Key, kv => (string)kv.Value!) ?? new Dictionary<string, string>();
        var root = (string?)start["root"];
        var parsed = new ManifestParser(Registry).Parse((string)start["manifestText"]!, file, variables, root);
        var manifest = parsed.GetOrThrow(journal.Path);
        var name = (string)start["name"]!;
        var id = (string)start["id"]!;
        return new RunState(manifest, id, Store.RunDirectory(name, id), journal, root, reporter, scriptInvoker);
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

    sealed record RunState(DeploymentManifest Manifest, string Id, string Directory, Journal Journal, string? Root,
        IOperationReporter Reporter, ScriptInvoker? ScriptInvoker);

    sealed class PhaseOutcome
    {
        public required PhaseDefinition Phase { get; init; }
        public string Status { get; set; } = "Running";
        public DateTimeOffset Started { get; set; }
        public TimeSpan Duration { get; set; }
        public long Ended { get; set; }
        public string? Error { get; set; }
        public string Output { get; set; } = "";
        public string? LogPath { get; set; }
        public bool Failed => Status is "Failed" or "TimedOut" or "Cancelled";
        public PhaseResult ToResult() => new() { Name = Phase.Name, Status = Status, Started = Started, Duration = Duration, Error = Error, Output = Output, LogPath = LogPath };
    }

    static PhaseResult Skipped(PhaseDefinition p) => new() { Name = p.Name, Status = "Skipped" };

    static PhaseResult Merge(PhaseResult r, UndoOutcome u) => r with
    {
        Status = u.Error is not null ? "RollbackFailed" : r.Status == "Succeeded" ? "RolledBack" : r.Status,
        Error = u.Error ?? r.Error,
        Output = string.IsNullOrEmpty(u.Output) ? r.Output : r.Output + "\n--- undo ---\n" + u.Output,
    };

    Dictionary<string, PhaseOutcome> Schedule(RunState run, List<PhaseDefinition> phases, int throttle, CancellationToken token)
    {
        var outcomes = new Dictionary<string, PhaseOutcome>();
        var status = new Dictionary<string, string>();
        var selected = phases.Select(p => p.Name).ToHashSet();
        var waiting = phases.ToList();
        var running = new Dictionary<Task, PhaseDefinition>();
        bool failing = false;
        long completed = 0;
        int parent = Interlocked.Add(ref nextActivity, 100);
        int childIndex = 0;
        var childIds = new ConcurrentDictionary<string, int>();
        void Overall() => run.Reporter.Progress(new ProgressUpdate(parent, $"Deploying {run.Manifest.Name}",
            $"{completed} of {phases.Count} phases done, {running.Count} running", (int)(100 * completed / Math.Max(1, phases.Count))));
        Overall();
        try
        {
            while (true)
            {
                bool changed = true;
                while (changed)
                {
                    changed = false;
                    foreach (var p in waiting.ToList())
                    {
                        var deps = p.DependsOn.Where(selected.Contains).ToList();
                        if (deps.Any(d => status.TryGetValue(d, out var s) && s != "Succeeded"))
                        {
                            status[p.Name] = "Skipped";
                            waiting.Remove(p);
                            changed = true;
                            continue;
                        }
                        if (failing || token.IsCancellationRequested || running.Count >= throttle) continue;
                        if (!deps.All(d => status.TryGetValue(d, out var s) && s == "Succeeded")) continue;
                        waiting.Remove(p);
                        var outcome = new PhaseOutcome { Phase = p };
                        outcomes[p.Name] = outcome;
                        int child = parent + 1 + Interlocked.Increment(ref childIndex) % 99;
                        childIds[p.Name] = child;
                        run.Reporter.Progress(new ProgressUpdate(child, $"Phase {p.Name}", p.Action.Describe(), ParentId: parent));
                        var task = Task.Factory.StartNew(() => RunPhase(run, p, outcome, token), CancellationToken.None,
                            TaskCreationOptions.LongRunning, TaskScheduler.Default);
                        running[task] = p;
                        changed = true;
                    }
                }
                Overall();
                if (running.Count == 0) break;
                var done = running.Keys.ToArray()[Task.WaitAny(running.Keys.ToArray())];
                var phase = running[done];
                running.Remove(done);
                var o = outcomes[phase.Name];
                status[phase.Name] = o.Status;
                completed++;
                run.Reporter.Progress(new ProgressUpdate(childIds[phase.Name], $"Phase {phase.Name}", o.Status, ParentId: parent, Completed: true));
                if (o.Failed)
                {
                    if (phase.ContinueOnError) run.Reporter.Warning($"Optional phase '{phase.Name}' {o.Status.ToLowerInvariant()}: {o.Error} (continueOnError: the deployment goes on; phases that depend on it are skipped).");
                    else if (!failing)
                    {
                        failing = true;
                        run.Reporter.Verbose($"Phase '{phase.Name}' {o.Status.ToLowerInvariant()}; no new phases start.");
                    }
                }
            }
        }
        finally { run.Reporter.Progress(new ProgressUpdate(parent, $"Deploying {run.Manifest.Name}", "done", Completed: true)); }
        return outcomes;
    }

    void RunPhase(RunState run, PhaseDefinition phase, PhaseOutcome outcome, CancellationToken deployToken)
    {
        var clock = Stopwatch.StartNew();
        outcome.Started = DateTimeOffset.UtcNow;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(deployToken);
        if (phase.Timeout is { } t) timeout.CancelAfter(t);
        var locks = new List<FileLock>();
        var log = new PhaseLog(Path.Combine(run.Directory, "logs", phase.Name + ".log"), run.Reporter, phase.Name);
        outcome.LogPath = log.Path;
        bool started = false;
        try
        {
            foreach (var r in phase.Resources.Distinct().Order(StringComparer.Ordinal)) // one global order: no deadlock between phases
            {
                var path = Store.State.LockPath(r);
                var held = FileLock.TryAcquire(path, new LockOptions { Purpose = $"deployment {run.Manifest.Name} phase {phase.Name}" });
                if (held is null)
                {
                    log.WriteLine($"waiting for resource '{r}', held by {LockInspector.Inspect(path).Describe()}");
                    held = FileLock.Acquire(path, new LockOptions { Purpose = $"deployment {run.Manifest.Name} phase {phase.Name}", Reporter = run.Reporter }, timeout.Token);
                }
                locks.Add(held);
            }
            run.Journal.Write("phase-start", new JsonObject { ["phase"] = phase.Name, ["pid"] = Environment.ProcessId }, sync: false);
            started = true;
            var context = NewContext(run, phase, log, timeout.Token);
            phase.Action.ExecuteAsync(context).GetAwaiter().GetResult();
            outcome.Status = "Succeeded";
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            bool timedOut = !deployToken.IsCancellationRequested;
            outcome.Status = timedOut ? "TimedOut" : "Cancelled";
            outcome.Error = timedOut ? $"Phase '{phase.Name}' did not finish within its timeout of {phase.Timeout!.Value.TotalSeconds:0.#} s and was cancelled."
                                     : $"Phase '{phase.Name}' was cancelled (Ctrl+C).";
        }
        catch (Exception e)
        {
            outcome.Status = "Failed";
            outcome.Error = e is SafeDeployException s ? $"{s.Message}" : $"Phase '{phase.Name}': {e.GetType().Name}: {e.Message}";
        }
        finally
        {
            outcome.Duration = clock.Elapsed;
            if (outcome.Error is not null) log.WriteLine("error: " + outcome.Error);
            outcome.Output = log.Text();
            log.Dispose();
            if (started)
                run.Journal.Write("phase-end", new JsonObject { ["phase"] = phase.Name, ["status"] = outcome.Status, ["error"] = outcome.Error },
                    sync: outcome.Status != "Succeeded");
            else if (outcome.Status == "Running") outcome.Status = "Failed";
            outcome.Ended = Stopwatch.GetTimestamp();
            foreach (var l in locks) l.Dispose();
        }
    }

    ActionContext NewContext(RunState run, PhaseDefinition phase, TextWriter log, CancellationToken token) => new()
    {
        DeploymentName = run.Manifest.Name,
        PhaseName = phase.Name,
        Root = run.Root,
        ManifestDirectory = Path.GetDirectoryName(run.Manifest.File)!,
        BackupDirectory = Path.Combine(run.Directory, "backups", phase.Name),
        Variables = run.Manifest.Variables,
        Reporter = run.Reporter,
        Log = log,
        Cancellation = token,
        Journal = u => run.Journal.WriteUndo(phase.Name, u),
        ScriptInvoker = run.ScriptInvoker,
    };

    sealed record UndoOutcome(string Phase, string? Error, string Output, TimeSpan Duration, bool HadRecords);

    sealed record RollbackOutcome(Dictionary<string, UndoOutcome> Phases)
    {
        public bool Failed => Phases.Values.Any(p => p.Error is not null);
        public bool UndidAnything => Phases.Values.Any(p => p.HadRecords);
    }

    /// <summary>Undoes every phase the journal shows started (and not yet undone), in reverse order of completion; unfinished phases first.</summary>
    RollbackOutcome RollBack(RunState run, List<JsonObject> records, CancellationToken token)
    {
        var started = records.Where(r => (string?)r["type"] == "phase-start").Select(r => (string)r["phase"]!).Distinct().ToList();
        var endSeq = records.Where(r => (string?)r["type"] == "phase-end").GroupBy(r => (string)r["phase"]!).ToDictionary(g => g.Key, g => (int)g.Last()["seq"]!);
        var undone = records.Where(r => (string?)r["type"] == "phase-undone" && r["error"] is null).Select(r => (string)r["phase"]!).ToHashSet();
        var undoRecords = records.Where(r => (string?)r["type"] == "undo").GroupBy(r => (string)r["phase"]!)
            .ToDictionary(g => g.Key, g => (IReadOnlyList<UndoRecord>)g.Select(Journal.ToUndoRecord).ToList());
        // Undo records may exist for a phase whose phase-start record was never written (sync: false): include those too.
        foreach (var p in undoRecords.Keys) if (!started.Contains(p)) started.Add(p);
        var order = started.Where(p => !undone.Contains(p))
            .OrderByDescending(p => endSeq.TryGetValue(p, out var s) ? s : int.MaxValue).ToList();
        var result = new Dictionary<string, UndoOutcome>();
        foreach (var name in order)
        {
            var phase = run.Manifest.Phases.FirstOrDefault(p => p.Name == name);
            var recorded = undoRecords.TryGetValue(name, out var list) ? list : Array.Empty<UndoRecord>();
            if (phase is null) { result[name] = new UndoOutcome(name, $"phase '{name}' is not in the journaled manifest", "", TimeSpan.Zero, true); continue; }
            var clock = Stopwatch.StartNew();
            run.Journal.Write("phase-undo-start", new JsonObject { ["phase"] = name });
            var log = new PhaseLog(Path.Combine(run.Directory, "logs", name + ".undo.log"), run.Reporter, name + " undo");
            string? error = null;
            try
            {
                phase.Action.UndoAsync(NewContext(run, phase, log, token), recorded).GetAwaiter().GetResult();
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                error = $"undo of phase '{name}' failed: {e.Message}";
                log.WriteLine("error: " + error);
            }
            var output = log.Text();
            log.Dispose();
            run.Journal.Write("phase-undone", new JsonObject { ["phase"] = name, ["error"] = error });
            bool meaningful = recorded.Count > 0;
            result[name] = new UndoOutcome(name, error, output, clock.Elapsed, meaningful);
        }
        return new RollbackOutcome(result);
    }
}
