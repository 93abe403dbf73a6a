using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Platform;
using SafeDeploy.Engine.Services;
using SafeDeploy.Engine.SharedLibraries;

namespace SafeDeploy.Engine.Actions;

/// <summary>The actions of the native shim deployment: sharedLibrary, preload, service, health, loaded.</summary>
public static class NativeActions
{
    public static void Register(ActionRegistry registry)
    {
        registry.Register("sharedLibrary", SharedLibraryAction.Parse);
        registry.Register("preload", PreloadAction.Parse);
        registry.Register("service", ServiceAction.Parse);
        registry.Register("health", HealthAction.Parse);
        registry.Register("loaded", LoadedAction.Parse);
    }

    internal static IReadOnlyList<string>? Argv(ActionNode? node, string what)
    {
        if (node is null) return null;
        if (node.IsScalar)
        {
            var line = node.Scalar();
            if (string.IsNullOrWhiteSpace(line)) { node.Error($"'{what}' is empty."); return null; }
            try { return ShellWords.Split(line); }
            catch (SafeDeployException e) { node.Error(e.Message); return null; }
        }
        if (node.IsSequence)
        {
            var args = node.Items().Select(i => i.Scalar()).ToList();
            if (args.Count == 0 || args.Any(a => a is null)) { if (args.Count == 0) node.Error($"'{what}' is empty."); return null; }
            return args!;
        }
        node.Error($"'{what}' must be a command line or a list of arguments.");
        return null;
    }

    internal static string? AbsolutePath(ActionNode node, string key, bool required = false)
    {
        var p = node.String(key, required);
        if (p is not null && !Path.IsPathRooted(p)) { node.ErrorAt(key, $"'{key}' must be an absolute path (it is placed under -Root), not '{p}'."); return null; }
        return p;
    }
}

/// <summary>`sharedLibrary`: Test-SharedLibrary as a phase; an invalid library stops the deployment before anything is installed.</summary>
public sealed class SharedLibraryAction : IDeployAction
{
    public required string Path { get; init; }
    public IReadOnlyList<string> Symbols { get; init; } = Array.Empty<string>();
    public bool Canary { get; init; } = true;
    public IReadOnlyList<string> Probes { get; init; } = Array.Empty<string>();
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(10);

    public string Kind => "sharedLibrary";
    public IReadOnlyList<string> Writes => Array.Empty<string>();
    public string Describe() => $"validate {Path}" + (Symbols.Count > 0 ? $" (exports {string.Join(", ", Symbols)})" : "") + (Canary ? ", canary processes" : "");

    public static IDeployAction? Parse(ActionNode node)
    {
        if (node.IsScalar) return node.Scalar() is { Length: > 0 } p ? new SharedLibraryAction { Path = p } : null;
        node.AllowOnly("path", "symbols", "canary", "probes", "timeout");
        var path = node.String("path", required: true);
        var symbols = node.StringList("symbols");
        var canary = node.Bool("canary");
        var probes = node.StringList("probes");
        var timeout = node.Duration("timeout");
        if (path is null) return null;
        return new SharedLibraryAction
        {
            Path = path, Symbols = symbols ?? [], Canary = canary ?? true, Probes = probes ?? [], Timeout = timeout ?? TimeSpan.FromSeconds(10),
        };
    }

