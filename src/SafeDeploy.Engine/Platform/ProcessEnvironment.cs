using System.Collections;
using System.Text.RegularExpressions;

namespace SafeDeploy.Engine.Platform;

/// <summary>
/// What a manifest level (the deployment or one phase) says of the environment: <c>environment:</c> (variables to set) and
/// <c>inheritEnvironment:</c> (<c>true</c>: all of the caller's; a list: those names, <c>PREFIX_*</c> allowed; absent: the default).
/// </summary>
internal sealed record EnvironmentSpec(IReadOnlyDictionary<string, string>? Variables = null, EnvironmentInheritance? Inherit = null);

/// <summary>Which of the caller's variables a child inherits beyond the default allow-list.</summary>
internal sealed record EnvironmentInheritance(bool All, bool Defaults, IReadOnlyList<string> Names)
{
    /// <summary><c>inheritEnvironment: true</c>: every variable of the caller, secrets included, on purpose.</summary>
    public static readonly EnvironmentInheritance Everything = new(true, true, []);

    /// <summary><c>inheritEnvironment: false</c>: not even the default allow-list (only what the manifest sets, and PATH).</summary>
    public static readonly EnvironmentInheritance Nothing = new(false, false, []);

    /// <summary><c>inheritEnvironment: [CUDA_VISIBLE_DEVICES, NCCL_*]</c>: the default allow-list plus these names.</summary>
    public static EnvironmentInheritance Of(IEnumerable<string> names) => new(false, true, names.ToList());

    internal bool Matches(string name) => All || Names.Any(n => ProcessEnvironment.NameMatches(n, name));
}

/// <summary>
/// The environment SafeDeploy gives what it runs for a deployment (run phases, services, the try-mode watchdog): built
/// from nothing, never the deployer's whole environment, so that SSH_AUTH_SOCK, tokens, keys and passwords of the
/// person running SafeDeploy do not reach a build script or a service. By default a child gets the safe
/// <see cref="DefaultPath"/>, the caller's <see cref="DefaultAllowList"/> (HOME, USER, LOGNAME, LANG, LANGUAGE, LC_*,
/// TERM, TZ), and SafeDeploy's own SAFEDEPLOY_* variables; a manifest adds variables (<c>environment:</c>) and
/// inherits more of the caller's on purpose (<c>inheritEnvironment:</c>).
/// </summary>
internal sealed class ProcessEnvironment
{
    /// <summary>PATH when neither the manifest sets one nor inherits the caller's: system directories only, no '.'.</summary>
    public const string DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    /// <summary>Caller variables a child gets without asking: they say who and where, never grant anything.</summary>
    public static readonly IReadOnlyList<string> DefaultAllowList = ["HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "LC_*", "TERM", "TZ"];

    static readonly Regex NamePattern = new("^[A-Za-z_][A-Za-z0-9_]*$", RegexOptions.CultureInvariant);
    static readonly Regex InheritPattern = new(@"^[A-Za-z_][A-Za-z0-9_]*\*?$", RegexOptions.CultureInvariant);

    readonly SortedDictionary<string, string> variables;

    ProcessEnvironment(SortedDictionary<string, string> variables) => this.variables = variables;

    /// <summary>Every variable the child starts with, sorted by name.</summary>
    public IReadOnlyDictionary<string, string> Variables => variables;

    /// <summary>The default environment (allow-list, safe PATH) for <paramref name="caller"/> (null: this process's environment).</summary>
    public static ProcessEnvironment Default(IDictionary? caller = null) => FromManifest(null, null, caller);

    /// <summary>
    /// The environment of one phase: the caller's allow-listed variables (or what <c>inheritEnvironment</c> asks for, the
    /// phase's setting replacing the deployment's), then the deployment's <c>environment:</c>, then the phase's (a phase's
    /// value wins). PATH is <see cref="DefaultPath"/> unless set or inherited explicitly. Caller: null is this process's environment.
    /// </summary>
    public static ProcessEnvironment FromManifest(EnvironmentSpec? deployment, EnvironmentSpec? phase, IDictionary? caller = null)
    {
        caller ??= Environment.GetEnvironmentVariables();
        var inherit = phase?.Inherit ?? deployment?.Inherit;
        var result = new SortedDictionary<string, string>(StringComparer.Ordinal) { ["PATH"] = DefaultPath };
        foreach (DictionaryEntry e in caller)
        {
            if (e.Key is not string name || e.Value is not string value) continue;
            bool allowed = inherit?.Matches(name) == true || ((inherit?.Defaults ?? true) && DefaultAllowList.Any(p => NameMatches(p, name)));
            if (allowed) result[name] = value;
        }
        foreach (var level in new[] { deployment, phase })
            foreach (var (k, v) in level?.Variables ?? new Dictionary<string, string>())
            {
                if (ValidateName(k) is { } problem) throw new ArgumentException(problem, nameof(deployment));
                result[k] = v;
            }
        return new ProcessEnvironment(result);
    }

    /// <summary>A copy with <paramref name="overrides"/> set (SafeDeploy's own SAFEDEPLOY_ROOT, _PHASE, ...; a null value removes one).</summary>
    public ProcessEnvironment With(IEnumerable<KeyValuePair<string, string?>> overrides)
    {
        var copy = new SortedDictionary<string, string>(variables, StringComparer.Ordinal);
        foreach (var (k, v) in overrides)
            if (v is null) copy.Remove(k); else copy[k] = v;
        return new ProcessEnvironment(copy);
    }

    /// <summary>
    /// The changes to apply over <paramref name="parent"/> (the environment a new process would inherit; null: this
    /// process's) so that the child has exactly <see cref="Variables"/>: every parent variable not kept maps to null (CliWrap
    /// and ProcessStartInfo remove a variable given as null).
    /// </summary>
    public IReadOnlyDictionary<string, string?> AsOverlay(IDictionary? parent = null)
    {
        parent ??= Environment.GetEnvironmentVariables();
        var overlay = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (DictionaryEntry e in parent)
            if (e.Key is string name && !variables.ContainsKey(name)) overlay[name] = null;
        foreach (var (k, v) in variables) overlay[k] = v;
        return overlay;
    }

    /// <summary>Null when <paramref name="name"/> can be an environment variable's name; else what is wrong (for the manifest's error).</summary>
    public static string? ValidateName(string name) => NamePattern.IsMatch(name) ? null
        : $"'{name}' is not a valid environment variable name (letters, digits and '_', not starting with a digit).";

    /// <summary>Null when <paramref name="entry"/> is a valid <c>inheritEnvironment</c> list entry (a name, or a prefix ending in '*').</summary>
    public static string? ValidateInheritEntry(string entry) => InheritPattern.IsMatch(entry) ? null
        : $"'{entry}' is not a variable name or a prefix ending in '*' (e.g. CUDA_VISIBLE_DEVICES, NCCL_*).";

    internal static bool NameMatches(string pattern, string name) =>
        pattern.EndsWith('*') ? name.StartsWith(pattern[..^1], StringComparison.Ordinal) : name == pattern;
}
