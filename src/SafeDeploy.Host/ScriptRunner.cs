using System.Management.Automation;
using System.Management.Automation.Runspaces;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;

namespace SafeDeploy.Host;

/// <summary>Runs one -Command or -File in a full PowerShell session and turns the outcome into pwsh's exit code.</summary>
static class ScriptRunner
{
    public static int Run(HostOptions options, string? module)
    {
        var ui = new ConsoleUi();
        var host = new ConsoleHost(ui);
        // CreateDefault, not CreateDefault2: the SDK's Utility, Management and Security cmdlets (and their format data)
        // come from the assemblies themselves, so the single-file build needs no Modules folder beside it.
        var iss = InitialSessionState.CreateDefault();
        if (module is not null) iss.ImportPSModule(new[] { module });
        using var runspace = RunspaceFactory.CreateRunspace(host, iss);
        runspace.Open();
        // After the import, so -Verbose shows the script's messages rather than the module loader's.
        if (options.Verbose) runspace.SessionStateProxy.SetVariable("VerbosePreference", ActionPreference.Continue);
        if (Console.IsOutputRedirected || Environment.GetEnvironmentVariable("NO_COLOR") is not null)
        {
            PSStyle.Instance.OutputRendering = OutputRendering.PlainText;
            ui.PlainText = true;
        }
        bool isFile = options.File is not null;
        // As pwsh -File: `exit N` in the script ends the process with N (otherwise the engine keeps it in $LASTEXITCODE).
        if (isFile) RethrowExitFromScripts(runspace);

        using var ps = PowerShell.Create();
        ps.Runspace = runspace;
        if (isFile)
        {
            var path = Path.GetFullPath(options.File!);
            var command = new Command(path, isScript: false, useLocalScope: false);
            foreach (var p in ScriptArguments.Bind(options.ScriptArgs, ScriptArguments.SwitchesOf(runspace, path))) command.Parameters.Add(p);
            ps.Commands.AddCommand(command);
        }
        // pwsh -Command exits 1 when the last statement failed: the script records $? after its last statement.
        else ps.AddScript(options.Command! + "\n$global:" + StatusVariable + " = $?");
        ps.AddCommand("Out-Default");

        int interrupted = 0;
        void Stop(int code) { if (Interlocked.CompareExchange(ref interrupted, code, 0) == 0) ps.BeginStop(null, null); }
        Console.CancelKeyPress += (_, e) => { e.Cancel = true; Stop(130); };
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; Stop(143); });
        // A hosted pipeline keeps progress in its stream; show it like warnings and verbose (the UI draws it on a terminal only).
        ps.Streams.Progress.DataAdded += (_, e) => ui.WriteProgress(0, ps.Streams.Progress[e.Index]);
        ps.Streams.Error.DataAdded += (_, e) => ui.WriteErrorLine(ErrorText.For(ps.Streams.Error[e.Index]));

        bool died = false;
        try { ps.Invoke(); }
        catch (PipelineStoppedException) { }
        catch (RuntimeException e)
        {
            died = true;
            ui.WriteErrorLine(ErrorText.For(e.ErrorRecord));
        }
        if (interrupted != 0) return interrupted;
        if (host.ExitCode is { } exit) return exit;
        if (died) return 1;
        if (isFile) return 0;
        return runspace.SessionStateProxy.GetVariable(StatusVariable) is false ? 1 : 0;
    }

    const string StatusVariable = "SafeDeployLastStatementSucceeded";

    /// <summary>
    /// pwsh sets the engine's internal ScriptCommandProcessorShouldRethrowExit for -File so that `exit N` reaches the host
    /// (SetShouldExit) instead of ending only the script. The SDK has no public switch for it; the SDK version is pinned
    /// (7.6.9) and Host/PwshMatrixTests prove the behaviour against the real pwsh.
    /// </summary>
    static void RethrowExitFromScripts(Runspace runspace)
    {
        const BindingFlags flags = BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public;
        var context = runspace.GetType().GetProperty("ExecutionContext", flags)?.GetValue(runspace);
        var property = context?.GetType().GetProperty("ScriptCommandProcessorShouldRethrowExit", flags);
        if (property is null) throw new InvalidOperationException("this PowerShell SDK has no ScriptCommandProcessorShouldRethrowExit; safedeploy -File cannot give `exit N` its code.");
        property.SetValue(context, true);
    }
}

