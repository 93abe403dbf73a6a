using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Platform;
using SafeDeploy.Engine.Services;
using SafeDeploy.Engine.SharedLibraries;

namespace SafeDeploy.Engine.Actions;

/// <summary>`preload`: the library's line in an ld.so.preload file under a lock; undo restores the previous file (or removes it).</summary>
public sealed class PreloadAction : IDeployAction
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
        var onDisk = context.MapPath(Library);
        context.EnsureParentDirectory(target);
        // The preload file is edited through its directory opened inside the root (its /proc/self/fd path).
        using var at = context.Root.Open(File);
        var options = new Files.FileEditOptions { Timeout = LockTimeout, Reporter = context.Reporter };
        if (Present)
        {
            PreloadFile.CheckLibrary(Library, onDisk); // refuse before the lock file (the preload file itself) is created
            // Taking the file's lock creates it: journal "did not exist" first, so a crash right then still removes it.
            if (at.Stat() is null) context.Journal(new UndoRecord { Step = "backup", Backups = [new FileBackup(target, null, null)] });
            var r = PreloadFile.Ensure(at.Pinned, Library, onDisk, options, context.Cancellation, before => { if (before is not null) context.BackupFile(target); });
            context.Log.WriteLine(r.Changed ? $"{target}:\n{r.Diff}" : $"{target} already preloads {Library}");
        }
        else
        {
            var r = PreloadFile.Remove(at.Pinned, Library, options, context.Cancellation, before => { if (before is not null) context.BackupFile(target); });
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