    public async Task ExecuteAsync(ActionContext context)
    {
        // The library is read where it was built (relative to the manifest), before any install: not placed under -Root.
        var path = context.ResolveSource(Path);
        var report = await SharedLibraryValidator.ValidateAsync(path, new SharedLibraryCheckOptions
        {
            Symbols = Symbols, Canary = Canary, Probes = Probes, Timeout = Timeout, Reporter = context.Reporter,
        }, context.Cancellation).ConfigureAwait(false);
        context.Log.WriteLine($"{path}: {report.Class} {report.Machine} {report.Type} ({report.Kind}), needs {string.Join(", ", report.Needed)}, sha256 {report.Sha256}");
        if (Symbols.Count > 0) context.Log.WriteLine($"symbols found: {string.Join(", ", report.SymbolsFound)}; missing: {string.Join(", ", report.SymbolsMissing)}");
        foreach (var c in report.Canary)
            context.Log.WriteLine($"canary {c.Program}: {(c.Skipped ? "skipped" : c.Passed ? "ok" : "FAIL")} exit {c.ExitCode}{(c.Signal is { } s ? $" signal {s}" : "")}{(c.TimedOut ? " timed out" : "")} in {c.Duration.TotalMilliseconds:0} ms{(c.StdErr.Length > 0 ? "\n  stderr: " + c.StdErr.Trim() : "")}");
        if (!report.IsValid)
            throw new SafeDeployException("SharedLibraryInvalid", ErrorKind.InvalidData, path,
                $"Phase '{context.PhaseName}': '{path}' must not be preloaded: {string.Join(" ", report.Problems)}",
                "Fix the library (see the phase output for each check), rebuild and deploy again.");
    }

    public Task UndoAsync(ActionContext context, IReadOnlyList<UndoRecord> recorded) => Task.CompletedTask;
}

/// <summary>`preload`: the library's line in an ld.so.preload file under a lock; undo restores the previous file (or removes it).</summary>
public sealed class PreloadAction : IDeployAction
{
    public required string Library { get; init; }
    public string File { get; init; } = PreloadFile.SystemPath;
    public bool Present { get; init; } = true;
    public TimeSpan? LockTimeout { get; init; }

    public string Kind => "preload";
    public IReadOnlyList<string> Writes => [File];
    public string Describe() => Present ? $"preload {Library} (line in {File})" : $"remove {Library} from {File}";

    public static IDeployAction? Parse(ActionNode node)
    {
        if (node.IsScalar)
        {
            var lib = node.Scalar();
            if (lib is not null && !Path.IsPathRooted(lib)) { node.Error($"The preloaded library must be an absolute path, not '{lib}'."); return null; }
            return lib is { Length: > 0 } ? new PreloadAction { Library = lib } : null;
        }
        node.AllowOnly("library", "file", "ensure", "timeout");
        var library = NativeActions.AbsolutePath(node, "library", required: true);
        var file = NativeActions.AbsolutePath(node, "file");
        var ensure = node.String("ensure");
        if (ensure is not null and not ("present" or "absent")) node.ErrorAt("ensure", $"'ensure' must be present or absent, not '{ensure}'.");
        var timeout = node.Duration("timeout");
        if (library is null) return null;
        return new PreloadAction { Library = library, File = file ?? PreloadFile.SystemPath, Present = ensure != "absent", LockTimeout = timeout };
    }

    public Task ExecuteAsync(ActionContext context)
    {
        var target = context.MapPath(File);
        var onDisk = context.MapPath(Library);
        context.EnsureParentDirectory(target);
        var options = new Files.FileEditOptions { Timeout = LockTimeout, Reporter = context.Reporter };
        if (Present)
        {
            PreloadFile.CheckLibrary(Library, onDisk); // refuse before the lock file (the preload file itself) is created
            // Taking the file's lock creates it: journal "did not exist" first, so a crash right then still removes it.
            if (!System.IO.File.Exists(target)) context.Journal(new UndoRecord { Step = "backup", Backups = [new FileBackup(target, null, null)] });
            var r = PreloadFile.Ensure(target, Library, onDisk, options, context.Cancellation, before => { if (before is not null) context.BackupFile(target); });
            context.Log.WriteLine(r.Changed ? $"{target}:\n{r.Diff}" : $"{target} already preloads {Library}");
        }
        else
        {
            var r = PreloadFile.Remove(target, Library, options, context.Cancellation, before => { if (before is not null) context.BackupFile(target); });
            context.Log.WriteLine(r.Changed ? $"{target}:\n{r.Diff}" : $"{target} does not preload {Library}");
        }
        return Task.CompletedTask;
    }

    public Task UndoAsync(ActionContext context, IReadOnlyList<UndoRecord> recorded)
    {
        ActionContext.UndoFiles(recorded);
        return Task.CompletedTask;
    }
}

