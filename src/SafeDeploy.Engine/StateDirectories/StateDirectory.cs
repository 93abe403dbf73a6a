using System.Text.RegularExpressions;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.StateDirectories;

/// <summary>Where a tool's state lives: per user (XDG), for the system (like systemd's StateDirectory=), or under one base.</summary>
public enum StateScope { User, System }

/// <summary>A tool's state, log, cache and lock directories, and what creating them did.</summary>
public sealed record StateDirectory
{
    public required string Name { get; init; }
    public StateScope Scope { get; init; }
    public required string StateDir { get; init; }
    public required string LogDir { get; init; }
    public required string CacheDir { get; init; }
    public required string LockDir { get; init; }
    public required string LogFile { get; init; }
    /// <summary>The directories this call created (empty when all existed).</summary>
    public IReadOnlyList<string> Created { get; init; } = Array.Empty<string>();
    /// <summary>The directories whose looser mode this call tightened (-Repair).</summary>
    public IReadOnlyList<string> Repaired { get; init; } = Array.Empty<string>();
    public IReadOnlyList<string> Warnings { get; init; } = Array.Empty<string>();
    public string Mode { get; init; } = "0700";

    /// <summary>Path of a named lock file in <see cref="LockDir"/>.</summary>
    public string LockPath(string lockName) => Path.Combine(LockDir, StateDirectoryManager.ValidateName(lockName, "lock name") + ".lock");
}

/// <summary>Computes and creates state directories.</summary>
internal static class StateDirectoryManager
{
    /// <summary>The module's own tool name: its named locks, journals and model cache live here by default.</summary>
    public const string DefaultName = "safedeploy";
    static readonly Regex validName = new("^[A-Za-z0-9_][A-Za-z0-9._-]*$", RegexOptions.CultureInvariant);

    public static string ValidateName(string name, string what = "tool name")
    {
        if (string.IsNullOrEmpty(name) || !validName.IsMatch(name) || name.Contains(".."))
            throw new SafeDeployException("InvalidName", ErrorKind.InvalidArgument, name,
                $"'{name}' is not a valid {what}: use letters, digits, '.', '_' and '-', not starting with '.' or containing '..'.",
                $"Choose a {what} such as 'ollama-shim'.");
        return name;
    }

    /// <summary>Where the directories would be, without creating anything.</summary>
    public static StateDirectory Resolve(string name, StateScope scope = StateScope.User, string? basePath = null, uint mode = 0x1C0)
    {
        ValidateName(name);
        string state, log, cache, locks;
        if (basePath is not null)
        {
            var b = Path.GetFullPath(basePath);
            (state, log, cache, locks) = (Path.Combine(b, "state"), Path.Combine(b, "log"), Path.Combine(b, "cache"), Path.Combine(b, "locks"));
        }
        else if (scope == StateScope.System)
        {
            (state, log, cache) = ($"/var/lib/{name}", $"/var/log/{name}", $"/var/cache/{name}");
            locks = Path.Combine(state, "locks");
        }
        else
        {
            state = Path.Combine(XdgBase("XDG_STATE_HOME", ".local/state"), name);
            cache = Path.Combine(XdgBase("XDG_CACHE_HOME", ".cache"), name);
            log = Path.Combine(state, "log");
            locks = Path.Combine(state, "locks");
        }
        return new StateDirectory
        {
            Name = name, Scope = scope, StateDir = state, LogDir = log, CacheDir = cache, LockDir = locks,
            LogFile = Path.Combine(log, name + ".log"), Mode = "0" + Convert.ToString(mode, 8),
        };
    }

    /// <summary>Creates the directories (idempotent, safe to race with other processes) and says what it did.</summary>
    public static StateDirectory Initialize(string name, StateScope scope = StateScope.User, string? basePath = null,
        uint mode = 0x1C0, bool repair = false, uint? ownerUid = null, uint? ownerGid = null, IOperationReporter? reporter = null)
    {
        var layout = Resolve(name, scope, basePath, mode);
        var created = new List<string>();
        var repaired = new List<string>();
        var warnings = new List<string>();
        foreach (var dir in new[] { layout.StateDir, layout.LogDir, layout.CacheDir, layout.LockDir })
        {
            var outcome = SecureDirectory.Ensure(dir, mode, ownerUid, ownerGid, checkMode: true, repair: repair);
            created.AddRange(outcome.CreatedPaths);
            if (outcome.Repaired) repaired.Add(dir);
            if (outcome.Warning is { } w) { warnings.Add(w); reporter?.Warning(w); }
        }
        return layout with { Created = created, Repaired = repaired, Warnings = warnings };
    }

    /// <summary>The default SafeDeploy state directory (named locks, journals, model cache), created on first use.</summary>
    public static StateDirectory Default(IOperationReporter? reporter = null) =>
        Initialize(DefaultName, reporter: reporter);

    static string XdgBase(string variable, string fallbackUnderHome)
    {
        var v = Environment.GetEnvironmentVariable(variable);
        if (!string.IsNullOrEmpty(v) && Path.IsPathRooted(v)) return v; // the spec ignores relative values
        var home = Environment.GetEnvironmentVariable("HOME");
        if (string.IsNullOrEmpty(home)) home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        if (string.IsNullOrEmpty(home))
            throw new SafeDeployException("NoHome", ErrorKind.ObjectNotFound, variable,
                $"Neither {variable} nor HOME is set, so there is no place for per-user state.", "Set HOME, or use -Scope System or -Path.");
        return Path.Combine(home, fallbackUnderHome);
    }
}
