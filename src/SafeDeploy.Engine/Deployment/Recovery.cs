using System.Diagnostics;
using System.Text.Json.Nodes;
using Microsoft.Win32.SafeHandles;
using SafeDeploy.Engine.Actions;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Manifest;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Deployment;

/// <summary>
/// Rollback and crash recovery: undoes the phases a journal shows started (newest end first, unfinished phases
/// first), removes the temporary files the journal says a phase may have left, and rolls back runs whose process died.
/// The actions are rebuilt from the manifest text kept in the journal, so this works in any later process.
/// </summary>
sealed class Recovery(DeploymentStore store, ActionRegistry registry, IOperationReporter reporter, ScriptInvoker? scriptInvoker)
{
    internal sealed record UndoOutcome(string Phase, string? Error, string Output, TimeSpan Duration, bool HadRecords);

    internal sealed record RollbackOutcome(Dictionary<string, UndoOutcome> Phases)
    {
        public bool Failed => Phases.Values.Any(p => p.Error is not null);
        public bool UndidAnything => Phases.Values.Any(p => p.HadRecords);
        public string Errors => string.Join("; ", Phases.Values.Where(u => u.Error is not null).Select(u => u.Error));
    }

    /// <summary>Rolls back every run of <paramref name="name"/> whose journal has no end (its process died). Call under the deployment lock.</summary>
    public IReadOnlyList<string> RecoverIncomplete(string name)
    {
        var done = new List<string>();
        foreach (var path in store.Journals(name))
        {
            var view = JournalView.Load(path);
            if (!view.IsIncomplete) continue;
            reporter.Warning($"Run '{view.Id}' of deployment '{name}' did not finish (its process, pid {view.Pid}, died); rolling it back first.");
            EndOrphans(view, path);
            using var journal = Journal.Append(path);
            var run = Rebuild(view, journal);
            journal.Write(JournalRecord.RollbackStart, new JsonObject { ["reason"] = "recovery: the deploying process died", ["pid"] = Environment.ProcessId });
            var rollback = RollBack(run, JournalView.Load(path), CancellationToken.None);
            var status = rollback.Failed ? DeployStatus.RollbackFailed : view.WasUndo ? DeployStatus.Undone : DeployStatus.RolledBack;
            journal.Write(JournalRecord.End, new JsonObject
            {
                ["status"] = StatusName.Of(status), ["generation"] = view.PreviousGeneration, ["recovered"] = true,
                ["error"] = rollback.Failed ? "recovery rollback failed" : "the deploying process died; rolled back by the next run",
            });
            if (rollback.Failed)
                throw new SafeDeployException("RecoveryFailed", ErrorKind.InvalidOperation, path,
                    $"Run '{view.Id}' of '{name}' died mid-way and rolling it back failed: {rollback.Errors}",
                    "Read the journal and the undo logs beside it, repair by hand, then deploy again.");
            done.Add(view.Id);
        }
        SweepTemporaries(name);
        return done;
    }

    /// <summary>
    /// Removes what the latest finished run could not: a temporary file its failure left when the disk refused even the
    /// unlink (the run ended, so no recovery runs for it). Temporary names are unique, so one that is gone or was renamed
    /// into place is simply not there.
    /// </summary>
    void SweepTemporaries(string name)
    {
        var last = store.Journals(name).LastOrDefault();
        if (last is null) return;
        var view = JournalView.Load(last);
        if (view.IsIncomplete || view.EndStatus == DeployStatus.Succeeded || view.Temporaries.Count == 0) return;
        var root = DeploymentRoot.From(view.Root);
        foreach (var (_, path) in view.Temporaries)
            if (RemoveTemporary(root, path)) reporter.Verbose($"Removed the temporary file {path} that run '{view.Id}' of '{name}' left.");
    }

    /// <summary>
    /// Ends what the dead run's phase commands left running (their process groups, found by the journaled pgid and start time
    /// or by their token) before anything is undone under them; a stale record (pid reused) matches nothing and kills nothing.
    /// </summary>
    void EndOrphans(JournalView view, string path)
    {
        // Per command: its pgid record (journaled right after the start, with the leader's start time), else its token record.
        foreach (var group in view.ProcessGroups.GroupBy(g => g.Token).Select(g => g.FirstOrDefault(r => r.Pgid > 1) ?? g.First()))
        {
            var outcome = ProcessGroup.EndIfAlive(group, TimeSpan.FromSeconds(5));
            if (outcome == ProcessGroupOutcome.Ended)
                reporter.Warning($"Ended the processes a phase command of run '{view.Id}' left running (process group {group.Pgid}).");
            if (outcome == ProcessGroupOutcome.Survived)
                throw new SafeDeployException("OrphanSurvived", ErrorKind.ResourceBusy, path,
                    $"Run '{view.Id}' of '{view.Name}' died while a phase command ran, and its processes (process group {group.Pgid}) survived SIGTERM and SIGKILL; nothing was undone under them.",
                    $"Find the processes with SAFEDEPLOY_PROCESS_GROUP={group.Token} in their environment (e.g. in D state on a hung mount), end them, then deploy again.");
        }
    }

