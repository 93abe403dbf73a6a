using System.Management.Automation;
using System.Management.Automation.Runspaces;
using System.Runtime.InteropServices;
using System.Text;

namespace SafeDeploy.Host;

/// <summary>
/// safedeploy -Command '…' | -File script.ps1 [args] | script.ps1 [args]: PowerShell with SafeDeploy imported.
/// Exit code 0 on success, 1 when the script ended with an error, N for `exit N`, 130 when interrupted.
/// </summary>
static class Program
{
    const string Usage = """
        Usage: safedeploy [-Verbose] [-NoModule] -Command <script> | -File <script.ps1> [args...] | <script.ps1> [args...]
          -Command, -c   run PowerShell text ('-' reads it from standard input)
          -File, -f      run a script file with its arguments, as pwsh -File does
          -Verbose       show verbose messages (sets $VerbosePreference = 'Continue')
          -NoModule      do not import SafeDeploy (import it yourself with Import-Module)
        The module is found from SAFEDEPLOY_MODULE (a path to SafeDeploy.psd1) or beside/above this program.
        """;

    static int Main(string[] args)
    {
        // Before the engine starts: PowerShell's telemetry client (Application Insights) costs about 50 ms of CPU at every
        // start (bench/results/foundation.md) and has nothing to report for an embedded host. A user's own setting wins.
        if (Environment.GetEnvironmentVariable("POWERSHELL_TELEMETRY_OPTOUT") is null)
            Environment.SetEnvironmentVariable("POWERSHELL_TELEMETRY_OPTOUT", "1");
        string? command = null, file = null;
        var scriptArgs = new List<string>();
        bool verbose = false, noModule = false;
        for (int i = 0; i < args.Length; i++)
        {
            var a = args[i];
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{a} needs a value.");
            try
            {
                switch (a.ToLowerInvariant())
                {
                    case "-command" or "-c" or "--command":
                        command = Next();
                        if (command == "-") command = Console.In.ReadToEnd();
                        else if (i + 1 < args.Length) command += " " + string.Join(' ', args[(i + 1)..]);
                        i = args.Length;
                        break;
                    case "-file" or "-f" or "--file":
                        file = Next();
                        scriptArgs.AddRange(args[(i + 1)..]);
                        i = args.Length;
                        break;
                    case "-verbose" or "--verbose": verbose = true; break;
                    case "-nomodule": noModule = true; break;
                    case "-noprofile" or "-noninteractive" or "-nologo": break; // accepted for pwsh compatibility
                    case "-h" or "-help" or "--help" or "-?": Console.WriteLine(Usage); return 0;
                    default:
                        if (a.StartsWith('-')) { Console.Error.WriteLine($"safedeploy: unknown option {a}\n{Usage}"); return 64; }
                        file = a;
                        scriptArgs.AddRange(args[(i + 1)..]);
                        i = args.Length;
                        break;
                }
            }
            catch (ArgumentException e) { Console.Error.WriteLine($"safedeploy: {e.Message}\n{Usage}"); return 64; }
        }
        if (command is null && file is null) { Console.Error.WriteLine(Usage); return 64; }
        if (file is not null && !File.Exists(file)) { Console.Error.WriteLine($"safedeploy: script '{file}' not found."); return 64; }

        string? module = null;
        if (!noModule)
        {
            module = FindModule();
            if (module is null)
            {
                Console.Error.WriteLine("safedeploy: cannot find SafeDeploy.psd1 with a built module/SafeDeploy.dll. Build it (dotnet build) or set SAFEDEPLOY_MODULE.");
                return 69;
            }
        }
        return Run(command ?? FileInvocation(Path.GetFullPath(file!), scriptArgs), file is not null, module, verbose);
    }

