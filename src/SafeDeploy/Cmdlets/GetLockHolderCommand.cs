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
    public string[] Name { get; set; } = Array.Empty<string>();

    [Parameter(Mandatory = true, ParameterSetName = InvokeWithLockCommand.ByPath, ValueFromPipelineByPropertyName = true)]
    [Alias("FullName", "LockPath")]
    [ValidateNotNullOrEmpty]
    public string[] Path { get; set; } = Array.Empty<string>();

    protected override void ProcessRecord()
    {
        var paths = ParameterSetName == InvokeWithLockCommand.ByPath
            ? Path.Select(ResolvePath)
            : Name.Select(n => StateDirectoryManager.Resolve(StateDirectoryManager.DefaultName).LockPath(n));
        foreach (var p in paths)
        {
            if (!File.Exists(p))
            {
                WriteError(ErrorMapper.ToRecord(Engine.Errors.ErrorCatalog.LockNotFound(p), p));
                continue;
            }
            TryEngine(() => WriteObject(LockInspector.Inspect(p)), p);
        }
    }
}
