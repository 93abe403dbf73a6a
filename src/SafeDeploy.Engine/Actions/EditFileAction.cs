using System.Collections;
using SafeDeploy.Engine.Files;

namespace SafeDeploy.Engine.Actions;

/// <summary>
/// `editFile`: Edit-LockedFile as a phase (ensure a line, or merge JSON) under the file's lock; undo restores the
/// previous bytes. The diff goes to the phase log and -WhatIf; for a file that is not world-readable only the numbers
/// of the changed lines are shown, never their text.
/// </summary>
internal sealed class EditFileAction : IDeployAction, IPreviewAction
{
    public required string Path { get; init; }
    public string? EnsureLine { get; init; }
    public string? Key { get; init; }
    public IDictionary? MergeJson { get; init; }
    public uint NewFileMode { get; init; } = 0x1A4;
    public TimeSpan? LockTimeout { get; init; }

    public string Kind => "editFile";
    public IReadOnlyList<string> Writes => [Path];
    public string Describe() => EnsureLine is not null
        ? $"edit {Path}: ensure line '{EnsureLine}'" + (Key is null ? "" : $" (key '{Key}')")
        : $"edit {Path}: merge JSON keys {string.Join(", ", MergeJson!.Keys.Cast<object>())}";

    string? Apply(string? text, string target) => EnsureLine is not null ? TextEdits.EnsureLine(text, EnsureLine, Key) : TextEdits.MergeJson(text, MergeJson!, target);

    /// <summary>The diff, with the content hidden unless the file (as it is, or as it will be created) is world-readable.</summary>
    string Diff(RootedPath at, string target, string? before, string after)
    {
        uint mode = at.Stat() is { IsRegularFile: true } st ? st.Permissions : NewFileMode;
        bool hide = (mode & 0x4) == 0;
        return TextDiff.Lines(before ?? "", after, hideContent: hide) + (hide ? $"(content hidden: '{target}' is not world-readable)" : "");
    }

    public string? Preview(DeploymentRoot root)
    {
        var target = root.Map(Path);
        try
        {
            using var at = root.Open(Path);
            var bytes = RootedFiles.Read(at);
            var before = bytes is null ? null : System.Text.Encoding.UTF8.GetString(bytes);
            var after = Apply(before, target);
            return after == before ? $"{target} already as asked" : $"diff {target}{(before is null ? " (new file)" : "")}:\n" + Diff(at, target, before, after!).TrimEnd('\n');
        }
        catch (Exception e) when (e is Errors.SafeDeployException or IOException or UnauthorizedAccessException)
        {
            return $"{target}: cannot preview ({e.Message})";
        }
    }

    public Task ExecuteAsync(ActionContext context)
    {
        var target = context.MapPath(Path);
        context.EnsureParentDirectory(target);
        // The edit, its lock and its replacement go through the directory opened inside the root, by name: no ancestor is resolved again.
        // Its temporary file and a new file's creation lock are journaled (real paths under the root) before they exist.
        using var at = context.Root.Open(Path);
        // Taking the file's lock creates it: journal "did not exist" first, so a crash right then still removes it.
        if (at.Stat() is null) context.Journal(new UndoRecord { Step = "backup", Backups = [new FileBackup(target, null, null)] });
        string diff = "";
        var result = LockedFileEditor.Edit(at.Directory, at.Name, target, text =>
        {
            var next = Apply(text, target);
            if (next != text && text is not null) context.BackupFile(target); // under the file's lock, journaled before the write
            if (next is not null && next != text) diff = Diff(at, target, text, next);
            return next;
        }, new FileEditOptions { Timeout = LockTimeout, NewFileMode = NewFileMode, Reporter = context.Reporter, Temporary = context.Temporary }, context.Cancellation);
        context.Log.WriteLine(result.Changed ? $"edited {target}:\n{diff.TrimEnd('\n')}" : $"{target} already as asked");
        return Task.CompletedTask;
    }

    public Task UndoAsync(ActionContext context, IReadOnlyList<UndoRecord> recorded)
    {
        context.UndoFiles(recorded);
        return Task.CompletedTask;
    }
}