    static int Run(string script, bool isFile, string? module, bool verbose)
    {
        var ui = new ConsoleUi();
        var host = new ConsoleHost(ui);
        var iss = InitialSessionState.CreateDefault2();
        if (module is not null) iss.ImportPSModule(new[] { module });
        using var runspace = RunspaceFactory.CreateRunspace(host, iss);
        runspace.Open();
        // After the import, so -Verbose shows the script's messages rather than the module loader's.
        if (verbose) runspace.SessionStateProxy.SetVariable("VerbosePreference", ActionPreference.Continue);
        if (Console.IsOutputRedirected || Environment.GetEnvironmentVariable("NO_COLOR") is not null)
        {
            PSStyle.Instance.OutputRendering = OutputRendering.PlainText;
            ui.PlainText = true;
        }
        using var ps = PowerShell.Create();
        ps.Runspace = runspace;
        ps.AddScript(script).AddCommand("Out-Default");

        int interrupted = 0;
        void Stop(int code) { if (Interlocked.CompareExchange(ref interrupted, code, 0) == 0) ps.BeginStop(null, null); }
        Console.CancelKeyPress += (_, e) => { e.Cancel = true; Stop(130); };
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; Stop(143); });

        bool failed = false;
        // A hosted pipeline keeps progress in its stream; show it like warnings and verbose (the UI de-duplicates).
        ps.Streams.Progress.DataAdded += (_, e) => ui.WriteProgress(0, ps.Streams.Progress[e.Index]);
        ps.Streams.Error.DataAdded += (_, e) =>
        {
            failed = true;
            ui.WriteErrorLine(ErrorText(ps.Streams.Error[e.Index]));
        };
        try
        {
            ps.Invoke();
        }
        catch (PipelineStoppedException) { }
        catch (RuntimeException e)
        {
            failed = true;
            ui.WriteErrorLine(ErrorText(e.ErrorRecord));
        }
        if (interrupted != 0) return interrupted;
        if (host.ExitCode is { } exit) return exit;
        if (isFile && runspace.SessionStateProxy.GetVariable("LASTEXITCODE") is int last && last != 0) return last;
        return failed || ps.HadErrors ? 1 : 0;
    }

    /// <summary>"Cmdlet: message" plus category, error id and what to do — readable in a cron mail.</summary>
    static string ErrorText(ErrorRecord r)
    {
        var sb = new StringBuilder();
        var who = r.InvocationInfo?.MyCommand?.Name;
        sb.Append(string.IsNullOrEmpty(who) ? "" : who + ": ").Append(r.ErrorDetails?.Message ?? r.Exception?.Message);
        sb.Append($"\n    + CategoryInfo          : {r.CategoryInfo}");
        sb.Append($"\n    + FullyQualifiedErrorId : {r.FullyQualifiedErrorId}");
        if (r.ErrorDetails?.RecommendedAction is { Length: > 0 } action) sb.Append($"\n    + RecommendedAction     : {action}");
        return sb.ToString();
    }

    /// <summary>Builds "&amp; 'script' -Name 'value' 'positional'" so that -Name tokens bind as parameters, as pwsh -File does.</summary>
    static string FileInvocation(string path, List<string> args)
    {
        var sb = new StringBuilder("& ").Append(Quote(path));
        foreach (var a in args)
        {
            sb.Append(' ');
            bool isParameter = a.Length > 1 && a[0] == '-' && (char.IsLetter(a[1]) || a[1] == '_') &&
                               a.Skip(1).All(c => char.IsLetterOrDigit(c) || c is '_' or '-' or ':');
            sb.Append(isParameter ? a : Quote(a));
        }
        return sb.ToString();
    }

    static string Quote(string s) => "'" + s.Replace("'", "''") + "'";

    static string? FindModule()
    {
        var env = Environment.GetEnvironmentVariable("SAFEDEPLOY_MODULE");
        if (!string.IsNullOrEmpty(env)) return File.Exists(env) ? Path.GetFullPath(env) : null;
        foreach (var candidate in new[] { Path.Combine(AppContext.BaseDirectory, "SafeDeploy", "SafeDeploy.psd1") })
            if (File.Exists(candidate)) return candidate;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var psd1 = Path.Combine(dir.FullName, "SafeDeploy.psd1");
            if (File.Exists(psd1) && File.Exists(Path.Combine(dir.FullName, "module", "SafeDeploy.dll"))) return psd1;
        }
        return null;
    }
}
