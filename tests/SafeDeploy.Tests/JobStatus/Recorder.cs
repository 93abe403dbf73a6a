using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Tests.JobStatus;

/// <summary>Keeps the warnings an engine call reports.</summary>
sealed class Recorder : IOperationReporter
{
    public List<string> Warnings { get; } = new();
    public void Verbose(string message) { }
    public void Warning(string message) { lock (Warnings) Warnings.Add(message); }
    public void Progress(ProgressUpdate update) { }
}