    /// <summary>The run a journal describes, with its actions rebuilt from the journaled manifest text.</summary>
    public RunState Rebuild(JournalView view, Journal journal)
    {
        var root = DeploymentRoot.From(view.Root);
        var manifest = new ManifestParser(registry).Parse(view.ManifestText!, view.ManifestFile!, view.Variables, root).GetOrThrow(journal.Path);
        return new RunState(manifest, view.Id, store.RunDirectory(view.Name, view.Id), journal, root, reporter, scriptInvoker);
    }

    /// <summary>Undoes every phase the journal shows started and not yet undone.</summary>
    public RollbackOutcome RollBack(RunState run, JournalView view, CancellationToken token)
    {
        var result = new Dictionary<string, UndoOutcome>();
        foreach (var name in view.PhasesToUndo())
        {
            var phase = run.Manifest.Phases.FirstOrDefault(p => p.Name == name);
            var recorded = view.UndoRecords(name);
            if (phase is null) { result[name] = new UndoOutcome(name, $"phase '{name}' is not in the journaled manifest", "", TimeSpan.Zero, true); continue; }
            var clock = Stopwatch.StartNew();
            run.Journal.Write(JournalRecord.PhaseUndoStart, new JsonObject { ["phase"] = name });
            using var log = PhaseLog.OpenForUndo(run.LogPath(name, undo: true), run.Reporter, name + " undo");
            string? error = null;
            try
            {
                RemoveTemporaries(view, name, run.Root, log); // first: a directory the phase created is then empty again
                phase.Action.UndoAsync(run.Context(phase, log, token), recorded).GetAwaiter().GetResult();
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                error = $"undo of phase '{name}' failed: {e.Message}";
                try { log.WriteLine("error: " + error); } catch (Exception) { /* the error is in the result */ }
            }
            var output = log.Text();
            run.Journal.Write(JournalRecord.PhaseUndone, new JsonObject { ["phase"] = name, ["error"] = error });
            result[name] = new UndoOutcome(name, error, output, clock.Elapsed, recorded.Count > 0);
        }
        return new RollbackOutcome(result);
    }

    /// <summary>Removes each temporary file the phase journaled (left by a process killed between its fsync and its rename).</summary>
    static void RemoveTemporaries(JournalView view, string phase, DeploymentRoot root, TextWriter log)
    {
        foreach (var (p, path) in view.Temporaries)
            if (p == phase && RemoveTemporary(root, path)) log.WriteLine($"removed the temporary file {path} left by the run");
    }

    /// <summary>
    /// Removes one journaled temporary file or creation lock (never what a link there points to); false when it is gone,
    /// or when an editor holds its lock now (a `.name.lock` another Edit-LockedFile took since: theirs, not ours).
    /// </summary>
    static bool RemoveTemporary(DeploymentRoot root, string path)
    {
        try
        {
            using var at = root.OpenRecorded(path);
            if (at.Stat() is not { IsRegularFile: true }) return at.Directory.Delete(at.Name);
            SafeFileHandle fd;
            try { fd = at.Directory.OpenFile(at.Name); }
            catch (SafeDeployException) { return at.Directory.Delete(at.Name); } // refused to open (another user's): the name goes all the same
            using (fd)
            {
                if (Native.Flock(fd, Native.LOCK_EX | Native.LOCK_NB) != 0) return false;
                // Removed while held, and only the entry we locked: a waiter on it finds the path no longer names it.
                return at.Stat() is { } now && now.SameFileAs(Native.Fstat(fd)) && at.Directory.Delete(at.Name);
            }
        }
        catch (SafeDeployException e) when (e.ErrorId is "DirectoryNotFound") { return false; } // its directory is gone: so is the file
    }

    public static PhaseResult Merge(PhaseResult r, UndoOutcome u) => r with
    {
        Status = u.Error is not null ? PhaseStatus.RollbackFailed : r.Status == PhaseStatus.Succeeded ? PhaseStatus.RolledBack : r.Status,
        Error = u.Error ?? r.Error,
        Output = string.IsNullOrEmpty(u.Output) ? r.Output : r.Output + "\n--- undo ---\n" + u.Output,
    };
}
