using System.Text.Json.Nodes;
using SafeDeploy.Engine.Actions;
using SafeDeploy.Engine.Deployment;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Platform;
using SafeDeploy.Engine.StateDirectories;

namespace SafeDeploy.Engine.Fleet;

/// <summary>
/// A rollout's step on a host run without starting PowerShell, by the uploaded native `safedeploy-step` (SafeDeploy.Step,
/// compiled ahead of time) or else by the uploaded safedeploy host (`safedeploy -FleetStep`); its request is JSON on
/// standard input (see <see cref="RemoteScripts.DeployRequest"/>). It does what the PowerShell of
/// <see cref="RemoteScripts.Deploy"/> and <see cref="RemoteScripts.RollBack"/> does, through the engine directly, and
/// prints the same result line. The controller sends it only manifests without `script` phases: it has no runspace to
/// run them in. Starting a PowerShell engine was most of a host's time in a rollout (bench/results/fleet.md).
/// Public as the host's entry point: `src/SafeDeploy.Host/FleetStep.cs` calls <see cref="Run"/> by reflection, by name.
/// </summary>
public static class HostStep
{
    /// <summary>Runs the request read from <paramref name="input"/>; the result line goes to <paramref name="output"/>, warnings before it.</summary>
    public static int Run(TextReader input, TextWriter output, string? modulePath) => Run(input, output, modulePath, "engine");

    /// <summary>The same; <paramref name="via"/> names the runner on the result line ("engine": safedeploy -FleetStep; "native": safedeploy-step).</summary>
    public static int Run(TextReader input, TextWriter output, string? modulePath, string via)
    {
        var reporter = new LineReporter(output);
        string line;
        try
        {
            var request = JsonNode.Parse(input.ReadToEnd())!.AsObject();
            // Paths may be relative to the fleet folder the step runs in (a step run by its probe).
            var done = Path.GetFullPath((string)request["done"]!);
            line = (string?)request["op"] switch
            {
                "deploy" => Deploy(request, done, reporter, modulePath, via),
                "rollback" => RollBack(request, done, reporter, via),
                var op => throw new SafeDeployException("FleetStepInvalid", ErrorKind.InvalidArgument, op ?? "",
                    $"The fleet step '{op}' is not known.", "Run the same SafeDeploy version on the controller and the host."),
            };
        }
        catch (Exception e) when (e is SafeDeployException or IOException or UnauthorizedAccessException or System.Text.Json.JsonException or InvalidOperationException)
        {
            line = RemoteScripts.ResultLine(RemoteStatus.Error, 0, null, (e is SafeDeployException s ? s.ErrorId : e.GetType().Name) + ": " + e.Message, null, null, via);
        }
        output.WriteLine(line);
        output.Flush();
        return 0;
    }

    /// <summary>Deploys once for this rollout: a second request (after a controller died) reports the first one's result.</summary>
    static string Deploy(JsonObject request, string done, IOperationReporter reporter, string? modulePath, string via)
    {
        if (File.Exists(done)) return File.ReadAllText(done).Trim();
        var stateBase = (string?)request["stateDirectory"];
        var engine = new DeploymentEngine(State(stateBase, reporter));
        var trySeconds = (int?)request["trySeconds"];
        var plan = engine.Plan(new DeployOptions
        {
            ManifestPath = Path.GetFullPath((string)request["manifest"]!),
            Variables = request["variables"]?.AsObject().ToDictionary(kv => kv.Key, kv => (string?)kv.Value ?? "", StringComparer.Ordinal),
            Root = (string?)request["root"] is { } root ? Path.GetFullPath(root) : null,
            TrySeconds = trySeconds,
            Watchdog = trySeconds is null ? null : WatchdogHost.Locate(modulePath is null ? null : Path.GetDirectoryName(modulePath), modulePath, stateBase),
        });
        var r = engine.Invoke(plan, reporter, scriptInvoker: null);
        var line = RemoteScripts.ResultLine(RemoteOutcome.StatusOf(r.Status), r.Generation, r.Id, r.Error, r.RollbackAt, r.Duration, via);
        Keep(done, line);
        return line;
    }

    /// <summary>Undoes the run this rollout made on the host (found in its result file), once.</summary>
    static string RollBack(JsonObject request, string done, IOperationReporter reporter, string via)
    {
        var undone = done + ".undone";
        if (File.Exists(undone)) return File.ReadAllText(undone).Trim();
        if (!File.Exists(done)) return RemoteScripts.ResultLine(RemoteStatus.NotDeployed, 0, null, null, null, null, via);
        var was = RemoteScripts.Parse(File.ReadAllText(done));
        if (was is not { Status: RemoteStatus.Succeeded, Id: { } id }) return RemoteScripts.ResultLine(RemoteStatus.NotDeployed, was?.Generation ?? 0, was?.Id, null, null, null, via);
        var name = (string)request["name"]!;
        var engine = new DeploymentEngine(State((string?)request["stateDirectory"], reporter));
        DeployResult r;
        try { r = engine.Undo(name, id, reporter, scriptInvoker: null); }
        catch (SafeDeployException e)
        {
            // An undo that finished before its process was killed is in the host's history: report it, do not undo twice.
            var finished = engine.Store.History(name).LastOrDefault(h => h.Id == id && h.Status == DeployStatus.Undone);
            if (finished is null) return RemoteScripts.ResultLine(RemoteStatus.Error, 0, id, e.ErrorId + ": " + e.Message, null, null, via);
            var again = RemoteScripts.ResultLine(RemoteStatus.Undone, finished.Generation, id, null, null, null, via);
            Keep(undone, again);
            return again;
        }
        var line = RemoteScripts.ResultLine(RemoteOutcome.StatusOf(r.Status), r.Generation, id, r.Error, null, r.Duration, via);
        if (r.Status == DeployStatus.Undone) Keep(undone, line);
        return line;
    }

    /// <summary>The state directory: the host's -StateDirectory base, else SafeDeploy's default one (as the cmdlets choose it).</summary>
    static StateDirectory State(string? basePath, IOperationReporter reporter) => basePath is null
        ? StateDirectoryManager.Default(reporter)
        : StateDirectoryManager.Initialize(StateDirectoryManager.DefaultName, basePath: Path.GetFullPath(basePath), reporter: reporter);

    /// <summary>The step's result file, replaced whole: a second request reads it instead of running again.</summary>
    static void Keep(string path, string line) => Files.AtomicFile.WriteAllText(path, line + "\n");

    /// <summary>Warnings as lines before the result (the controller shows each host's lines as verbose messages).</summary>
    sealed class LineReporter(TextWriter output) : IOperationReporter
    {
        public void Verbose(string message) { }
        public void Warning(string message) { lock (output) output.WriteLine("WARNING: " + message); }
        public void Progress(ProgressUpdate update) { }
    }
}
