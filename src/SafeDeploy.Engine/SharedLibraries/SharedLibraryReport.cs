namespace SafeDeploy.Engine.SharedLibraries;

/// <summary>One throw-away process run with LD_PRELOAD set to the library.</summary>
public sealed record CanaryResult
{
    /// <summary>The command line that ran ("/bin/true", "/bin/sh -c true", "sudo -V").</summary>
    public required string Program { get; init; }
    /// <summary>Exit code (-1 when killed at the timeout).</summary>
    public int ExitCode { get; init; }
    /// <summary>The signal that ended the process (11 = SIGSEGV), or null when it exited normally.</summary>
    public int? Signal { get; init; }
    public TimeSpan Duration { get; init; }
    public string StdErr { get; init; } = "";
    /// <summary>Killed because it did not finish within the timeout (a hanging constructor).</summary>
    public bool TimedOut { get; init; }
    /// <summary>For -Probe programs: the exit code of the same command without the library (what "normal" is for it).</summary>
    public int? BaselineExitCode { get; init; }
    /// <summary>Not run: the probe's program is not installed here (then Passed is false too: not run is not passed).</summary>
    public bool Skipped { get; init; }
    /// <summary>It ran and behaved as without the library (exit code, no signal, no timeout, no loader error).</summary>
    public bool Passed { get; init; }
    /// <summary>Why it did not pass (null when it did).</summary>
    public string? Problem { get; init; }
}

/// <summary>What Test-SharedLibrary found out about a library, and whether it may go into ld.so.preload.</summary>
public sealed record SharedLibraryReport
{
    public required string Path { get; init; }
    public bool IsElf { get; init; }
    /// <summary>"ELF32" or "ELF64" (null when not an ELF file).</summary>
    public string? Class { get; init; }
    /// <summary>The library's architecture ("x86-64", "i386", "aarch64", ...).</summary>
    public string? Machine { get; init; }
    /// <summary>The architecture this machine's processes load ("x86-64" on a 64-bit PC).</summary>
    public required string HostMachine { get; init; }
    /// <summary>e_type: "ET_DYN", "ET_EXEC", "ET_REL", ...</summary>
    public string? Type { get; init; }
    /// <summary>SharedLibrary, PieExecutable, Executable, ... (PIE executables are ET_DYN too).</summary>
    public string? Kind { get; init; }
    public bool IsSharedObject { get; init; }
    public bool MatchesHost { get; init; }
    public string? SoName { get; init; }
    /// <summary>DT_NEEDED entries: the libraries the loader must find first.</summary>
    public IReadOnlyList<string> Needed { get; init; } = Array.Empty<string>();
    /// <summary>Asked-for symbols the library exports.</summary>
    public IReadOnlyList<string> SymbolsFound { get; init; } = Array.Empty<string>();
    /// <summary>Asked-for symbols the library does not export.</summary>
    public IReadOnlyList<string> SymbolsMissing { get; init; } = Array.Empty<string>();
    /// <summary>How many symbols the library exports in all.</summary>
    public int ExportedSymbolCount { get; init; }
    public IReadOnlyList<CanaryResult> Canary { get; init; } = Array.Empty<CanaryResult>();
    /// <summary>
    /// True only when every check held: a well-formed ELF file of the host's architecture, a shared object (not an
    /// executable), every asked-for symbol exported, and every canary and probe that ran passed. Probes that could not
    /// run are in <see cref="ProbesSkipped"/> (with a warning) and vouch for nothing.
    /// </summary>
    public bool IsValid { get; init; }
    /// <summary>-Probe command lines not run because their program is not installed here.</summary>
    public IReadOnlyList<string> ProbesSkipped { get; init; } = Array.Empty<string>();
    /// <summary>Each failed check, in words.</summary>
    public IReadOnlyList<string> Problems { get; init; } = Array.Empty<string>();
    public string? Sha256 { get; init; }
    public long Size { get; init; }
}
