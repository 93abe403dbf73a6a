using System.Collections;
using System.Management.Automation;
using SafeDeploy.Engine.Manifest;
using SafeDeploy.Internal;

namespace SafeDeploy.Cmdlets;

/// <summary>Lists every problem of a manifest (errors with line and column, and race warnings) without running anything.</summary>
[Cmdlet(VerbsDiagnostic.Test, "SafeDeployManifest")]
[OutputType(typeof(ManifestProblem))]
public sealed class TestSafeDeployManifestCommand : SafeDeployCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Manifest", "FullName")]
    [ValidateNotNullOrEmpty]
    public string[] Path { get; set; } = Array.Empty<string>();

    [Parameter] public Hashtable? Variables { get; set; }

    [Parameter] [ValidateNotNullOrEmpty] public string? Root { get; set; }

    protected override void ProcessRecord()
    {
        foreach (var raw in Path)
        {
            var path = ResolvePath(raw);
            TryEngine(() =>
            {
                var result = new ManifestParser().ParseFile(path, DeployRunner.Variables(Variables), Engine.Actions.DeploymentRoot.From(Root is null ? null : ResolvePath(Root)));
                foreach (var p in result.Problems) WriteObject(p);
                WriteVerbose(result.IsValid ? $"'{path}' is a valid manifest ({result.Manifest!.Phases.Count} phases)." : $"'{path}' has {result.Errors.Count()} error(s).");
            }, path);
        }
    }
}
