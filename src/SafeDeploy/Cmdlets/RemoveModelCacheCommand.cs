using System.Management.Automation;
using SafeDeploy.Engine.Models;
using SafeDeploy.Internal;

namespace SafeDeploy.Cmdlets;

/// <summary>Removes model cache entries by URI, or evicts least-recently-used ones until the cache fits a size.</summary>
[Cmdlet(VerbsCommon.Remove, "ModelCache", DefaultParameterSetName = ByUri, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(ModelCacheEntry))]
public sealed class RemoveModelCacheCommand : SafeDeployCmdlet
{
    const string ByUri = "ByUri";
    const string BySize = "BySize";

    [Parameter(Mandatory = true, Position = 0, ParameterSetName = ByUri, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string[] Uri { get; set; } = Array.Empty<string>();

    [Parameter(Mandatory = true, ParameterSetName = BySize)] [ValidateRange(0.0, 1e6)] public double MaxSizeGB { get; set; }

    [Parameter] [ValidateNotNullOrEmpty] public string? CacheDirectory { get; set; }

    [Parameter] public SwitchParameter PassThru { get; set; }

    ModelCache? cache;

    protected override void BeginProcessing()
    {
        var dir = CacheDirectory is { } d ? ResolvePath(d) : null;
        // Removal creates nothing (-WhatIf above all): a cache that does not exist yet is empty.
        try { cache = dir is not null ? new ModelCache(dir) : ModelCache.Default(DirectReporter, create: false); }
        catch (Exception e) when (IsReportable(e)) { Fail(e, dir ?? "model cache"); }
    }

    protected override void ProcessRecord()
    {
        if (ParameterSetName == BySize)
        {
            TryEngine(() =>
            {
                var shownOnly = new HashSet<ModelCacheEntry>();
                var removed = cache!.Evict((long)(MaxSizeGB * (1L << 30)), null, e =>
                {
                    var answer = ModelEvictionPrompt.Ask(this, e);
                    if (answer == EvictAnswer.WhatIf) shownOnly.Add(e);
                    return answer;
                }, DirectReporter);
                if (PassThru) foreach (var e in removed.Where(e => !shownOnly.Contains(e))) WriteObject(e);
            }, cache!.Directory);
            return;
        }
        foreach (var raw in Uri)
        {
            var uri = raw.Contains("://", StringComparison.Ordinal) ? raw : ResolvePath(raw);
            TryEngine(() =>
            {
                var entry = cache!.Find(uri);
                if (entry is not null && !ShouldProcess(entry.Path, $"Remove model cache entry of '{ModelCache.DisplayUri(entry.Uri)}'")) return;
                var removed = cache.Remove(uri, DirectReporter);
                if (PassThru) WriteObject(removed);
            }, ModelCache.DisplayUri(raw));
        }
    }
}
