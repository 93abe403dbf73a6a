using System.Management.Automation;
using SafeDeploy.Engine.Locking;
using SafeDeploy.Engine.StateDirectories;
using SafeDeploy.Internal;

namespace SafeDeploy.Cmdlets;

/// <summary>Says who holds a lock, from the kernel's lock table (never by taking the lock).</summary>
[Cmdlet(VerbsCommon.Get, "LockHolder", DefaultParameterSetName = InvokeWithLockCommand.ByName)]
[OutputType(typeof(LockHolder))]
public sealed class GetLockHolderCommand : SafeDeployCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ParameterSetName = InvokeWithLockCommand.ByName, ValueFromPipeline = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(LockNameCompleter))]
    public string[] Name { get; set; } = Array.Empty<string>();

    [Parameter(Mandatory = true, ParameterSetName = InvokeWithLockCommand.ByPath, ValueFromPipelineByPropertyName = true)]
    [Alias("FullName", "LockPath")]
    [ValidateNotNullOrEmpty]
    public string[] Path { get; set; } = Array.Empty<string>();

    protected override void ProcessRecord()
    {
        var inputs = ParameterSetName == InvokeWithLockCommand.ByPath ? Path : Name;
        foreach (var input in inputs)
        {
            // Each input on its own: a bad name or a missing lock is a non-terminating error, the next input still runs.
            TryEngine(() =>
            {
                var p = ParameterSetName == InvokeWithLockCommand.ByPath
                    ? ResolvePath(input)
                    : StateDirectoryManager.Resolve(StateDirectoryManager.DefaultName).LockPath(input);
                WriteObject(LockInspector.InspectExisting(p));
            }, input);
        }
    }
}
