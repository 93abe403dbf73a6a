using SafeDeploy.Engine.Errors;

namespace SafeDeploy.Engine.Actions;

/// <summary>One file to install: read from Source, written atomically to Target (an absolute path, placed under -Root).</summary>
internal sealed record InstallItem(string Source, string Target, uint? Mode);

/// <summary>`install`: copies files into place atomically, backing up what was there; undo restores or removes them.</summary>
internal sealed class InstallAction : IDeployAction
{
    public required IReadOnlyList<InstallItem> Items { get; init; }

    public string Kind => "install";
    public IReadOnlyList<string> Writes => Items.Select(i => i.Target).ToList();
    public string Describe() => Items.Count == 1
        ? $"install {Items[0].Source} -> {Items[0].Target}{ModeText(Items[0].Mode)}"
        : $"install {Items.Count} files: {string.Join(", ", Items.Take(3).Select(i => i.Target))}{(Items.Count > 3 ? ", ..." : "")}";

    static string ModeText(uint? mode) => mode is { } m ? $" (mode {Convert.ToString(m, 8).PadLeft(4, '0')})" : "";

    public Task ExecuteAsync(ActionContext context)
    {
        foreach (var item in Items)
        {
            context.Cancellation.ThrowIfCancellationRequested();
            var source = context.ResolveSource(item.Source);
            if (!File.Exists(source))
                throw new SafeDeployException("InstallSourceNotFound", ErrorKind.ObjectNotFound, source,
                    $"Phase '{context.PhaseName}': the file to install, '{source}', does not exist.",
                    "Build or fetch it in an earlier phase (dependsOn), or fix 'source'.");
            var target = context.MapPath(item.Target);
            var bytes = File.ReadAllBytes(source);
            context.EnsureParentDirectory(target);
            context.BackupFile(target);
            using (var at = context.Root.Open(item.Target)) RootedFiles.Replace(at, bytes, item.Mode, context.Temporary);
            context.Log.WriteLine($"installed {source} -> {target} ({bytes.Length} bytes)");
        }
        return Task.CompletedTask;
    }

    public Task UndoAsync(ActionContext context, IReadOnlyList<UndoRecord> recorded)
    {
        context.UndoFiles(recorded);
        return Task.CompletedTask;
    }
}
