using System.Security.Cryptography;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Platform;
using SafeDeploy.Engine.Platform.Elf;

namespace SafeDeploy.Engine.SharedLibraries;

/// <summary>What to check beyond the ELF structure.</summary>
internal sealed record SharedLibraryCheckOptions
{
    /// <summary>Symbols the library must export.</summary>
    public IReadOnlyList<string> Symbols { get; init; } = Array.Empty<string>();
    /// <summary>Load the library into throw-away processes (/bin/true, /bin/sh -c true and the probes).</summary>
    public bool Canary { get; init; }
    /// <summary>Extra programs a broken preload would lock you out of, as command lines ("sudo -V", "/usr/sbin/sshd -t"); run only where present.</summary>
    public IReadOnlyList<string> Probes { get; init; } = Array.Empty<string>();
    /// <summary>How long each canary process may take before it is killed and reported as hanging.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(10);
    public IOperationReporter Reporter { get; init; } = NullReporter.Instance;
}

/// <summary>
/// Decides whether a library may go into ld.so.preload: our own ELF reader checks the file (magic, class and machine
/// against the host, ET_DYN and not a PIE executable, exported symbols), then throw-away child processes load it with
/// LD_PRELOAD under a timeout. Nothing here touches ld.so.preload or any running process.
/// </summary>
internal static class SharedLibraryValidator
{
    static readonly string[][] standardCanaries = [["/bin/true"], ["/bin/sh", "-c", "true"]];

    /// <summary>
    /// Checks <paramref name="path"/>. A missing file throws (ObjectNotFound); every other defect is reported in the
    /// result's <see cref="SharedLibraryReport.Problems"/> with IsValid false.
    /// </summary>
    public static async Task<SharedLibraryReport> ValidateAsync(string path, SharedLibraryCheckOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new SharedLibraryCheckOptions();
        path = Path.GetFullPath(path);
        if (Directory.Exists(path))
            throw new SafeDeployException("NotAFile", ErrorKind.InvalidArgument, path, $"'{path}' is a directory, not a library.", "Give the path of a .so file.");
        if (!File.Exists(path))
            throw new SafeDeployException("LibraryNotFound", ErrorKind.ObjectNotFound, path, $"Library '{path}' does not exist.",
                "Check the path, or build the library first.");

        var problems = new List<string>();
        var info = new FileInfo(path);
        string? sha = null;
        try { await using var s = File.OpenRead(path); sha = Convert.ToHexString(await SHA256.HashDataAsync(s, cancellationToken)).ToLowerInvariant(); }
        catch (IOException) { }
        catch (UnauthorizedAccessException e)
        {
            throw new SafeDeployException("AccessDenied", ErrorKind.PermissionDenied, path, $"Cannot read '{path}': permission denied.", "Run as a user who may read it.", e);
        }

        ElfFile? elf = null;
        try { elf = ElfFile.Read(path); }
        catch (SafeDeployException e) when (e.Kind == ErrorKind.InvalidData) { problems.Add(e.Message); }

        var report = new SharedLibraryReport { Path = path, HostMachine = ElfMachines.HostName, Sha256 = sha, Size = info.Length };
        if (elf is null)
        {
            problems.Add("Not validated further: a file that is not a well-formed ELF library is never loaded, not even by a canary.");
            return report with { Problems = problems, SymbolsMissing = options.Symbols.ToList() };
        }

        bool matches = elf.MatchesHost;
        if (!matches)
            problems.Add($"It is a {ClassName(elf.Class)} {elf.MachineName} library; processes on this machine are {ElfMachines.HostName} and would not load it (the loader ignores a preload of the wrong architecture, leaving the shim silently absent).");
        bool shared = elf.Kind == ElfKind.SharedLibrary;
        if (!shared)
            problems.Add(elf.Kind switch
            {
                ElfKind.PieExecutable => "It is a position-independent executable (ET_DYN, but with PT_INTERP/DF_1_PIE), not a shared library.",
                ElfKind.Executable => "It is an executable (ET_EXEC), not a shared library.",
                ElfKind.Relocatable => "It is an object file (ET_REL), not a linked shared library: link it with -shared.",
                _ => $"It is an ELF file of type {TypeName(elf.Type)}, not a shared library.",
            });

        var exported = new HashSet<string>(elf.ExportedSymbols, StringComparer.Ordinal);
        var found = options.Symbols.Where(exported.Contains).ToList();
        var missing = options.Symbols.Where(s => !exported.Contains(s)).ToList();
        if (missing.Count > 0)
            problems.Add($"It does not export {(missing.Count == 1 ? "symbol" : "symbols")} {string.Join(", ", missing)} (checked in its dynamic symbol table).");

        var canaries = new List<CanaryResult>();
        if (options.Canary)
        {
            if (!matches || !shared)
                problems.Add("Canary processes were not run: the library failed the checks above.");
            else
            {
                foreach (var argv in standardCanaries)
                    canaries.Add(await RunCanaryAsync(path, argv, null, options, cancellationToken).ConfigureAwait(false));
                foreach (var probe in options.Probes)
                    canaries.Add(await RunProbeAsync(path, probe, options, cancellationToken).ConfigureAwait(false));
                problems.AddRange(canaries.Where(c => !c.Passed && !c.Skipped).Select(c => $"Canary '{c.Program}': {c.Problem}"));
            }
        }

        return report with
        {
            IsElf = true, Class = ClassName(elf.Class), Machine = elf.MachineName, Type = TypeName(elf.Type), Kind = elf.Kind.ToString(),
            IsSharedObject = shared, MatchesHost = matches, SoName = elf.SoName, Needed = elf.Needed, SymbolsFound = found,
            SymbolsMissing = missing, ExportedSymbolCount = exported.Count, Canary = canaries, Problems = problems, IsValid = problems.Count == 0,
            ProbesSkipped = canaries.Where(c => c.Skipped).Select(c => c.Program).ToList(),
        };
    }