/// <summary>`service`: stop, start or restart a service through systemd, commands, or a process SafeDeploy supervises; undo brings back the state before.</summary>
public sealed class ServiceAction : IDeployAction
{
    public required string Operation { get; init; }
    public required ServiceSpec Service { get; init; }

    public string Kind => "service";
    public IReadOnlyList<string> Writes => Service.Writes;
    public string Describe() => $"{Operation} {Service.Describe()}";

    public static IDeployAction? Parse(ActionNode node)
    {
        if (!node.IsMapping) { node.Error("'service' needs 'action' (stop, start or restart) and 'manager' with its settings."); return null; }
        node.AllowOnly([.. ServiceSpec.Keys, "action"]);
        var op = node.String("action", required: true);
        if (op is not null and not ("stop" or "start" or "restart")) { node.ErrorAt("action", $"'action' must be stop, start or restart, not '{op}'."); op = null; }
        var spec = ServiceSpec.Parse(node);
        return op is null || spec is null ? null : new ServiceAction { Operation = op, Service = spec };
    }

    public async Task ExecuteAsync(ActionContext context)
    {
        var manager = Service.Create(context);
        var reporter = new LogReporter(context);
        var before = await manager.GetStatusAsync(context.Cancellation).ConfigureAwait(false);
        context.Log.WriteLine($"{manager.Describe()}: {before.Detail}");
        // Journaled before anything changes: undo needs only whether the service ran before this phase.
        context.RecordUndo("service", new Dictionary<string, string?> { ["operation"] = Operation, ["wasRunning"] = before.Running ? "true" : "false" });
        if (Operation is "stop" or "restart")
        {
            var stop = await manager.StopAsync(reporter, context.Cancellation).ConfigureAwait(false);
            context.Log.WriteLine(!stop.WasRunning ? "was not running" : $"stopped{(stop.Pid is { } p ? $" pid {p}" : "")} in {stop.Duration.TotalMilliseconds:0} ms{(stop.Escalated ? " (escalated: killed after the stop timeout)" : "")}");
        }
        if (Operation is "start" or "restart")
        {
            var start = await manager.StartAsync(reporter, context.Cancellation).ConfigureAwait(false);
            context.Log.WriteLine(start.WasRunning ? $"already running{(start.Pid is { } p ? $" as pid {p}" : "")}" : $"started{(start.Pid is { } q ? $" as pid {q}" : "")}");
        }
    }

    public async Task UndoAsync(ActionContext context, IReadOnlyList<UndoRecord> recorded)
    {
        var record = recorded.FirstOrDefault(r => r.Step == "service");
        if (record is null) return; // the phase never got as far as changing anything
        bool wasRunning = record.Data.TryGetValue("wasRunning", out var w) && w == "true";
        var manager = Service.Create(context);
        var reporter = new LogReporter(context);
        if (Operation == "restart" && wasRunning)
        {
            // Runs before the undo of earlier phases (reverse order): deploy with stop ... start phases around the file
            // changes when the restored service must load the restored files.
            await manager.StopAsync(reporter, context.Cancellation).ConfigureAwait(false);
            await manager.StartAsync(reporter, context.Cancellation).ConfigureAwait(false);
            context.Log.WriteLine("restarted again (it ran before)");
        }
        else if (wasRunning)
        {
            var s = await manager.StartAsync(reporter, context.Cancellation).ConfigureAwait(false);
            context.Log.WriteLine(s.WasRunning ? "running (as before)" : $"started again{(s.Pid is { } p ? $" as pid {p}" : "")} (it ran before)");
        }
        else
        {
            var s = await manager.StopAsync(reporter, context.Cancellation).ConfigureAwait(false);
            context.Log.WriteLine(s.WasRunning ? $"stopped again (it did not run before){(s.Escalated ? ", escalated" : "")}" : "stopped (as before)");
        }
    }
}

