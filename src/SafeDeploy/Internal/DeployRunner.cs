using System.Collections;
using System.Globalization;
using System.Management.Automation;
using SafeDeploy.Engine.Actions;
using SafeDeploy.Engine.Platform;
using SafeDeploy.Engine.StateDirectories;

namespace SafeDeploy.Internal;

/// <summary>
/// Runs deployment work on a worker thread while the pipeline thread writes its messages and runs the PowerShell of
/// `script` phases (a ScriptBlock must run where its runspace is): both are queued to, and drained by, the pipeline thread.
/// </summary>
static class DeployRunner
{
    public static T Run<T>(SafeDeployCmdlet cmdlet, CancellationToken token, Func<IOperationReporter, ScriptInvoker, T> work)
    {
        bool stopped = false;
        var result = PipelineWorker.Run(post =>
        {
            var reporter = new Reporter(cmdlet, post);
            ScriptInvoker invoker = (request, ct) =>
            {
                var done = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
                bool posted = post(() =>
                {
                    try { done.SetResult(RunScript(request)); }
                    catch (Exception e) { done.SetException(e); }
                });
                if (!posted) done.TrySetException(new OperationCanceledException());
                return done.Task;
            };
            return work(reporter, invoker);
        }, a =>
        {
            // After Ctrl+C the pipeline refuses writes, but the engine is still rolling back: keep draining until it is done.
            try { if (!stopped) a(); }
            catch (PipelineStoppedException) { stopped = true; }
        });
        if (stopped) throw new PipelineStoppedException();
        return result;
    }

    static string RunScript(ScriptRequest request)
    {
        var deploy = new Hashtable(StringComparer.OrdinalIgnoreCase)
        {
            ["Phase"] = request.Phase, ["WorkingDirectory"] = request.WorkingDirectory,
            ["Variables"] = new Hashtable(request.Variables.ToDictionary(kv => kv.Key, kv => (object?)kv.Value), StringComparer.Ordinal),
            ["Root"] = request.Root.VariableValue,
        };
        var output = ScriptBlock.Create(request.Script).InvokeWithContext(null, new List<PSVariable>
        {
            new("Deploy", deploy), new("ErrorActionPreference", ActionPreference.Stop),
        });
        return string.Join("\n", output.Where(o => o is not null).Select(o => Convert.ToString(o.BaseObject, CultureInfo.InvariantCulture)));
    }

    sealed class Reporter(SafeDeployCmdlet cmdlet, Func<Action, bool> post) : IOperationReporter
    {
        public void Verbose(string message) => post(() => cmdlet.WriteVerbose(message));
        public void Warning(string message) => post(() => cmdlet.WriteWarning(message));
        public void Progress(ProgressUpdate update) => post(() => cmdlet.WriteProgressUpdate(update));
    }

    /// <summary>The state directory: -StateDirectory as a base path, else SafeDeploy's default one.</summary>
    public static StateDirectory State(string? basePath, IOperationReporter reporter) => basePath is null
        ? StateDirectoryManager.Default(reporter)
        : StateDirectoryManager.Initialize(StateDirectoryManager.DefaultName, basePath: basePath, reporter: reporter);

    /// <summary>-Variables @{...} as strings.</summary>
    public static Dictionary<string, string>? Variables(Hashtable? table) => table?.Cast<DictionaryEntry>().ToDictionary(
        e => Convert.ToString(e.Key is PSObject pk ? pk.BaseObject : e.Key, CultureInfo.InvariantCulture)!,
        e => Convert.ToString(e.Value is PSObject pv ? pv.BaseObject : e.Value, CultureInfo.InvariantCulture) ?? "", StringComparer.Ordinal);
}
