using System.Security.Cryptography;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Actions;

/// <summary>PowerShell to run for the `script` action, on the cmdlet's pipeline thread.</summary>
internal sealed record ScriptRequest(string Script, IReadOnlyDictionary<string, string> Variables, string Phase, string WorkingDirectory, DeploymentRoot Root);

/// <summary>
/// Runs a script in the caller's PowerShell session and returns its output as text; throws when the script fails.
/// Supplied by the cmdlet (the engine has no PowerShell types).
/// </summary>
internal delegate Task<string> ScriptInvoker(ScriptRequest request, CancellationToken cancellationToken);

/// <summary>Everything an action may use while it executes or undoes: sandbox paths, variables, log, journal, cancellation.</summary>
internal sealed class ActionContext
{
    int backupCount;

    public required string DeploymentName { get; init; }
    public required string PhaseName { get; init; }
    /// <summary>The -Root sandbox (or the real tree).</summary>
    public DeploymentRoot Root { get; init; } = DeploymentRoot.Real;
    /// <summary>Directory of the manifest: relative source paths are read from here.</summary>
    public required string ManifestDirectory { get; init; }
    /// <summary>Where this phase keeps backups (inside the run's folder in the state directory).</summary>
    public required string BackupDirectory { get; init; }
    public IReadOnlyDictionary<string, string> Variables { get; init; } = new Dictionary<string, string>();
    public IOperationReporter Reporter { get; init; } = NullReporter.Instance;
    /// <summary>The phase's log (a file in the run's log folder); thread-safe.</summary>
    public TextWriter Log { get; init; } = TextWriter.Null;
    /// <summary>Cancelled on failure of the deployment, the phase timeout, or Ctrl+C.</summary>
    public CancellationToken Cancellation { get; init; }
    /// <summary>Writes one undo record to the journal and flushes it to disk before returning.</summary>
    public Action<UndoRecord> Journal { get; init; } = _ => { };
    /// <summary>Journals a temporary file before it is created (recovery removes it when the process died before its rename).</summary>
    public Action<string> Temporary { get; init; } = _ => { };
    /// <summary>Journals a phase command's process group (before its start, then with its pgid) so that recovery can end it.</summary>
    public Action<ProcessGroupRecord> ProcessGroup { get; init; } = _ => { };
    /// <summary>The deployment's top-level <c>environment:</c>/<c>inheritEnvironment:</c> (null: the default).</summary>
    public EnvironmentSpec? DeploymentEnvironment { get; init; }
    /// <summary>Runs PowerShell on the pipeline thread; null when no PowerShell session is available.</summary>
    public ScriptInvoker? ScriptInvoker { get; init; }

    /// <summary>Maps an absolute path the deployment writes into the -Root sandbox; relative paths are rejected.</summary>
    public string MapPath(string path) => Root.Map(path);

    /// <summary>A path the deployment reads: relative to the manifest's directory, absolute as given.</summary>
    public string ResolveSource(string path) =>
        System.IO.Path.GetFullPath(System.IO.Path.IsPathRooted(path) ? path : System.IO.Path.Combine(ManifestDirectory, path));

    /// <summary>Journals what undoing the next step needs; call it BEFORE the step.</summary>
    public void RecordUndo(string step, IReadOnlyDictionary<string, string?>? data = null) =>
        Journal(new UndoRecord { Step = step, Data = data ?? new Dictionary<string, string?>() });

    /// <summary>
    /// Copies the current bytes and mode of <paramref name="mappedPath"/> (already under Root) into the backup
    /// directory, fsynced, and journals the backup; a missing file is journaled as "did not exist", a symlink as its
    /// target (undo puts the link back). The file is read through the root (<see cref="DeploymentRoot.Open"/>).
    /// </summary>
    public FileBackup BackupFile(string mappedPath, string step = "backup")
    {
        FileBackup backup;
        using (var at = Root.Open(Root.Unmap(mappedPath)))
        {
            var st = at.Stat();
            if (st is null) backup = new FileBackup(mappedPath, null, null);
            else if (st.IsSymlink) backup = new FileBackup(mappedPath, null, null, at.Directory.ReadLink(at.Name));
            else
            {
                var bytes = RootedFiles.Read(at) ?? Array.Empty<byte>();
                var copy = System.IO.Path.Combine(BackupDirectory, RootedFiles.BackupName(Interlocked.Increment(ref backupCount), at.Name));
                using (var dest = Root.OpenRecorded(copy, createParents: true)) RootedFiles.Replace(dest, bytes, 0x180, Temporary);
                backup = new FileBackup(mappedPath, copy, st.Permissions);
            }
        }
        Journal(new UndoRecord { Step = step, Backups = [backup] });
        return backup;
    }

