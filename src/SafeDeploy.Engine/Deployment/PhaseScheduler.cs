using System.Diagnostics;
using System.Text.Json.Nodes;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Locking;
using SafeDeploy.Engine.Manifest;
using SafeDeploy.Engine.Platform;
using SafeDeploy.Engine.StateDirectories;

namespace SafeDeploy.Engine.Deployment;

/// <summary>
/// Runs the phases of one run: each as soon as its dependencies succeeded, at most the throttle limit at a time, each
/// under its resource locks (taken in one global order, so phases never deadlock). After a failure no new phase starts.
/// Anything that goes wrong inside a phase — its log, its journal records, its backups, its action — fails that phase,
/// and the run has succeeded only when every phase has (a failed continueOnError phase and what depends on it excepted).
/// </summary>
sealed class PhaseScheduler(StateDirectory state, RunState run)
{
    /// <summary>What the phases did: their results in manifest order, and the first failure (null when the run succeeded).</summary>
    internal sealed record Outcome(List<PhaseResult> Results, string? Error);

    sealed class PhaseOutcome
    {
        public required PhaseDefinition Phase { get; init; }
        public PhaseStatus Status { get; set; } = PhaseStatus.Running;
        public DateTimeOffset Started { get; set; }
        public TimeSpan Duration { get; set; }
        public long Ended { get; set; }
        public string? Error { get; set; }
        public string Output { get; set; } = "";
        public string? LogPath { get; set; }
        public bool Failed => Status != PhaseStatus.Succeeded;
        public PhaseResult ToResult() => new() { Name = Phase.Name, Status = Status, Started = Started, Duration = Duration, Error = Error, Output = Output, LogPath = LogPath };
    }

    public Outcome Run(IReadOnlyList<PhaseDefinition> phases, int throttle, CancellationToken token)
    {
        var outcomes = new Dictionary<string, PhaseOutcome>();
        var status = new Dictionary<string, PhaseStatus>();
        var excused = new HashSet<string>(); // failed optional phases, and phases skipped only because of them
        var selected = phases.Select(p => p.Name).ToHashSet();
        var waiting = phases.ToList();
        var running = new Dictionary<Task, PhaseDefinition>();
        bool failing = false;
        long completed = 0;
        int parent = ProgressIds.Block(phases.Count + 1);
        var childIds = new Dictionary<string, int>();
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
                        var bad = deps.Where(d => status.TryGetValue(d, out var s) && s != PhaseStatus.Succeeded).ToList();
                        if (bad.Count > 0)
                        {
                            status[p.Name] = PhaseStatus.Skipped;
                            if (bad.All(excused.Contains)) excused.Add(p.Name);
                            waiting.Remove(p);
                            changed = true;
                            continue;
                        }
                        if (failing || token.IsCancellationRequested || running.Count >= throttle) continue;
                        if (!deps.All(d => status.TryGetValue(d, out var s) && s == PhaseStatus.Succeeded)) continue;
                        waiting.Remove(p);
                        var outcome = new PhaseOutcome { Phase = p };
                        outcomes[p.Name] = outcome;
                        int child = childIds[p.Name] = parent + 1 + childIds.Count;
                        run.Reporter.Progress(new ProgressUpdate(child, $"Phase {p.Name}", p.Action.Describe(), ParentId: parent));
                        var task = Task.Factory.StartNew(() => RunPhase(p, outcome, token), CancellationToken.None,
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
                if (done.IsFaulted && !o.Failed) { o.Status = PhaseStatus.Failed; o.Error ??= $"Phase '{phase.Name}': {done.Exception!.InnerException!.Message}"; }
                status[phase.Name] = o.Status;
                completed++;
                run.Reporter.Progress(new ProgressUpdate(childIds[phase.Name], $"Phase {phase.Name}", StatusName.Of(o.Status), ParentId: parent, Completed: true));
                if (!o.Failed) continue;
                if (phase.ContinueOnError)
                {
                    excused.Add(phase.Name);
                    run.Reporter.Warning($"Optional phase '{phase.Name}' {StatusName.Of(o.Status).ToLowerInvariant()}: {o.Error} (continueOnError: the deployment goes on; phases that depend on it are skipped).");
                }
                else if (!failing)
                {
                    failing = true;
                    run.Reporter.Verbose($"Phase '{phase.Name}' {StatusName.Of(o.Status).ToLowerInvariant()}; no new phases start.");
                }
            }
        }
        finally { run.Reporter.Progress(new ProgressUpdate(parent, $"Deploying {run.Manifest.Name}", "done", Completed: true)); }

