using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Files;

namespace SafeDeploy.Engine.Actions;

/// <summary>One file to install: read from Source, written atomically to Target (an absolute path, placed under -Root).</summary>
public sealed record InstallItem(string Source, string Target, uint? Mode);

/// <summary>`install`: copies files into place atomically, backing up what was there; undo restores or removes them.</summary>
public sealed class InstallAction : IDeployAction
{
    public required IReadOnlyList<InstallItem> Items { get; init; }

    public string Kind => "install";
    public IReadOnlyList<string> Writes => Items.Select(i => i.Target).ToList();
    public string Describe() => Items.Count == 1
        ? $"install {Items[0].Source} -> {Items[0].Target}{ModeText(Items[0].Mode)}"
        : $"install {Items.Count} files: {string.Join(", ", Items.Take(3).Select(i => i.Target))}{(Items.Count > 3 ? ", ..." : "")}";

    static string ModeText(uint? mode) => mode is { } m ? $" (mode {Convert.ToString(m, 8).PadLeft(4, '0')})" : "";

    public static IDeployAction? Parse(ActionNode node)
    {
        var items = new List<InstallItem>();
        foreach (var n in node.IsSequence ? node.Items() : [node])
        {
            if (!n.IsMapping) { n.Error("Each 'install' entry needs 'source' and 'target'."); continue; }
            n.AllowOnly("source", "target", "mode");
            var source = n.String("source", required: true);
            var target = n.String("target", required: true);
            var modeText = n.String("mode");
            uint? mode = null;
            if (modeText is not null)
            {
                if (modeText.Length is >= 3 and <= 4 && modeText.All(c => c is >= '0' and <= '7')) mode = Convert.ToUInt32(modeText, 8);
                else n.ErrorAt("mode", $"'mode' must be an octal file mode such as 0644 or 0755, not '{modeText}'.");
            }
            if (target is not null && !Path.IsPathRooted(target)) { n.ErrorAt("target", $"'target' must be an absolute path, not '{target}'."); continue; }
            if (source is not null && target is not null) items.Add(new InstallItem(source, target, mode));
        }
        return items.Count > 0 ? new InstallAction { Items = items } : null;
    }

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
            AtomicFile.WriteAllBytes(target, bytes, new AtomicWriteOptions { Mode = item.Mode });
            context.Log.WriteLine($"installed {source} -> {target} ({bytes.Length} bytes)");
        }
        return Task.CompletedTask;
    }

    public Task UndoAsync(ActionContext context, IReadOnlyList<UndoRecord> recorded)
    {
        ActionContext.UndoFiles(recorded);
        return Task.CompletedTask;
    }
}
