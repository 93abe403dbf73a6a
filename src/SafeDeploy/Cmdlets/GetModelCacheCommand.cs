using System.Management.Automation;
using SafeDeploy.Engine.Models;
using SafeDeploy.Internal;

namespace SafeDeploy.Cmdlets;

/// <summary>Lists the entries of the model cache.</summary>
[Cmdlet(VerbsCommon.Get, "ModelCache")]
[OutputType(typeof(ModelCacheEntry))]
public sealed class GetModelCacheCommand : SafeDeployCmdlet
{
    [Parameter(Position = 0)] [ValidateNotNullOrEmpty] public string? CacheDirectory { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)] [ValidateNotNullOrEmpty] public string[]? Uri { get; set; }

    protected override void ProcessRecord()
    {
        var dir = CacheDirectory is { } d ? ResolvePath(d) : null;
        TryEngine(() =>
        {
            var cache = dir is not null ? new ModelCache(dir) : ModelCache.Default(DirectReporter);
            if (Uri is null) { foreach (var e in cache.List()) WriteObject(e); return; }
            foreach (var u in Uri)
            {
                var uri = u.Contains("://", StringComparison.Ordinal) ? u : ResolvePath(u);
                if (cache.Find(uri) is { } entry) WriteObject(entry);
                else WriteError(ErrorMapper.ToRecord(Engine.Errors.ErrorCatalog.ModelNotCached(u, ModelCache.DisplayUri(u), cache.Directory), u));
            }
        }, dir ?? "model cache");
    }
}
