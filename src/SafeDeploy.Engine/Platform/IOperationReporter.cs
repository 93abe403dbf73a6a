namespace SafeDeploy.Engine.Platform;

/// <summary>A progress update for one activity; ParentId links a child bar to its parent.</summary>
internal sealed record ProgressUpdate(int ActivityId, string Activity, string Status, int PercentComplete = -1,
    int ParentId = -1, bool Completed = false, string? CurrentOperation = null, int SecondsRemaining = -1);

/// <summary>How engine code talks to whoever runs it (a cmdlet adapts it to Verbose, Warning and Progress). Thread-safe.</summary>
internal interface IOperationReporter
{
    void Verbose(string message);
    void Warning(string message);
    void Progress(ProgressUpdate update);
}

/// <summary>A reporter that drops everything, for callers with no one to tell.</summary>
internal sealed class NullReporter : IOperationReporter
{
    public static readonly NullReporter Instance = new();
    public void Verbose(string message) { }
    public void Warning(string message) { }
    public void Progress(ProgressUpdate update) { }
}
