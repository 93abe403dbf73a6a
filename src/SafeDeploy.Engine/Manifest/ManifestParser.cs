using System.Text.RegularExpressions;
using SafeDeploy.Engine.Actions;
using SafeDeploy.Engine.Errors;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace SafeDeploy.Engine.Manifest;

/// <summary>What parsing found: the manifest when it has no errors, and every problem (errors and warnings).</summary>
internal sealed record ManifestParseResult(DeploymentManifest? Manifest, IReadOnlyList<ManifestProblem> Problems)
{
    public bool IsValid => Manifest is not null;
    public IEnumerable<ManifestProblem> Errors => Problems.Where(p => p.Severity == ProblemSeverity.Error);

    /// <summary>The manifest, or a ManifestInvalid exception listing every error with its position.</summary>
    public DeploymentManifest GetOrThrow(string target)
    {
        if (Manifest is not null) return Manifest;
        var errors = Errors.ToList();
        throw new SafeDeployException("ManifestInvalid", ErrorKind.InvalidData, target,
            $"The manifest has {errors.Count} error(s); nothing was run:\n" + string.Join("\n", errors.Select(e => "  " + e)),
            "Fix each problem at the line and column given (Test-SafeDeployManifest lists them as objects), then run again.");
    }
}

/// <summary>Parses a deployment manifest, reporting every problem at once with file, line and column.</summary>
internal sealed partial class ManifestParser
{
    static readonly string[] topKeys = ["name", "description", "variables", "lock", "environment", "inheritEnvironment", "phases"];
    static readonly string[] phaseKeys = ["name", "dependsOn", "resources", "timeout", "continueOnError", "writes"];

    [GeneratedRegex("^[A-Za-z0-9_][A-Za-z0-9._-]*$")]
    private static partial Regex NamePattern();

    readonly ActionRegistry registry;

    public ManifestParser(ActionRegistry? registry = null) => this.registry = registry ?? ActionRegistry.CreateDefault();

    /// <summary>Reads and parses a manifest file. <paramref name="root"/> is only offered as the ${root} variable.</summary>
    public ManifestParseResult ParseFile(string path, IReadOnlyDictionary<string, string>? overrides = null, DeploymentRoot? root = null)
    {
        path = Path.GetFullPath(path);
        if (!File.Exists(path))
            throw new SafeDeployException("ManifestNotFound", ErrorKind.ObjectNotFound, path,
                $"Manifest '{path}' does not exist.", "Check the path of the manifest.");
        return Parse(File.ReadAllText(path), path, overrides, root);
    }

