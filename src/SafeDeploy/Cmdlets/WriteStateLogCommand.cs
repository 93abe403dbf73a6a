using System.Management.Automation;
using SafeDeploy.Engine.StateDirectories;
using EngineScope = SafeDeploy.Engine.StateDirectories.StateScope;
using EngineLevel = SafeDeploy.Engine.StateDirectories.LogLevel;
using SafeDeploy.Internal;

namespace SafeDeploy.Cmdlets;

/// <summary>Appends one line to a tool's log: atomic across processes, and never failing for want of a directory.</summary>
[Cmdlet(VerbsCommunications.Write, "StateLog", DefaultParameterSetName = ByName, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
[OutputType(typeof(string))]
public sealed class WriteStateLogCommand : SafeDeployCmdlet
{
    const string ByName = "ByName";
    const string ByFile = "ByFile";

    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true)]
    [AllowEmptyString]
    public string Message { get; set; } = "";

    [Parameter] public SafeDeploy.LogLevel Level { get; set; } = SafeDeploy.LogLevel.Info;

    [Parameter(ParameterSetName = ByName)] [ValidateNotNullOrEmpty] public string Name { get; set; } = StateDirectoryManager.DefaultName;

    [Parameter(ParameterSetName = ByName)] public SafeDeploy.StateScope Scope { get; set; } = SafeDeploy.StateScope.User;

    [Parameter(ParameterSetName = ByName)] [ValidateNotNullOrEmpty] public string? Path { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = ByFile, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string LogFile { get; set; } = "";

    [Parameter] public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord()
    {
        TryEngine(() =>
        {
            var file = ParameterSetName == ByFile
                ? ResolvePath(LogFile)
                : StateDirectoryManager.Resolve(Name, Scope.To<EngineScope>(), Path is null ? null : ResolvePath(Path)).LogFile;
            if (!ShouldProcess(file, $"Append a {Level} line to the log")) return;
            var line = StateLog.Append(file, Message, Level.To<EngineLevel>());
            if (PassThru) WriteObject(line);
        }, Message);
    }
}
