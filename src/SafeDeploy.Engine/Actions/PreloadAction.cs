using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Platform;
using SafeDeploy.Engine.Services;
using SafeDeploy.Engine.SharedLibraries;

namespace SafeDeploy.Engine.Actions;

/// <summary>`preload`: the library's line in an ld.so.preload file under a lock; undo restores the previous file (or removes it).</summary>
internal sealed class PreloadAction : IDeployAction
{
    public required string Library { get; init; }
    public string File { get; init; } = PreloadFile.SystemPath;
    public bool Present { get; init; } = true;
    public TimeSpan? LockTimeout { get; init; }

    public string Kind => "preload";
    public IReadOnlyList<string> Writes => [File];
    public string Describe() => Present ? $"preload {Library} (line in {File})" : $"remove {Library} from {File}";

    public Task ExecuteAsync(ActionContext context)
    {
        var target = context.MapPath(File);
        context.EnsureParentDirectory(target);
        // The library and the preload file are both resolved inside the -Root jail (null: the real machine's trusted walk).
        using var at = context.Root.Open(File);
        using var jail = context.Root.Path is null ? null : Platform.SafeDirectory.OpenRoot(context.Root.Path);
        var options = new Files.FileEditOptions { Timeout = LockTimeout, Reporter = context.Reporter };
        if (Present)
        {
            PreloadFile.CheckLibrary(jail, Library); // refuse before the lock file (the preload file itself) is created
            // Taking the file's lock creates it: journal "did not exist" first, so a crash right then still removes it.
            if (at.Stat() is null) context.Journal(new UndoRecord { Step = "backup", Backups = [new FileBackup(target, null, null)] });
            var r = PreloadFile.Ensure(jail, Library, File, options, context.Cancellation, before => { if (before is not null) context.BackupFile(target); });
            context.Log.WriteLine(r.Changed ? $"{target}:\n{r.Diff}" : $"{target} already preloads {Library}");
        }
        else
        {
            var r = PreloadFile.Remove(jail, Library, File, options, context.Cancellation, before => { if (before is not null) context.BackupFile(target); });
            context.Log.WriteLine(r.Changed ? $"{target}:\n{r.Diff}" : $"{target} does not preload {Library}");
        }
        return Task.CompletedTask;
    }

    public Task UndoAsync(ActionContext context, IReadOnlyList<UndoRecord> recorded)
    {
        context.UndoFiles(recorded);
        return Task.CompletedTask;
    }
}
