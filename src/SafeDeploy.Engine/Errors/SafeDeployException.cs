namespace SafeDeploy.Engine.Errors;

/// <summary>The kinds of failure the engine reports; names match PowerShell's ErrorCategory so the cmdlets map them one to one.</summary>
public enum ErrorKind
{
    NotSpecified, InvalidArgument, InvalidData, InvalidOperation, ObjectNotFound, PermissionDenied,
    ResourceBusy, ResourceUnavailable, OperationTimeout, ConnectionError, SecurityError, WriteError,
    ReadError, OperationStopped, ResourceExists, NotInstalled, InvalidResult,
}

/// <summary>A failure the engine understands: a stable error id, a kind, the offending target and the way out.</summary>
public class SafeDeployException : Exception
{
    public SafeDeployException(string errorId, ErrorKind kind, object target, string message,
        string? recommendedAction = null, Exception? inner = null) : base(message, inner)
    {
        ErrorId = errorId;
        Kind = kind;
        Target = target;
        RecommendedAction = recommendedAction;
    }

    /// <summary>Stable identifier, part of the public contract (e.g. LockTimeout, ChecksumMismatch).</summary>
    public string ErrorId { get; }
    public ErrorKind Kind { get; }
    /// <summary>The input the failure is about; never null.</summary>
    public object Target { get; }
    public string? RecommendedAction { get; }
}
