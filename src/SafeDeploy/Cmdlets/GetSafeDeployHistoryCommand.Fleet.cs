using System.Management.Automation;
using SafeDeploy.Engine.Fleet;
using SafeDeploy.Internal;

namespace SafeDeploy.Cmdlets;

/// <summary>Get-SafeDeployHistory -Rollout: the fleet rollouts this controller ran, each with its hosts' last state.</summary>
[OutputType(typeof(RolloutHistoryEntry))]
public sealed partial class GetSafeDeployHistoryCommand
{
    [Parameter] public SwitchParameter Rollout { get; set; }

    void ProcessRollouts() => TryEngine(() =>
    {
        var state = DeployRunner.State(StateDirectory is null ? null : ResolvePath(StateDirectory), DirectReporter);
        foreach (var r in RolloutJournal.History(state))
            if (Name is null || Name.Contains(r.Name, StringComparer.Ordinal)) WriteObject(r);
    }, StateDirectory ?? "history");
}