        var results = phases.Select(p => outcomes.TryGetValue(p.Name, out var o) ? o.ToResult() : new PhaseResult { Name = p.Name, Status = PhaseStatus.Skipped }).ToList();
        var failure = outcomes.Values.Where(o => o.Failed && !o.Phase.ContinueOnError).OrderBy(o => o.Ended).FirstOrDefault();
        string? error = failure?.Error ?? (failure is not null ? $"Phase '{failure.Phase.Name}' {StatusName.Of(failure.Status).ToLowerInvariant()}." : null);
        if (error is null && !token.IsCancellationRequested)
        {
            // Succeeded only when every phase did: one that did not (and is not excused) fails the run.
            var unfinished = results.FirstOrDefault(r => r.Status != PhaseStatus.Succeeded && !excused.Contains(r.Name));
            if (unfinished is not null) error = $"Phase '{unfinished.Name}' did not succeed ({unfinished.Status}).";
        }
        return new Outcome(results, error);
    }

    void RunPhase(PhaseDefinition phase, PhaseOutcome outcome, CancellationToken deployToken)
    {
        var clock = Stopwatch.StartNew();
        outcome.Started = DateTimeOffset.UtcNow;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(deployToken);
        if (phase.Timeout is { } t) timeout.CancelAfter(t);
        var locks = new List<FileLock>();
        PhaseLog? log = null;
        bool started = false;
        try
        {
            var logPath = run.LogPath(phase.Name);
            outcome.LogPath = logPath;
            try { log = PhaseLog.Open(logPath, run.Reporter, phase.Name); }
            catch (Exception e) when (e is SafeDeployException or IOException or UnauthorizedAccessException)
            {
                throw new SafeDeployException(e is SafeDeployException s ? s.ErrorId : "IOError", e is SafeDeployException k ? k.Kind : ErrorKind.WriteError, logPath,
                    $"Phase '{phase.Name}': its log '{logPath}' could not be created: {e.Message}", (e as SafeDeployException)?.RecommendedAction, e);
            }
            foreach (var r in phase.Resources.Distinct().Order(StringComparer.Ordinal))
            {
                var path = state.LockPath(r);
                var held = FileLock.TryAcquire(path, new LockOptions { Purpose = $"deployment {run.Manifest.Name} phase {phase.Name}" });
                if (held is null)
                {
                    log.WriteLine($"waiting for resource '{r}', held by {LockInspector.Inspect(path).Describe()}");
                    held = FileLock.Acquire(path, new LockOptions { Purpose = $"deployment {run.Manifest.Name} phase {phase.Name}", Reporter = run.Reporter }, timeout.Token);
                }
                locks.Add(held);
            }
            run.Journal.Write(JournalRecord.PhaseStart, new JsonObject { ["phase"] = phase.Name, ["pid"] = Environment.ProcessId });
            started = true;
            phase.Action.ExecuteAsync(run.Context(phase, log, timeout.Token)).GetAwaiter().GetResult();
            outcome.Status = PhaseStatus.Succeeded;
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            bool timedOut = !deployToken.IsCancellationRequested;
            outcome.Status = timedOut ? PhaseStatus.TimedOut : PhaseStatus.Cancelled;
            outcome.Error = timedOut ? $"Phase '{phase.Name}' did not finish within its timeout of {phase.Timeout!.Value.TotalSeconds:0.#} s and was cancelled."
                                     : $"Phase '{phase.Name}' was cancelled (Ctrl+C).";
        }
        catch (Exception e)
        {
            outcome.Status = PhaseStatus.Failed;
            outcome.Error = e is SafeDeployException s ? s.Message : $"Phase '{phase.Name}': {e.GetType().Name}: {e.Message}";
        }
        finally
        {
            outcome.Duration = clock.Elapsed;
            Finish(phase, outcome, log, started);
            outcome.Ended = Stopwatch.GetTimestamp();
            foreach (var l in locks) l.Dispose();
        }
    }

    /// <summary>Closes the phase's log and journals its end; a failure of either fails a phase that had succeeded.</summary>
    void Finish(PhaseDefinition phase, PhaseOutcome outcome, PhaseLog? log, bool started)
    {
        void Failed(Exception e, string what)
        {
            if (outcome.Status != PhaseStatus.Succeeded) return;
            outcome.Status = PhaseStatus.Failed;
            outcome.Error = $"Phase '{phase.Name}': {what}: {e.Message}";
        }
        if (log is not null)
        {
            try { if (outcome.Error is not null) log.WriteLine("error: " + outcome.Error); }
            catch (Exception e) when (e is SafeDeployException or IOException) { Failed(e, "its log could not be written"); }
            outcome.Output = log.Text();
            log.Dispose();
        }
        if (!started) { if (outcome.Status == PhaseStatus.Running) outcome.Status = PhaseStatus.Failed; return; }
        try { run.Journal.Write(JournalRecord.PhaseEnd, new JsonObject { ["phase"] = phase.Name, ["status"] = StatusName.Of(outcome.Status), ["error"] = outcome.Error }); }
        catch (Exception e) when (e is SafeDeployException or IOException) { Failed(e, "its end could not be journaled"); }
    }
}
