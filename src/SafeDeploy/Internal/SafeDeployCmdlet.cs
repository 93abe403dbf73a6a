using System.Collections;
using System.Management.Automation;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Internal;

/// <summary>
/// What every SafeDeploy cmdlet shares: a cancellation token that Ctrl+C (StopProcessing) cancels, engine progress and
/// messages written from the pipeline thread only, and one mapping of engine failures to ErrorRecords.
/// </summary>
public abstract class SafeDeployCmdlet : PSCmdlet
{
    readonly CancellationTokenSource stop = new();

    protected CancellationToken Cancellation => stop.Token;

    protected override void StopProcessing() => stop.Cancel();

    /// <summary>Resolves a user path (relative, ~, PS drive) to a file-system path.</summary>
    protected string ResolvePath(string path) => GetUnresolvedProviderPathFromPSPath(path);

    /// <summary>A reporter for engine work that runs on the pipeline thread itself.</summary>
    private protected IOperationReporter DirectReporter => new PipelineReporter(this);

    /// <summary>
    /// What a command across hosts stages there: this module (its folder and version), the safedeploy host for hosts
    /// without pwsh (-HostExecutable, else the packaged one file), remoting sessions over SSH, and the sums cache of
    /// <paramref name="state"/>.
    /// </summary>
    private protected Engine.Fleet.FleetRuntime FleetRuntime(string? hostExecutable, Engine.StateDirectories.StateDirectory state)
    {
        var module = MyInvocation.MyCommand.Module
            ?? throw new PSInvalidOperationException($"{MyInvocation.MyCommand.Name} across hosts runs from the imported SafeDeploy module.");
        return new Engine.Fleet.FleetRuntime
        {
            ModuleDirectory = module.ModuleBase, ModuleVersion = module.Version.ToString(),
            HostExecutable = hostExecutable is null ? Engine.Fleet.FleetSelection.DefaultHostExecutable() : ResolvePath(hostExecutable),
            Sessions = SshSessions.Invoker, SumsCache = Path.Combine(state.CacheDir, "fleet-sums.tsv"),
        };
    }

    /// <summary>
    /// Runs engine work on a worker thread while this (pipeline) thread writes its progress, verbose and warning
    /// messages; returns its result or rethrows its failure. Cancellation becomes PipelineStoppedException.
    /// </summary>
    private protected T RunEngine<T>(Func<IOperationReporter, CancellationToken, T> work)
    {
        try { return PipelineWorker.Run(post => work(new QueuedReporter(this, post), Cancellation), write => write()); }
        catch (OperationCanceledException) when (Cancellation.IsCancellationRequested) { throw new PipelineStoppedException(); }
    }

    /// <summary>Like <see cref="RunEngine{T}(Func{IOperationReporter, CancellationToken, T})"/>; the work's <c>emit</c> writes an output object as it comes.</summary>
    private protected T RunEngine<T>(Func<IOperationReporter, Action<object>, CancellationToken, T> work)
    {
        try { return PipelineWorker.Run(post => work(new QueuedReporter(this, post), o => post(() => WriteObject(o)), Cancellation), write => write()); }
        catch (OperationCanceledException) when (Cancellation.IsCancellationRequested) { throw new PipelineStoppedException(); }
    }

    /// <summary>Runs <paramref name="action"/>, turning an engine failure into a non-terminating error; returns false on failure.</summary>
    protected bool TryEngine(Action action, object target)
    {
        try { action(); return true; }
        catch (OperationCanceledException) when (Cancellation.IsCancellationRequested) { throw new PipelineStoppedException(); }
        catch (Exception e) when (IsReportable(e)) { WriteError(ErrorMapper.ToRecord(e, target)); return false; }
    }

    /// <summary>Stops the command with the mapped error record.</summary>
    protected void Fail(Exception e, object target) => ThrowTerminatingError(ErrorMapper.ToRecord(e, target));

    /// <summary>
    /// Like <see cref="Fail"/>, but an error about one input that a user may pass over (a manifest or deployment that
    /// is not there) is written as a non-terminating error, so -ErrorAction SilentlyContinue and the next pipeline input work.
    /// </summary>
    protected void FailUnlessNotFound(Exception e, object target)
    {
        if (e is SafeDeployException { ErrorId: "ManifestNotFound" or "DeploymentNotFound" or "NothingToConfirm" or "NothingToUndo" }) WriteError(ErrorMapper.ToRecord(e, target));
        else Fail(e, target);
    }