    public ManifestParseResult Parse(string text, string file, IReadOnlyDictionary<string, string>? overrides = null, DeploymentRoot? root = null)
    {
        var builtIns = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["root"] = (root ?? DeploymentRoot.Real).VariableValue,
            ["manifestDir"] = Path.GetDirectoryName(Path.GetFullPath(file)) ?? "",
        };
        var reader = new ManifestReader(file, builtIns) { Source = text };
        var stream = new YamlStream();
        try { stream.Load(new StringReader(text)); }
        catch (YamlException e)
        {
            reader.Problem(e.Start, "YamlSyntax", $"Not valid YAML: {Inner(e)}");
            return new ManifestParseResult(null, reader.Problems);
        }
        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is not YamlMappingNode top)
        {
            var at = stream.Documents.Count == 0 ? Mark.Empty : stream.Documents[0].RootNode.Start;
            reader.Problem(at, "InvalidValue", "A manifest is a YAML mapping with 'name' and 'phases'.");
            return new ManifestParseResult(null, reader.Problems);
        }

        foreach (var (k, _) in top.Children)
            if (k is YamlScalarNode ks && !topKeys.Contains(ks.Value))
                reader.Problem(k, "UnknownKey", $"Unknown key '{ks.Value}' at the top of the manifest. Known keys: {string.Join(", ", topKeys)}.");

        // Variables first (each may use the ones before it), then overrides win.
        var variables = new Dictionary<string, string>(builtIns, StringComparer.Ordinal);
        reader.Variables = variables;
        if (Get(top, "variables") is { } varsNode)
        {
            if (varsNode is YamlMappingNode vm)
            {
                foreach (var (k, v) in vm.Children)
                {
                    var varName = (k as YamlScalarNode)?.Value ?? "";
                    if (overrides is not null && overrides.TryGetValue(varName, out var o)) { variables[varName] = o; continue; }
                    if (reader.ScalarText(v, varName, null) is { } value) variables[varName] = value;
                }
            }
            else if (!(varsNode is YamlScalarNode { Value: null or "" })) reader.Problem(varsNode, "InvalidValue", "'variables' must be a mapping of names to values.");
        }
        if (overrides is not null) foreach (var (k, v) in overrides) variables[k] = v;

        var name = Scalar(reader, top, "name", required: true);
        if (name is not null && !NamePattern().IsMatch(name))
            reader.Problem(Get(top, "name")!, "InvalidValue", $"Deployment name '{name}' may hold only letters, digits, '.', '_' and '-' (it names the journal and the lock).");
        var lockName = Scalar(reader, top, "lock");
        if (lockName is not null && !NamePattern().IsMatch(lockName))
            reader.Problem(Get(top, "lock")!, "InvalidValue", $"Lock name '{lockName}' may hold only letters, digits, '.', '_' and '-'.");
        var description = Scalar(reader, top, "description");
        var environment = new ActionNode(reader, top, "manifest", null!).EnvironmentSpec();

        var phases = new List<PhaseDefinition>();
        var phaseNodes = new Dictionary<string, YamlNode>(StringComparer.Ordinal);
        var dependencyNodes = new List<(string Phase, string Dep, YamlNode At)>();
        var phasesNode = Get(top, "phases");
        if (phasesNode is null) reader.Problem(top, "MissingKey", "The manifest needs 'phases' (a list).");
        else if (phasesNode is not YamlSequenceNode seq || seq.Children.Count == 0)
            reader.Problem(phasesNode, "InvalidValue", "'phases' must be a non-empty list of phases.");
        else
        {
            int index = 0;
            foreach (var pn in seq.Children)
            {
                index++;
                if (pn is not YamlMappingNode pm) { reader.Problem(pn, "InvalidValue", $"Phase #{index} must be a mapping with 'name' and one action."); continue; }
                var phase = ParsePhase(reader, pm, index, dependencyNodes);
                if (phase is null) continue;
                if (phaseNodes.ContainsKey(phase.Name))
                {
                    reader.Problem(pm, "DuplicatePhase", $"Phase name '{phase.Name}' is used twice.", phase.Name);
                    continue;
                }
                phaseNodes[phase.Name] = pm;
                phases.Add(phase);
            }
        }

        // The run holds its deployment lock already: a phase waiting for the same lock file would wait for itself.
        var effectiveLock = lockName ?? name;
        if (effectiveLock is not null && phasesNode is YamlSequenceNode phaseSeq)
            foreach (var pm in phaseSeq.Children.OfType<YamlMappingNode>())
                if (Get(pm, "resources") is { } rn && reader.StringList(rn, "resources", null) is { } rs && rs.Contains(effectiveLock))
                    reader.Problem(rn, "InvalidValue", $"Resource '{effectiveLock}' is the deployment's own lock, which the whole run already holds; use another resource name.",
                        (Get(pm, "name") as YamlScalarNode)?.Value);

        // Phases with errors of their own still count as declared: their dependents get no second, misleading error.
        var declared = (phasesNode as YamlSequenceNode)?.Children.OfType<YamlMappingNode>()
            .Select(m => (Get(m, "name") as YamlScalarNode)?.Value).Where(n => n is not null).ToHashSet(StringComparer.Ordinal) ?? new HashSet<string?>();
        foreach (var (phase, dep, at) in dependencyNodes)
            if (!declared.Contains(dep))
                reader.Problem(at, "UnknownDependency", $"Phase '{phase}' depends on '{dep}', which is not a phase of this manifest.", phase);

        var graph = phases.ToDictionary(p => p.Name, p => (IReadOnlyList<string>)p.DependsOn.Where(phaseNodes.ContainsKey).ToList());
        var cycles = ManifestGraph.Cycles(graph);
        foreach (var cycle in cycles)
        {
            var first = phaseNodes[cycle[0]];
            reader.Problem(first, "DependencyCycle",
                $"Phases depend on each other in a cycle: {string.Join(" -> ", cycle)} (each depends on the next); none of them could ever start.", cycle[0]);
        }

        if (reader.Problems.Any(p => p.Severity == ProblemSeverity.Error) || name is null)
            return new ManifestParseResult(null, Sorted(reader.Problems));

        foreach (var (a, b, path) in ManifestGraph.Races(phases))
        {
            reader.Problem(phaseNodes[b.Name], "RaceWarning",
                $"Phases '{a.Name}' and '{b.Name}' may run at the same time and both write '{path}', but share no resource: give both the same 'resources:' entry, or make one depend on the other.",
                b.Name, ProblemSeverity.Warning);
        }
        var manifest = new DeploymentManifest
        {
            Name = name, Lock = lockName ?? name, Description = description, Variables = variables, Phases = phases, Environment = environment,
            File = Path.GetFullPath(file), Text = text, Warnings = reader.Problems.Where(p => p.Severity == ProblemSeverity.Warning).ToList(),
        };
        return new ManifestParseResult(manifest, Sorted(reader.Problems));
    }

    static IReadOnlyList<ManifestProblem> Sorted(List<ManifestProblem> problems) =>
        problems.OrderBy(p => p.Line).ThenBy(p => p.Column).ToList();

    PhaseDefinition? ParsePhase(ManifestReader reader, YamlMappingNode pm, int index, List<(string, string, YamlNode)> dependencyNodes)
    {
        var name = Scalar(reader, pm, "name", required: true, phase: $"#{index}");
        var label = name ?? $"#{index}";
        if (name is not null && !NamePattern().IsMatch(name))
        {
            reader.Problem(Get(pm, "name")!, "InvalidValue", $"Phase name '{name}' may hold only letters, digits, '.', '_' and '-' (it names the phase's log file).", name);
            name = null;
        }

        var actionKeys = new List<YamlScalarNode>();
        foreach (var (k, _) in pm.Children)
        {
            var key = (k as YamlScalarNode)?.Value ?? "";
            if (phaseKeys.Contains(key)) continue;
            if (registry.TryGet(key, out _)) actionKeys.Add((YamlScalarNode)k);
            else reader.Problem(k, "UnknownKey",
                $"Unknown key '{key}' in phase '{label}'. Phase keys: {string.Join(", ", phaseKeys)}; actions: {string.Join(", ", registry.Kinds.Order())}.", label);
        }

        IReadOnlyList<string> deps = Array.Empty<string>();
        if (Get(pm, "dependsOn") is { } dn)
        {
            deps = reader.StringList(dn, "dependsOn", label) ?? Array.Empty<string>();
            var items = dn is YamlSequenceNode ds ? ds.Children.ToList() : [dn];
            for (int i = 0; i < deps.Count && i < items.Count; i++) dependencyNodes.Add((label, deps[i], items[i]));
        }
        var resources = Get(pm, "resources") is { } rn ? reader.StringList(rn, "resources", label) ?? Array.Empty<string>() : Array.Empty<string>();
        foreach (var r in resources)
            if (!NamePattern().IsMatch(r) || r.Contains(".."))
                reader.Problem(Get(pm, "resources")!, "InvalidValue", $"Resource name '{r}' may hold only letters, digits, '.', '_' and '-' (it names a lock file).", label);
        var writes = Get(pm, "writes") is { } wn ? reader.StringList(wn, "writes", label) ?? Array.Empty<string>() : Array.Empty<string>();
        TimeSpan? timeout = null;
        if (Scalar(reader, pm, "timeout", phase: label) is { } ts)
        {
            if (ManifestReader.TryParseDuration(ts, out var t)) timeout = t;
            else reader.Problem(Get(pm, "timeout")!, "InvalidValue", $"'timeout' must be a duration such as 30s, 5m or 1h, not '{ts}'.", label);
        }
        bool continueOnError = false;
        if (Scalar(reader, pm, "continueOnError", phase: label) is { } ce && !bool.TryParse(ce, out continueOnError))
            reader.Problem(Get(pm, "continueOnError")!, "InvalidValue", $"'continueOnError' must be true or false, not '{ce}'.", label);

        if (actionKeys.Count == 0)
        {
            reader.Problem(pm, "MissingAction", $"Phase '{label}' has no action; give exactly one of: {string.Join(", ", registry.Kinds.Order())}.", label);
            return null;
        }
        if (actionKeys.Count > 1)
        {
            foreach (var extra in actionKeys.Skip(1))
                reader.Problem(extra, "TwoActions", $"Phase '{label}' has more than one action ('{actionKeys[0].Value}' and '{extra.Value}'); a phase does exactly one thing — split it into two phases.", label);
            return null;
        }
        var kind = actionKeys[0].Value!;
        registry.TryGet(kind, out var factory);
        var action = factory(new ActionNode(reader, pm.Children[actionKeys[0]], kind, label));
        if (action is null || name is null) return null;
        return new PhaseDefinition
        {
            Name = name, DependsOn = deps, Resources = resources, Timeout = timeout, ContinueOnError = continueOnError,
            DeclaredWrites = writes, Action = action, Line = (int)pm.Start.Line, Column = (int)pm.Start.Column,
        };
    }

    static YamlNode? Get(YamlMappingNode map, string key) => map.Children.TryGetValue(new YamlScalarNode(key), out var v) ? v : null;

    static string? Scalar(ManifestReader reader, YamlMappingNode map, string key, bool required = false, string? phase = null)
    {
        var n = Get(map, key);
        if (n is null)
        {
            if (required) reader.Problem(map, "MissingKey", phase is null ? $"The manifest needs '{key}'." : $"Phase {phase} needs '{key}'.", phase);
            return null;
        }
        return reader.ScalarText(n, key, phase);
    }

    static string Inner(YamlException e) => e.InnerException is YamlException i ? $"{e.Message} ({i.Message})" : e.Message;
}