/// <summary>How a manifest names a service: manager and settings, shared by the service and loaded actions.</summary>
public sealed record ServiceSpec
{
    public static readonly string[] Keys = ["manager", "unit", "user", "command", "pidFile", "logFile", "preloadFile", "workingDirectory", "environment",
        "start", "stop", "status", "kill", "stopTimeout", "startTimeout", "escalate", "systemctl"];

    public required string Manager { get; init; }
    public string? Unit { get; init; }
    public bool User { get; init; }
    public IReadOnlyList<string>? Command { get; init; }
    public string? PidFile { get; init; }
    public string? LogFile { get; init; }
    public string? PreloadFile { get; init; }
    public string? WorkingDirectory { get; init; }
    public IReadOnlyDictionary<string, string> Environment { get; init; } = new Dictionary<string, string>();
    public IReadOnlyList<string>? Start { get; init; }
    public IReadOnlyList<string>? Stop { get; init; }
    public IReadOnlyList<string>? Status { get; init; }
    public IReadOnlyList<string>? Kill { get; init; }
    public TimeSpan? StopTimeout { get; init; }
    public TimeSpan? StartTimeout { get; init; }
    public bool Escalate { get; init; } = true;
    public string Systemctl { get; init; } = "systemctl";

    public IReadOnlyList<string> Writes => new[] { PidFile }.OfType<string>().ToList();

    public string Describe() => Manager switch
    {
        "systemd" => $"systemd unit {Unit}",
        "process" => $"process {ExternalCommand.Format(Command![0], Command.Skip(1))} (pid file {PidFile})",
        _ => $"service (status: {ExternalCommand.Format(Status![0], Status.Skip(1))})",
    };

    public static ServiceSpec? Parse(ActionNode node)
    {
        var manager = node.String("manager", required: true);
        if (manager is null) return null;
        var spec = new ServiceSpec
        {
            Manager = manager,
            Unit = node.String("unit"),
            User = node.Bool("user") ?? false,
            Command = NativeActions.Argv(node.Child("command"), "command"),
            PidFile = NativeActions.AbsolutePath(node, "pidFile"),
            LogFile = NativeActions.AbsolutePath(node, "logFile"),
            PreloadFile = NativeActions.AbsolutePath(node, "preloadFile"),
            WorkingDirectory = node.String("workingDirectory"),
            Environment = node.Map("environment") ?? new Dictionary<string, string>(),
            Start = NativeActions.Argv(node.Child("start"), "start"),
            Stop = NativeActions.Argv(node.Child("stop"), "stop"),
            Status = NativeActions.Argv(node.Child("status"), "status"),
            Kill = NativeActions.Argv(node.Child("kill"), "kill"),
            StopTimeout = node.Duration("stopTimeout"),
            StartTimeout = node.Duration("startTimeout"),
            Escalate = node.Bool("escalate") ?? true,
            Systemctl = node.String("systemctl") ?? "systemctl",
        };
        switch (manager)
        {
            case "systemd":
                if (spec.Unit is null) { node.Error("The systemd manager needs 'unit'.", "MissingKey"); return null; }
                return spec;
            case "process":
                if (spec.Command is null || spec.PidFile is null) { node.Error("The process manager needs 'command' and 'pidFile'.", "MissingKey"); return null; }
                return spec;
            case "command":
                if (spec.Start is null || spec.Stop is null || spec.Status is null) { node.Error("The command manager needs 'start', 'stop' and 'status'.", "MissingKey"); return null; }
                return spec;
            default:
                node.ErrorAt("manager", $"'manager' must be systemd, command or process, not '{manager}'.");
                return null;
        }
    }

