using SafeDeploy.Engine.Files;
using SafeDeploy.Engine.Models;

namespace SafeDeploy.Engine.Actions;

/// <summary>
/// `model`: Get-ModelLocked as a phase — the model is fetched into the shared cache once across processes, verified;
/// with `target` a copy is installed (backed up and undone like `install`). The cache itself is not rolled back: it is
/// a cache, and another deployment may already use the entry.
/// </summary>
public sealed class ModelAction : IDeployAction
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

    public static IDeployAction? Parse(ActionNode node)
    {
        if (node.IsScalar) return node.Scalar() is { Length: > 0 } u ? new ModelAction { Request = new ModelRequest { Uri = u } } : null;
        node.AllowOnly("uri", "sha256", "name", "headers", "cacheDirectory", "target", "mode", "timeout", "verify");
        var uri = node.String("uri", required: true);
        var sha = node.String("sha256");
        if (sha is not null && (sha.Length != 64 || !sha.All(Uri.IsHexDigit))) node.ErrorAt("sha256", $"'sha256' must be 64 hex digits, not '{sha}'.");
        var cache = node.String("cacheDirectory");
        var target = node.String("target");
        if (target is not null && !Path.IsPathRooted(target)) node.ErrorAt("target", $"'target' must be an absolute path, not '{target}'.");
        if (cache is not null && !Path.IsPathRooted(cache)) node.ErrorAt("cacheDirectory", $"'cacheDirectory' must be an absolute path, not '{cache}'.");
        var modeText = node.String("mode");
        uint? mode = null;
        if (modeText is not null)
        {
            if (modeText.Length is >= 3 and <= 4 && modeText.All(c => c is >= '0' and <= '7')) mode = Convert.ToUInt32(modeText, 8);
            else node.ErrorAt("mode", $"'mode' must be an octal file mode such as 0644, not '{modeText}'.");
        }
        var headers = node.Map("headers");
        var timeout = node.Duration("timeout");
        var verify = node.Bool("verify");
        if (uri is null) return null;
        return new ModelAction
        {
            Request = new ModelRequest
            {
                Uri = uri, Sha256 = sha, Name = node.String("name"), Headers = headers ?? new Dictionary<string, string>(),
                LockTimeout = timeout, Verify = verify ?? false,
            },
            CacheDirectory = cache, Target = target, Mode = mode,
        };
    }

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
        using (var pending = AtomicFile.Begin(target, new AtomicWriteOptions { Mode = Mode }))
        {
            await using (var source = new FileStream(file.Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite))
                await source.CopyToAsync(pending.Stream, context.Cancellation).ConfigureAwait(false);
            pending.Commit();
        }
        context.Log.WriteLine($"installed {file.Path} -> {target}");
    }

    public Task UndoAsync(ActionContext context, IReadOnlyList<UndoRecord> recorded)
    {
        ActionContext.UndoFiles(recorded);
        return Task.CompletedTask;
    }
}
