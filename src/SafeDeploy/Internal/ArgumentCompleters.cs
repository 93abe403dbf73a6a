using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Language;
using System.Management.Automation.Runspaces;
using System.Runtime.CompilerServices;

namespace SafeDeploy.Internal;

/// <summary>
/// Tab completion for SafeDeploy's names. PowerShell creates these classes from [ArgumentCompleter(typeof(...))] on
/// the cmdlet parameters, possibly while it only builds the cmdlet's metadata: so no engine type appears in a field,
/// signature or base class here, and engine code is reached only from the NoInlining methods below, which run when a
/// user presses Tab (after the module initializer put the engine's load context in place). Completion reads; it never
/// creates a directory or takes a lock, and a failure completes nothing rather than writing an error.
/// </summary>
public abstract class SafeDeployCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        IEnumerable<string> candidates;
        try { candidates = Candidates(fakeBoundParameters).ToList(); }
        catch (Exception) { return []; }
        var pattern = WildcardPattern.Get(WildcardPattern.Escape(wordToComplete.Trim('\'', '"')) + "*", WildcardOptions.IgnoreCase);
        return candidates.Distinct(StringComparer.Ordinal).Where(pattern.IsMatch).Order(StringComparer.Ordinal)
            .Select(c => new CompletionResult(Quote(c), c, CompletionResultType.ParameterValue, c)).ToList();
    }

    /// <summary>Every value that could be completed, given the parameters already on the command line.</summary>
    protected abstract IEnumerable<string> Candidates(IDictionary bound);

    /// <summary>A parameter already typed on the command line, as a string (null when absent).</summary>
    protected static string? Bound(IDictionary bound, string name)
    {
        if (!bound.Contains(name)) return null;
        var v = bound[name] is PSObject p ? p.BaseObject : bound[name];
        return v is IEnumerable e and not string ? e.Cast<object>().FirstOrDefault()?.ToString() : v?.ToString();
    }

    /// <summary>A path typed on the command line, resolved like the cmdlets do (~ and the current location).</summary>
    protected static string? BoundPath(IDictionary bound, string name)
    {
        var p = Bound(bound, name);
        if (string.IsNullOrEmpty(p)) return null;
        if (p == "~" || p.StartsWith("~/", StringComparison.Ordinal)) p = Environment.GetEnvironmentVariable("HOME") + p[1..];
        if (Path.IsPathRooted(p)) return Path.GetFullPath(p);
        var here = Runspace.DefaultRunspace?.SessionStateProxy.Path.CurrentFileSystemLocation.ProviderPath ?? Environment.CurrentDirectory;
        return Path.GetFullPath(Path.Combine(here, p));
    }

    /// <summary>Names of the entries of a directory that end with <paramref name="suffix"/> (the suffix removed); none when it is absent.</summary>
    protected static IEnumerable<string> Entries(string directory, string suffix, bool directories = false)
    {
        if (!Directory.Exists(directory)) return [];
        var names = directories ? Directory.EnumerateDirectories(directory) : Directory.EnumerateFiles(directory);
        return names.Select(Path.GetFileName).OfType<string>()
            .Where(n => n.EndsWith(suffix, StringComparison.Ordinal) && !n.StartsWith('.'))
            .Select(n => n[..^suffix.Length]).ToList();
    }

    static string Quote(string s) =>
        s.Length == 0 || s[0] == '-' || s.Any(c => char.IsWhiteSpace(c) || "'\"$`;(){}@#,&|<>*?[]".Contains(c)) ? "'" + s.Replace("'", "''") + "'" : s;

    /// <summary>SafeDeploy's state directory as the cmdlets find it (-StateDirectory on the line, else the default), without creating it.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    protected static string StateDir(IDictionary bound) =>
        Engine.StateDirectories.StateDirectoryManager.Resolve(Engine.StateDirectories.StateDirectoryManager.DefaultName, basePath: BoundPath(bound, "StateDirectory")).StateDir;

    [MethodImpl(MethodImplOptions.NoInlining)]
    protected static string LockDir() =>
        Engine.StateDirectories.StateDirectoryManager.Resolve(Engine.StateDirectories.StateDirectoryManager.DefaultName).LockDir;
}

/// <summary>Named locks (Invoke-WithLock -Name, Get-LockHolder -Name): the lock files in the state directory's locks/.</summary>
public sealed class LockNameCompleter : SafeDeployCompleter
{
    protected override IEnumerable<string> Candidates(IDictionary bound) => Entries(LockDir(), ".lock");
}

/// <summary>Deployments with a journal (Undo-SafeDeploy, Confirm-SafeDeploy, Get-SafeDeployHistory -Name).</summary>
public sealed class DeploymentNameCompleter : SafeDeployCompleter
{
    protected override IEnumerable<string> Candidates(IDictionary bound) =>
        Entries(Path.Combine(StateDir(bound), "deployments"), "", directories: true);
}

/// <summary>Run ids (Undo-SafeDeploy -Id): the journals of the deployment named on the line, else of every deployment, newest first.</summary>
public sealed class RunIdCompleter : SafeDeployCompleter
{
    protected override IEnumerable<string> Candidates(IDictionary bound)
    {
        var root = Path.Combine(StateDir(bound), "deployments");
        var name = Bound(bound, "Name");
        var dirs = name is not null ? [Path.Combine(root, name)] : Entries(root, "", directories: true).Select(d => Path.Combine(root, d));
        return dirs.SelectMany(d => Entries(d, ".journal")).OrderDescending(StringComparer.Ordinal);
    }
}

/// <summary>Phase names (Invoke-SafeDeploy -Phase), read from the manifest given on the line.</summary>
public sealed class PhaseNameCompleter : SafeDeployCompleter
{
    protected override IEnumerable<string> Candidates(IDictionary bound) =>
        (BoundPath(bound, "Manifest") ?? BoundPath(bound, "Path")) is { } path && File.Exists(path) ? Phases(path) : [];

    [MethodImpl(MethodImplOptions.NoInlining)]
    static IEnumerable<string> Phases(string manifest) =>
        new Engine.Manifest.ManifestParser().ParseFile(manifest).Manifest?.Phases.Select(p => p.Name).ToList() ?? [];
}

/// <summary>Job names (Sync-JobStatus, Get-JobStatus -JobName): the statuses in the clone given with -Repository, as last fetched, plus the outbox.</summary>
public sealed class JobNameCompleter : SafeDeployCompleter
{
    protected override IEnumerable<string> Candidates(IDictionary bound) =>
        BoundPath(bound, "Repository") is { } repo && Directory.Exists(repo) ? Jobs(repo, bound) : [];

    [MethodImpl(MethodImplOptions.NoInlining)]
    static IEnumerable<string> Jobs(string repo, IDictionary bound) =>
        Engine.JobStatus.JobStatusReader.Read(new Engine.JobStatus.JobStatusOptions
        {
            Repository = repo, StatusDirectory = Bound(bound, "StatusDirectory") ?? "data/status",
            Remote = Bound(bound, "Remote") ?? "origin", Branch = Bound(bound, "Branch"),
            GitTimeout = TimeSpan.FromSeconds(5), NetworkTimeout = TimeSpan.FromSeconds(5),
        }, [], fetch: false).Select(r => r.JobName).ToList();
}