    public IServiceManager Create(ActionContext context)
    {
        var stopTimeout = StopTimeout ?? TimeSpan.FromSeconds(10);
        return Manager switch
        {
            "systemd" => new SystemdServiceManager(new SystemdServiceOptions
            {
                Unit = Unit!, User = User, Systemctl = Systemctl, StopTimeout = StopTimeout ?? TimeSpan.FromSeconds(30), StartTimeout = StartTimeout ?? TimeSpan.FromSeconds(60),
            }),
            "command" => new CommandServiceManager(new CommandServiceOptions
            {
                Start = Start!, Stop = Stop!, Status = Status!, Kill = Escalate ? Kill : null, StopTimeout = stopTimeout, StartTimeout = StartTimeout ?? TimeSpan.FromSeconds(60),
                Environment = Env(context), WorkingDirectory = WorkingDirectory is null ? context.ManifestDirectory : context.ResolveSource(WorkingDirectory),
            }),
            _ => new ProcessServiceManager(new ProcessServiceOptions
            {
                Command = Command!.Select((a, i) => i == 0 && !Path.IsPathRooted(a) && a.Contains('/') ? context.ResolveSource(a) : a).ToList(),
                PidFile = context.MapPath(PidFile!), LogFile = LogFile is null ? null : context.MapPath(LogFile),
                PreloadFile = PreloadFile is null ? null : context.MapPath(PreloadFile), Root = context.Root,
                WorkingDirectory = WorkingDirectory is null ? context.ManifestDirectory : context.ResolveSource(WorkingDirectory),
                Environment = Environment, StopTimeout = stopTimeout, StartTimeout = StartTimeout ?? TimeSpan.FromSeconds(10), Escalate = Escalate,
            }),
        };
    }

    Dictionary<string, string?> Env(ActionContext context)
    {
        var env = new Dictionary<string, string?>(StringComparer.Ordinal) { ["SAFEDEPLOY_ROOT"] = context.Root ?? "" };
        foreach (var (k, v) in Environment) env[k] = v;
        return env;
    }
}

/// <summary>`health`: HTTP GET (status and body pattern) or a command, retried until its timeout; failure rolls the deployment back.</summary>
public sealed class HealthAction : IDeployAction
{
    public required HealthProbeOptions Probe { get; init; }

    public string Kind => "health";
    public IReadOnlyList<string> Writes => Array.Empty<string>();
    public string Describe() => Probe.Url is not null
        ? $"health GET {Probe.Url} expects {Probe.ExpectStatus}{(Probe.BodyPattern is null ? "" : $" and /{Probe.BodyPattern}/")} within {Probe.Timeout.TotalSeconds:0.#} s"
        : $"health command {ExternalCommand.Format(Probe.Command![0], Probe.Command.Skip(1))} within {Probe.Timeout.TotalSeconds:0.#} s";

    public static IDeployAction? Parse(ActionNode node)
    {
        if (!node.IsMapping) { node.Error("'health' needs 'url' or 'command'."); return null; }
        node.AllowOnly("url", "command", "expectStatus", "body", "timeout", "interval", "attemptTimeout");
        var url = node.String("url");
        var command = NativeActions.Argv(node.Child("command"), "command");
        if ((url is null) == (node.Child("command") is null)) { node.Error("'health' needs exactly one of 'url' or 'command'.", "MissingKey"); return null; }
        Uri? uri = null;
        if (url is not null && (!Uri.TryCreate(url, UriKind.Absolute, out uri) || uri.Scheme is not ("http" or "https")))
        {
            node.ErrorAt("url", $"'url' must be an absolute http:// or https:// URL, not '{url}'.");
            return null;
        }
        var status = node.Integer("expectStatus");
        var body = node.String("body");
        if (body is not null)
        {
            try { _ = new System.Text.RegularExpressions.Regex(body); }
            catch (ArgumentException e) { node.ErrorAt("body", $"'body' is not a valid regular expression: {e.Message}"); return null; }
        }
        var timeout = node.Duration("timeout");
        var interval = node.Duration("interval");
        var attempt = node.Duration("attemptTimeout");
        if (url is null && command is null) return null;
        return new HealthAction
        {
            Probe = new HealthProbeOptions
            {
                Url = uri, Command = command, ExpectStatus = (int)(status ?? 200), BodyPattern = body, Timeout = timeout ?? TimeSpan.FromSeconds(30),
                Interval = interval ?? TimeSpan.FromMilliseconds(250), AttemptTimeout = attempt ?? TimeSpan.FromSeconds(5),
            },
        };
    }

