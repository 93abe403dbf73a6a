using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Platform;
using SafeDeploy.Engine.Services;
using SafeDeploy.Engine.SharedLibraries;

namespace SafeDeploy.Engine.Actions;

/// <summary>Service and health messages into the phase log (and the operator's verbose/warning streams).</summary>
sealed class LogReporter(ActionContext context) : IOperationReporter
{
    public void Verbose(string message) { lock (context.Log) context.Log.WriteLine(message); }
    public void Warning(string message)
    {
        lock (context.Log) context.Log.WriteLine("warning: " + message);
        context.Reporter.Warning($"Phase '{context.PhaseName}': {message}");
    }
    public void Progress(ProgressUpdate update) => context.Reporter.Progress(update);
}
