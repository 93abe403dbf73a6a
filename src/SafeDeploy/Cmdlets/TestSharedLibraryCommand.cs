using System.Management.Automation;
using SafeDeploy.Engine.SharedLibraries;
using SafeDeploy.Internal;

namespace SafeDeploy.Cmdlets;

/// <summary>
/// Checks that a library may go into ld.so.preload: our own ELF reader (class, machine, ET_DYN, exported symbols) and,
/// with -Canary, throw-away processes that load it under a timeout. An invalid library is an answer (IsValid false, with
/// Problems), not an error; only a path that does not exist (or cannot be read) is an error.
/// </summary>
[Cmdlet(VerbsDiagnostic.Test, "SharedLibrary")]
[OutputType(typeof(SharedLibraryReport))]
public sealed class TestSharedLibraryCommand : SafeDeployCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("FullName")]
    [ValidateNotNullOrEmpty]
    public string[] Path { get; set; } = Array.Empty<string>();

    [Parameter] [ValidateNotNullOrEmpty] public string[] Symbol { get; set; } = Array.Empty<string>();

    [Parameter] public SwitchParameter Canary { get; set; }

    [Parameter] [ValidateNotNullOrEmpty] public string[] Probe { get; set; } = Array.Empty<string>();

    [Parameter] [ValidateRange(1, 3600)] public int TimeoutSec { get; set; } = 10;

    protected override void ProcessRecord()
    {
        foreach (var raw in Path)
        {
            var path = ResolvePath(raw);
            TryEngine(() =>
            {
                var report = RunEngine((reporter, token) => SharedLibraryValidator.ValidateAsync(path, new SharedLibraryCheckOptions
                {
                    Symbols = Symbol, Canary = Canary || Probe.Length > 0, Probes = Probe, Timeout = TimeSpan.FromSeconds(TimeoutSec), Reporter = reporter,
                }, token).GetAwaiter().GetResult());
                foreach (var problem in report.Problems) WriteVerbose($"{path}: {problem}");
                WriteObject(report);
            }, path);
        }
    }
}
