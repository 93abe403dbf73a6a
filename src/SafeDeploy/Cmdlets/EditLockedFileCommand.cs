using System.Collections;
using System.Management.Automation;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Files;
using SafeDeploy.Internal;

namespace SafeDeploy.Cmdlets;

/// <summary>Read-modify-write of a file under a lock, replaced atomically, so concurrent editors never lose changes.</summary>
[Cmdlet(VerbsData.Edit, "LockedFile", DefaultParameterSetName = EnsureLineSet, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(FileEditResult))]
public sealed class EditLockedFileCommand : SafeDeployCmdlet
{
    const string EnsureLineSet = "EnsureLine";
    const string MergeJsonSet = "MergeJson";
    const string TransformSet = "Transform";

    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("FullName")]
    [ValidateNotNullOrEmpty]
    public string[] Path { get; set; } = Array.Empty<string>();

    [Parameter(Mandatory = true, ParameterSetName = EnsureLineSet)] [AllowEmptyString] public string EnsureLine { get; set; } = "";

    [Parameter(ParameterSetName = EnsureLineSet)] [ValidateNotNullOrEmpty] public string? Key { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = MergeJsonSet)] public Hashtable MergeJson { get; set; } = new();

    [Parameter(Mandatory = true, ParameterSetName = TransformSet)] public ScriptBlock Transform { get; set; } = null!;

    [Parameter] [ValidateRange(0, int.MaxValue)] public int? TimeoutSec { get; set; }

    [Parameter] public SwitchParameter PassThru { get; set; }

    /// <summary>Mode of a file the edit creates (an existing file keeps its mode).</summary>
    [Parameter] [ValidatePattern("^[0-7]{3,4}$")] public string Mode { get; set; } = "0644";

    /// <summary>Owner (user name or uid) of a file the edit creates (an existing file keeps its owner).</summary>
    [Parameter] [ValidateNotNullOrEmpty] public string? Owner { get; set; }

    protected override void ProcessRecord()
    {
        foreach (var raw in Path)
        {
            var path = ResolvePath(raw);
            TryEngine(() =>
            {
                var preview = LockedFileEditor.Edit(path, Apply(path), new FileEditOptions { WhatIf = true }, Cancellation);
                if (!preview.Changed && !preview.Leftovers) { WriteVerbose($"'{path}' is already as asked; nothing written."); if (PassThru) WriteObject(preview); return; }
                // Already as asked, but an earlier edit left its temporary file or lock (a crash, a full disk): the edit removes them.
                if (!ShouldProcess(path, preview.Changed ? $"Edit file ({(preview.Created ? "create" : "replace")}):\n{preview.Diff}"
                        : "Remove the temporary files an earlier edit of this file left")) return;
                // Runs on the pipeline thread: a -Transform script block must run where its runspace is.
                var result = LockedFileEditor.Edit(path, Apply(path), new FileEditOptions
                {
                    Timeout = TimeoutSec is { } s ? TimeSpan.FromSeconds(s) : null, Reporter = DirectReporter,
                    NewFileMode = ModeParser.Parse(Mode), NewFileOwner = Owner is null ? null : ModeParser.ResolveOwner(Owner),
                }, Cancellation);
                WriteVerbose(result.Changed ? $"Edited '{path}':\n{result.Diff}" : $"'{path}' was already as asked.");
                if (PassThru) WriteObject(result);
            }, path);
        }
    }

    Func<string?, string> Apply(string path) => ParameterSetName switch
    {
        EnsureLineSet => text => TextEdits.EnsureLine(text, EnsureLine, Key),
        MergeJsonSet => text => TextEdits.MergeJson(text, (IDictionary)Unwrap(MergeJson)!, path),
        _ => text => RunTransform(text, path),
    };

    string RunTransform(string? text, string path)
    {
        var output = Transform.Invoke(text ?? "");
        if (output.Count == 0 || output.All(o => o is null))
            throw ErrorCatalog.TransformReturnedNothing(path);
        return output.Count == 1 ? output[0]?.BaseObject?.ToString() ?? "" : string.Join("\n", output.Select(o => o?.BaseObject?.ToString())) + "\n";
    }
}