    protected static bool IsReportable(Exception e) =>
        e is SafeDeployException or IOException or UnauthorizedAccessException or ArgumentException or InvalidOperationException or TimeoutException
        && e is not PipelineStoppedException;

    internal void WriteProgressUpdate(ProgressUpdate p)
    {
        var record = new ProgressRecord(p.ActivityId, p.Activity, string.IsNullOrEmpty(p.Status) ? " " : p.Status)
        {
            PercentComplete = Math.Clamp(p.PercentComplete, -1, 100),
            ParentActivityId = p.ParentId,
            CurrentOperation = p.CurrentOperation,
            SecondsRemaining = p.SecondsRemaining,
            RecordType = p.Completed ? ProgressRecordType.Completed : ProgressRecordType.Processing,
        };
        WriteProgress(record);
    }

    /// <summary>Plain .NET values from PowerShell ones (PSObject wrappers removed, recursively), for the engine.</summary>
    protected static object? Unwrap(object? value) => value switch
    {
        PSObject ps => Unwrap(ps.BaseObject),
        IDictionary d => d.Cast<DictionaryEntry>().Aggregate(new Hashtable(StringComparer.OrdinalIgnoreCase), (h, e) => { h[Unwrap(e.Key)!] = Unwrap(e.Value); return h; }),
        string s => s,
        IEnumerable seq => seq.Cast<object?>().Select(Unwrap).ToArray(),
        _ => value,
    };

    sealed class PipelineReporter(SafeDeployCmdlet cmdlet) : IOperationReporter
    {
        public void Verbose(string message) => cmdlet.WriteVerbose(message);
        public void Warning(string message) => cmdlet.WriteWarning(message);
        public void Progress(ProgressUpdate update) => cmdlet.WriteProgressUpdate(update);
    }

    sealed class QueuedReporter(SafeDeployCmdlet cmdlet, Func<Action, bool> post) : IOperationReporter
    {
        // A message posted after the work is over is dropped: nobody is left to write it.
        public void Verbose(string message) => post(() => cmdlet.WriteVerbose(message));
        public void Warning(string message) => post(() => cmdlet.WriteWarning(message));
        public void Progress(ProgressUpdate update) => post(() => cmdlet.WriteProgressUpdate(update));
    }
}

/// <summary>The one mapping from engine failures to PowerShell error records.</summary>
public static class ErrorMapper
{
    public static ErrorRecord ToRecord(Exception e, object fallbackTarget)
    {
        if (e is AggregateException { InnerExceptions.Count: 1 } agg) e = agg.InnerException!;
        // A failed POSIX call the engine did not map itself still gets the one errno mapping (DiskFull, IOError, ...).
        if (e is NativeIOException native) e = IoErrors.From(native, native.Path, "access");
        var (id, category, target, action) = e switch
        {
            SafeDeployException s => (s.ErrorId, Enum.TryParse<ErrorCategory>(s.Kind.ToString(), out var c) ? c : ErrorCategory.NotSpecified, s.Target, s.RecommendedAction),
            UnauthorizedAccessException => ("AccessDenied", ErrorCategory.PermissionDenied, fallbackTarget, "Run as a user with access to it."),
            FileNotFoundException or DirectoryNotFoundException => ("PathNotFound", ErrorCategory.ObjectNotFound, fallbackTarget, "Check the path."),
            IOException => ("IOError", ErrorCategory.WriteError, fallbackTarget, (string?)null),
            ArgumentException => ("InvalidArgument", ErrorCategory.InvalidArgument, fallbackTarget, null),
            TimeoutException => ("OperationTimeout", ErrorCategory.OperationTimeout, fallbackTarget, null),
            _ => (e.GetType().Name, ErrorCategory.NotSpecified, fallbackTarget, null),
        };
        var record = new ErrorRecord(e, id, category, target ?? fallbackTarget);
        if (action is not null) record.ErrorDetails = new ErrorDetails(e.Message) { RecommendedAction = action };
        return record;
    }
}
