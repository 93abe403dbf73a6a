using SafeDeploy.Engine.Files;
using SafeDeploy.Engine.Models;

namespace SafeDeploy.Engine.Actions;

/// <summary>
/// `model`: Get-ModelLocked as a phase — the model is fetched into the shared cache once across processes, verified;
/// with `target` a copy is installed (backed up and undone like `install`). The cache itself is not rolled back: it is
/// a cache, and another deployment may already use the entry.
/// </summary>
internal sealed class ModelAction : IDeployAction
{
    public required ModelRequest Request { get; init; }
    /// <summary>The cache directory (absolute: under -Root); null: SafeDeploy's default model cache.</summary>
    public string? CacheDirectory { get; init; }
    /// <summary>Where to install a copy of the verified file (absolute: under -Root).</summary>
    public string? Target { get; init; }
    public uint? Mode { get; init; }

    public string Kind => "model";
    public IReadOnlyList<string> Writes => Target is null ? Array.Empty<string>() : [Target];
    public string Describe() => $"model {Request.Uri}" + (Request.Sha256 is null ? "" : $" (sha256 {Request.Sha256[..12]}...)") +
                                (Target is null ? " into the model cache" : $" -> {Target}");

    public async Task ExecuteAsync(ActionContext context)
    {
        var request = Request;
        if (!request.Uri.Contains("://", StringComparison.Ordinal)) request = request with { Uri = context.ResolveSource(request.Uri) };
        var cache = CacheDirectory is null ? ModelCache.Default(context.Reporter) : new ModelCache(context.MapPath(CacheDirectory));
        var file = await new ModelFetcher(cache).GetAsync(request, context.Reporter, context.Cancellation).ConfigureAwait(false);
        context.Log.WriteLine($"model {file.Uri}: {file.Source}, {file.Length} bytes, sha256 {file.Sha256}, at {file.Path}");
        if (Target is null) return;
        var target = context.MapPath(Target);
        context.EnsureParentDirectory(target);
        context.BackupFile(target);
        await using (var source = new FileStream(file.Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite))
        using (var at = context.Root.Open(Target))
            RootedFiles.Replace(at, s => source.CopyTo(s), Mode, context.Temporary);
        context.Log.WriteLine($"installed {file.Path} -> {target}");
    }

    public Task UndoAsync(ActionContext context, IReadOnlyList<UndoRecord> recorded)
    {
        context.UndoFiles(recorded);
        return Task.CompletedTask;
    }
}