    public static SharedLibraryReport Validate(string path, SharedLibraryCheckOptions? options = null, CancellationToken cancellationToken = default) =>
        ValidateAsync(path, options, cancellationToken).GetAwaiter().GetResult();

    static async Task<CanaryResult> RunProbeAsync(string library, string commandLine, SharedLibraryCheckOptions options, CancellationToken token)
    {
        var argv = ShellWords.Split(commandLine);
        var program = argv.Count == 0 ? null : ExternalCommand.Which(argv[0]);
        if (program is null)
        {
            // Not run is not passed: the report says so, and IsValid only vouches for what ran.
            var why = argv.Count == 0 ? "the probe is empty" : $"'{argv[0]}' is not installed here";
            options.Reporter.Warning($"Probe '{commandLine}' was skipped: {why}. It did not run, so it proves nothing about this library; run the check where the program exists.");
            return new CanaryResult { Program = commandLine, Skipped = true, Passed = false, Problem = $"{why}; not run." };
        }
        // What the probe does without the library is its normal (sshd -t as a user may well exit 255): the library must not change it.
        var baseline = await Run([program, .. argv.Skip(1)], null, options, token).ConfigureAwait(false);
        int? baselineCode = baseline.TimedOut ? null : baseline.ExitCode;
        return await RunCanaryAsync(library, [program, .. argv.Skip(1)], baselineCode, options, token, commandLine).ConfigureAwait(false);
    }

    static async Task<CanaryResult> RunCanaryAsync(string library, string[] argv, int? baseline, SharedLibraryCheckOptions options,
        CancellationToken token, string? display = null)
    {
        display ??= string.Join(' ', argv);
        options.Reporter.Verbose($"Canary: LD_PRELOAD={library} {display} (timeout {options.Timeout.TotalSeconds:0.#} s)");
        var r = await Run(argv, library, options, token).ConfigureAwait(false);
        int? signal = !r.TimedOut && r.ExitCode is > 128 and < 128 + 65 ? r.ExitCode - 128 : null;
        int expected = baseline ?? 0;
        string? problem =
            r.TimedOut ? $"did not finish within {options.Timeout.TotalSeconds:0.#} s and was killed: the library's constructor hangs (or waits for something that never comes)."
            : LoaderError(r.StandardError) is { } loader ? $"the loader could not load the library: {loader}"
            : signal is { } sig && r.ExitCode != expected ? $"killed by {SignalName(sig)} (exit code {r.ExitCode}): loading the library crashes processes."
            : r.ExitCode != expected ? $"exited with {r.ExitCode} (expected {expected}{(baseline is null ? "" : ", as without the library")}). stderr: {FirstLines(r.StandardError)}"
            : null;
        return new CanaryResult
        {
            Program = display, ExitCode = r.ExitCode, Signal = signal, Duration = r.Duration, StdErr = r.StandardError, TimedOut = r.TimedOut,
            BaselineExitCode = baseline, Passed = problem is null, Problem = problem,
        };
    }

    static Task<CommandResult> Run(string[] argv, string? library, SharedLibraryCheckOptions options, CancellationToken token)
    {
        var env = new Dictionary<string, string?> { ["LD_PRELOAD"] = library };
        return new ExternalCommand { Program = argv[0], Arguments = argv[1..], Environment = env, Timeout = options.Timeout }.RunAsync(token);
    }

    /// <summary>The dynamic loader's own complaint on stderr, if any: an unresolved DT_NEEDED, a preload it ignored.</summary>
    internal static string? LoaderError(string stderr)
    {
        foreach (var line in stderr.Split('\n'))
            if (line.Contains("error while loading shared libraries", StringComparison.Ordinal)
                || (line.Contains("ld.so", StringComparison.Ordinal) && line.Contains("cannot be preloaded", StringComparison.Ordinal))
                || line.Contains("symbol lookup error", StringComparison.Ordinal))
                return line.Trim();
        return null;
    }

    static string FirstLines(string text)
    {
        var t = text.Trim();
        return t.Length == 0 ? "(empty)" : t.Length > 400 ? t[..400] + "..." : t;
    }

    internal static string SignalName(int signal) => signal switch
    {
        4 => "SIGILL", 6 => "SIGABRT", 7 => "SIGBUS", 8 => "SIGFPE", 9 => "SIGKILL", 11 => "SIGSEGV", 13 => "SIGPIPE", 15 => "SIGTERM",
        _ => $"signal {signal}",
    };

    static string ClassName(ElfClass c) => c == ElfClass.Elf32 ? "ELF32" : "ELF64";

    static string TypeName(ElfType t) => t switch
    {
        ElfType.SharedObject => "ET_DYN", ElfType.Executable => "ET_EXEC", ElfType.Relocatable => "ET_REL", ElfType.Core => "ET_CORE",
        _ => $"0x{(int)t:x}",
    };
}
