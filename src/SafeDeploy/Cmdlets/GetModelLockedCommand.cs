using System.Collections;
using System.Management.Automation;
using SafeDeploy.Engine.Models;
using SafeDeploy.Internal;

namespace SafeDeploy.Cmdlets;

/// <summary>Fetches a model into the shared cache exactly once across processes, verified, resumable and crash-safe.</summary>
[Cmdlet(VerbsCommon.Get, "ModelLocked", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
[OutputType(typeof(ModelFile))]
public sealed class GetModelLockedCommand : SafeDeployCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("Url")]
    [ValidateNotNullOrEmpty]
    public string Uri { get; set; } = "";

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ValidatePattern("^[0-9A-Fa-f]{64}$")]
    public string? Sha256 { get; set; }

    [Parameter] [ValidateNotNullOrEmpty] public string? CacheDirectory { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)] [ValidateNotNullOrEmpty] public string? Name { get; set; }

    [Parameter] public Hashtable? Headers { get; set; }

    [Parameter] [ValidateRange(0, int.MaxValue)] public int? TimeoutSec { get; set; }

    [Parameter] [ValidateRange(0.0, 1e6)] public double? MaxSizeGB { get; set; }

    [Parameter] public SwitchParameter Force { get; set; }

    [Parameter] public SwitchParameter Verify { get; set; }

    /// <summary>Runs with the model held in use (a shared lock on its entry): nothing evicts it until the block ends.</summary>
    [Parameter] public ScriptBlock? Hold { get; set; }

    protected override void ProcessRecord()
    {
        // A relative path is the user's, resolved against the PowerShell location, not the process's.
        var uri = Uri.Contains("://", StringComparison.Ordinal) ? Uri : ResolvePath(Uri);
        var shown = ModelCache.DisplayUri(uri);
        var cacheDir = CacheDirectory is { } dir ? ResolvePath(dir) : null;
        var cache = cacheDir is not null ? new ModelCache(cacheDir) : ModelCache.Default(DirectReporter, create: false);
        if (!ShouldProcess(cache.Directory, $"Fetch '{shown}' into the model cache")) return;
        var request = new ModelRequest
        {
            Uri = uri,
            Sha256 = Sha256,
            Name = Name,
            Headers = (Headers ?? new Hashtable()).Cast<DictionaryEntry>()
                .ToDictionary(e => Unwrap(e.Key)?.ToString() ?? "", e => Unwrap(e.Value)?.ToString() ?? ""),
            LockTimeout = TimeoutSec is { } s ? TimeSpan.FromSeconds(s) : null,
            Force = Force,
            Verify = Verify,
        };
        ModelHold? hold = null;
        try
        {
            if (cacheDir is null) cache = ModelCache.Default(DirectReporter);
            var fetcher = new ModelFetcher(cache);
            ModelFile result;
            if (Hold is null) result = RunEngine((reporter, token) => fetcher.GetAsync(request, reporter, token).GetAwaiter().GetResult());
            else result = (hold = RunEngine((reporter, token) => fetcher.HoldAsync(request, reporter, token).GetAwaiter().GetResult())).File;
            if (MaxSizeGB is { } gb)
                cache.Evict((long)(gb * (1L << 30)), System.IO.Path.GetFileName(System.IO.Path.GetDirectoryName(result.Path)), e => ModelEvictionPrompt.Ask(this, e), DirectReporter);
            if (hold is null) WriteObject(result);
            else ScriptBlockRunner.Run(this, Hold!, [result]);
        }
        catch (Exception e) when (IsReportable(e)) { WriteError(ErrorMapper.ToRecord(e, shown)); }
        finally { hold?.Dispose(); }
    }
}