    /// <summary>Puts a backed-up file back byte for byte (with its mode) or as the symlink it was, or removes it when it did not exist.</summary>
    public void RestoreBackup(FileBackup backup)
    {
        bool existed = backup.BackupPath is not null || backup.LinkTarget is not null;
        RootedPath at;
        try { at = Root.Open(Root.Unmap(backup.Path), createParents: existed); }
        catch (SafeDeployException e) when (!existed && e.ErrorId == "DirectoryNotFound") { return; } // its directory is gone: so is the file
        using var _ = at;
        if (backup.LinkTarget is not null) RootedFiles.RestoreLink(at, backup.LinkTarget);
        else if (backup.BackupPath is null) { if (at.Directory.Delete(at.Name)) at.Directory.Fsync(); }
        else
        {
            byte[] bytes;
            using (var copy = Root.OpenRecorded(backup.BackupPath)) bytes = RootedFiles.Read(copy) ?? throw new FileNotFoundException($"The backup '{backup.BackupPath}' is missing.", backup.BackupPath);
            RootedFiles.Replace(at, bytes, backup.Mode, Temporary);
        }
    }

    /// <summary>
    /// Creates the missing parent directories of <paramref name="mappedPath"/> inside the root, journaling them first
    /// (step "mkdir") so that <see cref="UndoDirectories"/> removes exactly those again.
    /// </summary>
    public void EnsureParentDirectory(string mappedPath)
    {
        var missing = new List<string>();
        var inRoot = Root.Unmap(mappedPath);
        for (var d = System.IO.Path.GetDirectoryName(inRoot); d is not null && d != "/" && !Exists(d); d = System.IO.Path.GetDirectoryName(d))
            missing.Add(Root.Map(d));
        if (missing.Count == 0) return;
        RecordUndo("mkdir", new Dictionary<string, string?> { ["directories"] = string.Join('\n', missing) });
        using var _ = Root.Open(inRoot, createParents: true);
    }

    /// <summary>Whether a directory (as the manifest names it) exists, looked up inside the root.</summary>
    bool Exists(string absoluteDirectory)
    {
        try
        {
            using var at = Root.Open(absoluteDirectory);
            return at.Stat() is not null;
        }
        catch (SafeDeployException e) when (e.ErrorId is "DirectoryNotFound" or "PathNotFound") { return false; }
    }

    /// <summary>Undoes every record of <paramref name="recorded"/> in reverse: restores backups, removes created (now empty) directories.</summary>
    public void UndoFiles(IReadOnlyList<UndoRecord> recorded)
    {
        for (int i = recorded.Count - 1; i >= 0; i--)
        {
            var r = recorded[i];
            for (int b = r.Backups.Count - 1; b >= 0; b--) RestoreBackup(r.Backups[b]);
            if (r.Step == "mkdir") UndoDirectories(r);
        }
    }

    /// <summary>Removes the directories a "mkdir" record names, deepest first, when they are empty (inside the root).</summary>
    public void UndoDirectories(UndoRecord record)
    {
        if (!record.Data.TryGetValue("directories", out var list) || string.IsNullOrEmpty(list)) return;
        foreach (var dir in list.Split('\n'))
        {
            try
            {
                using var at = Root.Open(Root.Unmap(dir));
                at.Directory.DeleteDirectory(at.Name); // false when not empty: something else lives there now; leave it
            }
            catch (SafeDeployException e) when (e.ErrorId is "DirectoryNotFound" or "PathNotFound") { } // its parent is gone already
        }
    }

    /// <summary>Runs an external command with the phase's log receiving its output lines.</summary>
    public async Task<CommandResult> RunCommandAsync(ExternalCommand command)
    {
        Log.WriteLine($"$ {ExternalCommand.Format(command.Program, command.Arguments)}");
        var log = Log;
        var result = await (command with { OnLine = line => { lock (log) log.WriteLine(line); } }).RunAsync(Cancellation).ConfigureAwait(false);
        Log.WriteLine(result.TimedOut ? $"# timed out after {result.Duration.TotalSeconds:0.#} s" : $"# exit {result.ExitCode}");
        return result;
    }

    /// <summary>Runs PowerShell through the cmdlet's session.</summary>
    public Task<string> RunScriptAsync(string script, string? workingDirectory = null)
    {
        if (ScriptInvoker is null)
            throw new SafeDeployException("ScriptHostUnavailable", ErrorKind.InvalidOperation, PhaseName,
                $"Phase '{PhaseName}' runs PowerShell, but no PowerShell session is available to run it.",
                "Run the deployment (or its rollback) through Invoke-SafeDeploy or Undo-SafeDeploy.");
        return ScriptInvoker(new ScriptRequest(script, Variables, PhaseName, workingDirectory ?? ManifestDirectory, Root), Cancellation);
    }
}
