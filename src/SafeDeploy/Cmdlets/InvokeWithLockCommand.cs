using System.Collections.Concurrent;
using System.Management.Automation;
using SafeDeploy.Engine.Locking;
using SafeDeploy.Engine.Platform;
using SafeDeploy.Engine.StateDirectories;
using SafeDeploy.Internal;

namespace SafeDeploy.Cmdlets;

/// <summary>Runs a script block while holding a flock(2) lock, compatible with flock(1).</summary>
[Cmdlet(VerbsLifecycle.Invoke, "WithLock", DefaultParameterSetName = ByName, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
[OutputType(typeof(object))]
public sealed class InvokeWithLockCommand : SafeDeployCmdlet
{
    internal const string ByName = "ByName";
    internal const string ByPath = "ByPath";
    static readonly ConcurrentDictionary<string, bool> warnedFileSystems = new();

    [Parameter(Mandatory = true, Position = 0, ParameterSetName = ByName)] [ValidateNotNullOrEmpty] [ArgumentCompleter(typeof(LockNameCompleter))] public string Name { get; set; } = "";

    [Parameter(Mandatory = true, ParameterSetName = ByPath)] [ValidateNotNullOrEmpty] public string Path { get; set; } = "";

    [Parameter(Mandatory = true, Position = 1, ParameterSetName = ByName)]
    [Parameter(Mandatory = true, Position = 0, ParameterSetName = ByPath)]
    public ScriptBlock ScriptBlock { get; set; } = null!;

    [Parameter] [ValidateRange(0, int.MaxValue)] public int? TimeoutSec { get; set; }

    [Parameter] public SwitchParameter Shared { get; set; }

    [Parameter] public object[] ArgumentList { get; set; } = Array.Empty<object>();

    protected override void EndProcessing()
    {
        string lockPath;
        try
        {
            lockPath = ParameterSetName == ByPath
                ? ResolvePath(Path)
                : StateDirectoryManager.Resolve(StateDirectoryManager.DefaultName).LockPath(Name);
        }
        catch (Exception e) when (IsReportable(e)) { Fail(e, ParameterSetName == ByPath ? Path : Name); return; }
        // -WhatIf: neither the state directory nor the lock file is created, and the script block does not run.
        if (!ShouldProcess(lockPath, "Run the script block while holding the lock")) return;
        FileLock held;
        try
        {
            if (ParameterSetName == ByName) StateDirectoryManager.Default(DirectReporter);
            WarnIfNetworkFileSystem(lockPath);
            held = RunEngine((reporter, token) => FileLock.Acquire(lockPath, new LockOptions
            {
                Shared = Shared,
                Timeout = TimeoutSec is { } s ? TimeSpan.FromSeconds(s) : null,
                Reporter = reporter,
                Purpose = MyInvocation.ScriptName is { Length: > 0 } script ? script : "Invoke-WithLock",
            }, token));
        }
        catch (Exception e) when (IsReportable(e)) { Fail(e, lockPath); return; }
        using (held)
        {
            if (held.WaitTime > TimeSpan.Zero) WriteVerbose($"Acquired lock '{lockPath}' after {held.WaitTime.TotalSeconds:0.###} s.");
            else WriteVerbose($"Acquired lock '{lockPath}'.");
            ScriptBlockRunner.Run(this, ScriptBlock, ArgumentList);
        }
    }

    void WarnIfNetworkFileSystem(string lockPath)
    {
        var dir = System.IO.Path.GetDirectoryName(lockPath)!;
        if (!Directory.Exists(dir)) return;
        var fs = FileSystemKind.Of(dir);
        if (fs.IsNetwork && warnedFileSystems.TryAdd(dir, true))
            WriteWarning($"Lock file '{lockPath}' is on a {fs.Name} filesystem, where flock may be node-local or do nothing. Run Test-LockSupport -Path '{dir}' and prefer a local directory for locks.");
    }
}