/// <summary>
/// pwsh -File's argument binding: `-Name value` binds a parameter, a switch of the script's param block binds alone (the
/// next word stays positional), `-Name:value` binds both; the rest are positional. Names may be abbreviated or aliases.
/// </summary>
static class ScriptArguments
{
    /// <summary>Every name (parameter, alias) of the script's parameters, and whether it is a switch; empty when it cannot be read.</summary>
    public static IReadOnlyDictionary<string, bool> SwitchesOf(Runspace runspace, string path)
    {
        var names = new Dictionary<string, bool>(StringComparer.OrdinalIgnoreCase);
        try
        {
            using var ps = PowerShell.Create();
            ps.Runspace = runspace;
            if (ps.AddCommand("Get-Command").AddParameter("Name", path).Invoke<CommandInfo>().FirstOrDefault() is { } info)
                foreach (var (name, meta) in info.Parameters)
                {
                    names[name] = meta.SwitchParameter;
                    foreach (var alias in meta.Aliases) names[alias] = meta.SwitchParameter;
                }
        }
        catch (RuntimeException) { } // a script that does not parse: its error comes when it runs
        return names;
    }

    public static IEnumerable<CommandParameter> Bind(IReadOnlyList<string> args, IReadOnlyDictionary<string, bool> switches)
    {
        for (int i = 0; i < args.Count; i++)
        {
            var a = args[i];
            if (!IsParameterName(a)) { yield return new CommandParameter(null, a); continue; }
            int colon = a.IndexOf(':');
            if (colon > 0) { yield return new CommandParameter(a[1..colon], ColonValue(a[(colon + 1)..])); continue; }
            var name = a[1..];
            bool? isSwitch = switches.TryGetValue(name, out var exact) ? exact
                : switches.Where(kv => kv.Key.StartsWith(name, StringComparison.OrdinalIgnoreCase)).Select(kv => kv.Value).Distinct().ToList() is [var only] ? only : null;
            bool takesValue = isSwitch is false || (isSwitch is null && i + 1 < args.Count && !IsParameterName(args[i + 1]));
            if (takesValue && i + 1 < args.Count) yield return new CommandParameter(name, args[++i]);
            else yield return new CommandParameter(name, true);
        }
    }

    static object ColonValue(string v) => v.ToLowerInvariant() switch { "$true" or "true" => true, "$false" or "false" => false, _ => v };

    static bool IsParameterName(string a) =>
        a.Length > 1 && a[0] == '-' && (char.IsLetter(a[1]) || a[1] == '_') &&
        a.Skip(1).TakeWhile(c => c != ':').All(c => char.IsLetterOrDigit(c) || c is '_' or '-');
}

/// <summary>"Cmdlet: message", where it happened (file, line, column and the line), category, error id and what to do.</summary>
static class ErrorText
{
    public static string For(ErrorRecord r)
    {
        var sb = new StringBuilder();
        var who = r.InvocationInfo?.MyCommand?.Name;
        sb.Append(string.IsNullOrEmpty(who) ? "" : who + ": ").Append(r.ErrorDetails?.Message ?? r.Exception?.Message);
        if (Position(r) is { Length: > 0 } at) sb.Append('\n').Append(Indent(at));
        sb.Append($"\n    + CategoryInfo          : {r.CategoryInfo}");
        sb.Append($"\n    + FullyQualifiedErrorId : {r.FullyQualifiedErrorId}");
        if (r.ErrorDetails?.RecommendedAction is { Length: > 0 } action) sb.Append($"\n    + RecommendedAction     : {action}");
        return sb.ToString();
    }

    /// <summary>"At /path/script.ps1:3 char:5" plus the line and a marker; a parse error carries its own extent.</summary>
    static string? Position(ErrorRecord r)
    {
        if (r.Exception is ParseException { Errors.Length: > 0 } parse)
        {
            var extent = parse.Errors[0].Extent;
            var file = string.IsNullOrEmpty(extent.File) ? "line" : extent.File;
            var line = extent.StartScriptPosition.Line;
            return $"At {file}:{extent.StartLineNumber} char:{extent.StartColumnNumber}\n+ {line.TrimEnd()}";
        }
        return r.InvocationInfo?.PositionMessage;
    }

    static string Indent(string text) => string.Join('\n', text.Replace("\r", "").Split('\n').Select(l => "    " + l));
}
