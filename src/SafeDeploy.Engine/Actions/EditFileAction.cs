using System.Collections;
using SafeDeploy.Engine.Files;

namespace SafeDeploy.Engine.Actions;

/// <summary>`editFile`: Edit-LockedFile as a phase (ensure a line, or merge JSON) under the file's lock; undo restores the previous bytes.</summary>
public sealed class EditFileAction : IDeployAction
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

    public static IDeployAction? Parse(ActionNode node)
    {
        if (!node.IsMapping) { node.Error("'editFile' needs 'path' and one of 'ensureLine' or 'mergeJson'."); return null; }
        node.AllowOnly("path", "ensureLine", "key", "mergeJson", "mode", "timeout");
        var path = node.String("path", required: true);
        var line = node.String("ensureLine");
        var key = node.String("key");
        var json = node.Has("mergeJson") ? node.PlainValue("mergeJson") as IDictionary : null;
        if (node.Has("mergeJson") && json is null) node.ErrorAt("mergeJson", "'mergeJson' must be a mapping of keys to values.");
        if (line is null && !node.Has("mergeJson")) node.Error("'editFile' needs 'ensureLine' or 'mergeJson'.", "MissingKey");
        if (line is not null && node.Has("mergeJson")) node.ErrorAt("mergeJson", "Give either 'ensureLine' or 'mergeJson', not both.");
        if (key is not null && line is null) node.ErrorAt("key", "'key' goes with 'ensureLine'.");
        var modeText = node.String("mode");
        uint mode = 0x1A4;
        if (modeText is not null)
        {
            if (modeText.Length is >= 3 and <= 4 && modeText.All(c => c is >= '0' and <= '7')) mode = Convert.ToUInt32(modeText, 8);
            else node.ErrorAt("mode", $"'mode' must be an octal file mode such as 0644, not '{modeText}'.");
        }
        var timeout = node.Duration("timeout");
        if (path is not null && !System.IO.Path.IsPathRooted(path)) { node.ErrorAt("path", $"'path' must be an absolute path, not '{path}'."); return null; }
        if (path is null || (line is null && json is null)) return null;
        return new EditFileAction { Path = path, EnsureLine = line, Key = key, MergeJson = json, NewFileMode = mode, LockTimeout = timeout };
    }

    public Task ExecuteAsync(ActionContext context)
    {
        var target = context.MapPath(Path);
        context.EnsureParentDirectory(target);
        // Taking the file's lock creates it: journal "did not exist" first, so a crash right then still removes it.
        if (!File.Exists(target)) context.Journal(new UndoRecord { Step = "backup", Backups = [new FileBackup(target, null, null)] });
        var result = LockedFileEditor.Edit(target, text =>
        {
            var next = EnsureLine is not null ? TextEdits.EnsureLine(text, EnsureLine, Key) : TextEdits.MergeJson(text, MergeJson!, target);
            if (next != text && text is not null) context.BackupFile(target); // under the file's lock, journaled before the write
            return next;
        }, new FileEditOptions { Timeout = LockTimeout, NewFileMode = NewFileMode, Reporter = context.Reporter }, context.Cancellation);
        context.Log.WriteLine(result.Changed ? $"edited {target}:\n{result.Diff}" : $"{target} already as asked");
        return Task.CompletedTask;
    }

    public Task UndoAsync(ActionContext context, IReadOnlyList<UndoRecord> recorded)
    {
        ActionContext.UndoFiles(recorded);
        return Task.CompletedTask;
    }
}
