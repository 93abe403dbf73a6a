namespace SafeDeploy.Host;

/// <summary>What the command line asked for.</summary>
sealed record HostOptions(string? Command, string? File, IReadOnlyList<string> ScriptArgs, bool Verbose, bool NoModule);

/// <summary>
/// safedeploy -Command '…' | -File script.ps1 [args] | script.ps1 [args]: a full PowerShell (Microsoft.PowerShell.SDK) with
/// SafeDeploy imported, with pwsh's exit codes: -File exits 0 unless the script ran `exit N` (N) or stopped with an
/// unhandled error (1); -Command exits 1 when its last statement failed; 130 after Ctrl+C, 143 after SIGTERM.
/// </summary>
static class Program
{
    const string Usage = """
        Usage: safedeploy [-Verbose] [-NoModule] [-NoProfile] [-NonInteractive] -Command <script> | -File <script.ps1> [args...] | <script.ps1> [args...]
          -Command, -c      run PowerShell text ('-' reads it from standard input)
          -File, -f         run a script file with its arguments, as pwsh -File does
          -Verbose          show verbose messages (sets $VerbosePreference = 'Continue')
          -NoModule         do not import SafeDeploy (import it yourself with Import-Module)
          -NoProfile, -NonInteractive, -NoLogo   accepted as pwsh does (safedeploy never reads a profile or prompts a terminal)
        The module is found from SAFEDEPLOY_MODULE (a path to SafeDeploy.psd1), beside this program, in the checkout above it,
        or inside it (the single-file build).
        """;

    static int Main(string[] args)
    {
        // Before the engine starts: PowerShell's telemetry client (Application Insights) costs about 50 ms of CPU at every
        // start (bench/results/foundation.md) and has nothing to report for an embedded host. A user's own setting wins.
        if (Environment.GetEnvironmentVariable("POWERSHELL_TELEMETRY_OPTOUT") is null)
            Environment.SetEnvironmentVariable("POWERSHELL_TELEMETRY_OPTOUT", "1");
        // A rollout's step on this host (the controller sends it; not for people): the engine alone, no PowerShell.
        if (args is [var step] && step.Equals("-FleetStep", StringComparison.OrdinalIgnoreCase))
        {
            if (ModuleLocator.Find() is not { } psd1) { Console.Error.WriteLine("safedeploy: cannot find SafeDeploy.psd1 for the fleet step; set SAFEDEPLOY_MODULE."); return 69; }
            return FleetStep.Run(psd1);
        }
        HostOptions options;
        try { options = Parse(args); }
        catch (UsageException e)
        {
            if (e.Message.Length == 0) { Console.WriteLine(Usage); return 0; }
            Console.Error.WriteLine($"safedeploy: {e.Message}\n{Usage}");
            return 64;
        }
        if (options.File is { } f && !System.IO.File.Exists(f)) { Console.Error.WriteLine($"safedeploy: script '{f}' not found."); return 64; }

        string? module = null;
        if (!options.NoModule)
        {
            try { module = ModuleLocator.Find(); }
            catch (IOException e) { Console.Error.WriteLine($"safedeploy: cannot unpack the embedded module: {e.Message}"); return 69; }
            if (module is null)
            {
                Console.Error.WriteLine("safedeploy: cannot find SafeDeploy.psd1 with a built bin/SafeDeploy.dll. Build it (dotnet build) or set SAFEDEPLOY_MODULE.");
                return 69;
            }
        }
        return ScriptRunner.Run(options, module);
    }

    sealed class UsageException(string message) : Exception(message);

    static HostOptions Parse(string[] args)
    {
        string? command = null, file = null;
        var scriptArgs = new List<string>();
        bool verbose = false, noModule = false;
        for (int i = 0; i < args.Length; i++)
        {
            var a = args[i];
            string Next() => i + 1 < args.Length ? args[++i] : throw new UsageException($"{a} needs a value.");
            switch (a.ToLowerInvariant())
            {
                case "-command" or "-c" or "--command":
                    command = Next();
                    if (command == "-") command = Console.In.ReadToEnd();
                    else if (i + 1 < args.Length) command += " " + string.Join(' ', args[(i + 1)..]);
                    return new HostOptions(command, null, scriptArgs, verbose, noModule);
                case "-file" or "-f" or "--file":
                    file = Next();
                    scriptArgs.AddRange(args[(i + 1)..]);
                    return new HostOptions(null, file, scriptArgs, verbose, noModule);
                case "-verbose" or "--verbose": verbose = true; break;
                case "-nomodule": noModule = true; break;
                case "-noprofile" or "-nop" or "-noninteractive" or "-noni" or "-nologo": break; // as pwsh: nothing to skip here
                case "-h" or "-help" or "--help" or "-?": throw new UsageException("");
                default:
                    if (a.StartsWith('-')) throw new UsageException($"unknown option {a}");
                    scriptArgs.AddRange(args[(i + 1)..]);
                    return new HostOptions(null, a, scriptArgs, verbose, noModule);
            }
        }
        throw new UsageException("give -Command or -File.");
    }
}
