using System.Management.Automation;
using SafeDeploy.Engine.Locking;
using SafeDeploy.Engine.StateDirectories;
using SafeDeploy.Internal;

namespace SafeDeploy.Cmdlets;

/// <summary>Proves, with a second real process, that flock excludes on a directory's filesystem, and names the filesystem.</summary>
[Cmdlet(VerbsDiagnostic.Test, "LockSupport")]
[OutputType(typeof(LockSupportReport))]
public sealed class TestLockSupportCommand : SafeDeployCmdlet
{
    [Parameter(Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string[]? Path { get; set; }

    /// <summary>The same directory through another mount (as another node sees it): exclusion is probed across it too.</summary>
    [Parameter] [ValidateNotNullOrEmpty] public string? OtherPath { get; set; }

    protected override void ProcessRecord()
    {
        var dirs = Path?.Select(ResolvePath) ?? new[] { StateDirectoryManager.Default(DirectReporter).LockDir };
        var other = OtherPath is { } o ? ResolvePath(o) : null;
        foreach (var dir in dirs)
            TryEngine(() =>
            {
                var report = LockSupportProbe.Run(dir, Cancellation, other);
                if (!report.ExclusionWorks || report.ReachesOtherNodes == false) WriteWarning(report.Detail);
                WriteObject(report);
            }, dir);
    }
}