    public async Task ExecuteAsync(ActionContext context)
    {
        var result = await HealthProbe.RunAsync(Probe, new LogReporter(context), context.Cancellation).ConfigureAwait(false);
        context.Log.WriteLine(result.Describe() + (result.LastBody is { Length: > 0 } b ? $"\nbody: {b.Trim()}" : ""));
        if (!result.Healthy)
            throw new SafeDeployException("HealthCheckFailed", ErrorKind.InvalidOperation, Probe.Url?.ToString() ?? context.PhaseName,
                $"Phase '{context.PhaseName}': the service is not healthy: {result.LastError} ({result.Attempts} attempts in {result.Duration.TotalSeconds:0.#} s).",
                "Read the service's log; the deployment was rolled back to the previous generation.");
    }

    public Task UndoAsync(ActionContext context, IReadOnlyList<UndoRecord> recorded) => Task.CompletedTask;
}

/// <summary>`loaded`: the running service maps the library (the very file on disk now), read from /proc/&lt;pid&gt;/maps.</summary>
public sealed class LoadedAction : IDeployAction
{
    public required string Library { get; init; }
    public string? PidFile { get; init; }
    public string? Unit { get; init; }
    public string Systemctl { get; init; } = "systemctl";

    public string Kind => "loaded";
    public IReadOnlyList<string> Writes => Array.Empty<string>();
    public string Describe() => $"check that {(PidFile is not null ? $"the process of {PidFile}" : $"unit {Unit}")} maps {Library}";

    public static IDeployAction? Parse(ActionNode node)
    {
        if (!node.IsMapping) { node.Error("'loaded' needs 'library' and 'pidFile' (or 'unit')."); return null; }
        node.AllowOnly("library", "pidFile", "unit", "systemctl");
        var library = NativeActions.AbsolutePath(node, "library", required: true);
        var pidFile = NativeActions.AbsolutePath(node, "pidFile");
        var unit = node.String("unit");
        if ((pidFile is null) == (unit is null)) { node.Error("'loaded' needs exactly one of 'pidFile' or 'unit'.", "MissingKey"); return null; }
        if (library is null) return null;
        return new LoadedAction { Library = library, PidFile = pidFile, Unit = unit, Systemctl = node.String("systemctl") ?? "systemctl" };
    }

    public async Task ExecuteAsync(ActionContext context)
    {
        int? pid;
        string source;
        if (PidFile is not null)
        {
            source = context.MapPath(PidFile);
            var text = System.IO.File.Exists(source) ? System.IO.File.ReadAllText(source).Trim() : null;
            pid = int.TryParse(text, out var p) && p > 0 ? p : null;
        }
        else
        {
            source = $"systemd unit {Unit}";
            pid = (await new SystemdServiceManager(new SystemdServiceOptions { Unit = Unit!, Systemctl = Systemctl }).GetStatusAsync(context.Cancellation).ConfigureAwait(false)).Pid;
        }
        if (pid is null || !ProcessLiveness.IsAlive(pid.Value))
            throw new SafeDeployException("ServiceNotRunning", ErrorKind.ObjectNotFound, source,
                $"Phase '{context.PhaseName}': no running process found through {source}.", "Start the service (a service phase before this one).");
        var library = context.MapPath(Library);
        var r = LoadedLibraries.Check(pid.Value, library);
        foreach (var line in r.MatchingLines) context.Log.WriteLine(line);
        if (!r.Loaded)
            throw new SafeDeployException("LibraryNotLoaded", ErrorKind.InvalidOperation, library,
                r.MapsDeletedCopy
                    ? $"Phase '{context.PhaseName}': pid {pid} maps an older, replaced copy of '{library}', not the installed one: it was not restarted after the install."
                    : $"Phase '{context.PhaseName}': pid {pid} does not map '{library}': the preload did not reach it.",
                "Restart the service after the preload phase, and check that the loader reads the preload file.");
        context.Log.WriteLine($"pid {pid} maps {library}");
    }

    public Task UndoAsync(ActionContext context, IReadOnlyList<UndoRecord> recorded) => Task.CompletedTask;
}

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
