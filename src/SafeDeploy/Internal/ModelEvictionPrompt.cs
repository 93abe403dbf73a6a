using System.Management.Automation;
using SafeDeploy.Engine.Models;

namespace SafeDeploy.Internal;

/// <summary>ShouldProcess for one proposed eviction, shared by Get-ModelLocked -MaxSizeGB and Remove-ModelCache -MaxSizeGB.</summary>
static class ModelEvictionPrompt
{
    /// <summary>Remove, Keep (declined) or WhatIf (shown, counted as gone so the listing stops where the real run would).</summary>
    public static EvictAnswer Ask(Cmdlet cmdlet, ModelCacheEntry e)
    {
        var what = $"model cache entry '{e.Path}' of '{e.Uri}' ({e.Length + e.PartialLength} bytes)";
        return cmdlet.ShouldProcess($"Evicting {what}.", $"Evict {what}?", "Evict", out var reason)
            ? EvictAnswer.Remove
            : reason == ShouldProcessReason.WhatIf ? EvictAnswer.WhatIf : EvictAnswer.Keep;
    }
}
