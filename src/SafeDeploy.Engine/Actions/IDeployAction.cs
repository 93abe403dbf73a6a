namespace SafeDeploy.Engine.Actions;

// ---------------------------------------------------------------------------------------------------------------
// The action plug-in contract.
//
// A manifest phase holds exactly one action, named by its YAML key (`run:`, `install:`, `sharedLibrary:` ...).
//  1. Parsing (in Manifest/, never here: Actions does not depend on Manifest): Manifest/ActionRegistry maps that key
//     to an ActionFactory (Manifest/CoreActionParsers, Manifest/NativeActionParsers). The factory reads the key's YAML
//     value through a Manifest/ActionNode (typed getters that expand ${variables}, report unknown keys, and record
//     every problem with file, line and column instead of throwing; the shared value readers — absolute paths, modes,
//     hashes, durations, argument lists — are in Manifest/Values.cs) and returns an IDeployAction, or null when the node
//     was unusable. Factories never touch the machine. Register new kinds in ActionRegistry.CreateDefault().
//  2. Planning: Writes lists the absolute paths (as written in the manifest, before -Root) the action changes, for
//     race warnings and -WhatIf; Describe() is the one-line plan.
//  3. Execute: runs on a worker thread. Map every absolute path it writes with ActionContext.MapPath (the context's
//     DeploymentRoot: the -Root sandbox).
//     BEFORE each change, record what undoing it needs with ActionContext.RecordUndo (and/or BackupFile, which copies
//     the old bytes into the run folder and journals them, fsynced): the process may be killed right after. Failure:
//     throw (SafeDeployException preferred); cancellation: honour ActionContext.Cancellation.
//  4. Undo: given every UndoRecord the phase recorded (oldest first; possibly from a process that died mid-phase,
//     so the change may be half done or not done at all), put the machine back. Must be idempotent. The action may
//     be a fresh instance built from the journaled manifest text in another process.
//  Output for the operator goes to ActionContext.Log (kept per phase in the run's log folder, shown with -Verbose).
//  PowerShell (the `script` action) runs on the cmdlet's pipeline thread through ActionContext.RunScript.
// ---------------------------------------------------------------------------------------------------------------

/// <summary>One action of a deployment phase: plans, executes and undoes one kind of change.</summary>
internal interface IDeployAction
{
    /// <summary>The manifest key of this action ("run", "install", ...).</summary>
    string Kind { get; }

    /// <summary>Absolute paths (before -Root mapping) the action writes: for race warnings and -WhatIf.</summary>
    IReadOnlyList<string> Writes { get; }

    /// <summary>One line for the plan: what the action would change.</summary>
    string Describe();

    /// <summary>Makes the change; records undo data through the context before each step.</summary>
    Task ExecuteAsync(ActionContext context);

    /// <summary>Reverts the change from the undo records this phase wrote (oldest first). Idempotent.</summary>
    Task UndoAsync(ActionContext context, IReadOnlyList<UndoRecord> recorded);
}

/// <summary>An action that can show, without changing anything, what it would change (its diff for -WhatIf).</summary>
internal interface IPreviewAction
{
    /// <summary>The change as text (a diff, or a line saying nothing changes); null when it cannot be told in advance.</summary>
    string? Preview(DeploymentRoot root);
}

/// <summary>A copy of a file taken before a change: BackupPath is null when the file did not exist; LinkTarget is set when it was a symlink.</summary>
internal sealed record FileBackup(string Path, string? BackupPath, uint? Mode, string? LinkTarget = null);

/// <summary>What an action journaled before a step: a label, free-form string data, and the backups it made.</summary>
internal sealed record UndoRecord
{
    public required string Step { get; init; }
    public IReadOnlyDictionary<string, string?> Data { get; init; } = new Dictionary<string, string?>();
    public IReadOnlyList<FileBackup> Backups { get; init; } = Array.Empty<FileBackup>();
}
