using System.Management.Automation;
using SafeDeploy.Engine.StateDirectories;
using EngineScope = SafeDeploy.Engine.StateDirectories.StateScope;
using SafeDeploy.Internal;

namespace SafeDeploy.Cmdlets;

/// <summary>Creates a tool's state, log, cache and lock directories safely and says what it did.</summary>
[Cmdlet(VerbsData.Initialize, "StateDirectory", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
[OutputType(typeof(StateDirectory))]
public sealed class InitializeStateDirectoryCommand : SafeDeployCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string Name { get; set; } = "";

    [Parameter] public SafeDeploy.StateScope Scope { get; set; } = SafeDeploy.StateScope.User;

    [Parameter] [ValidateNotNullOrEmpty] public string? Path { get; set; }

    [Parameter] [ValidatePattern("^[0-7]{3,4}$")] public string Mode { get; set; } = "0700";

    [Parameter] [ValidateNotNullOrEmpty] public string? Owner { get; set; }

    [Parameter] public SwitchParameter Repair { get; set; }

    protected override void ProcessRecord()
    {
        TryEngine(() =>
        {
            var basePath = Path is null ? null : ResolvePath(Path);
            var layout = StateDirectoryManager.Resolve(Name, Scope.To<EngineScope>(), basePath);
            if (!ShouldProcess($"{layout.StateDir}, {layout.LogDir}, {layout.CacheDir}, {layout.LockDir}", "Create state directories")) return;
            (uint Uid, uint Gid)? owner = Owner is null ? null : ModeParser.ResolveOwner(Owner);
            WriteObject(StateDirectoryManager.Initialize(Name, Scope.To<EngineScope>(), basePath, ModeParser.Parse(Mode), Repair,
                owner?.Uid, owner?.Gid, DirectReporter));
        }, Name);
    }
}
