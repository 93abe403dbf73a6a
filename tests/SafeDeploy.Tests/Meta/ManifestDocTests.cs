using System.Text.RegularExpressions;
using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.Meta;

/// <summary>
/// about_SafeDeploy_Manifest documents every key the parser accepts. The keys come from the parser itself: manifests
/// with an unknown key at each level make Test-SafeDeployManifest list the known ones (UnknownKey), so a key added
/// in code without documentation fails here.
/// </summary>
public class ManifestDocTests
{
    const string Unknown = "zzzUnknownKey";

    static IEnumerable<string> Listed(string message, string label)
    {
        var m = Regex.Match(message, label + @": ([^;.]+)");
        return m.Success ? m.Groups[1].Value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries) : [];
    }

    /// <summary>Runs Test-SafeDeployManifest on manifests whose one phase holds each given action value; the UnknownKey messages per manifest.</summary>
    static Dictionary<string, List<string>> Probe(PsSession ps, TempDir dir, IReadOnlyList<(string Id, string Yaml)> manifests)
    {
        var paths = manifests.Select((m, i) => dir.Write($"m{i}.yaml", m.Yaml)).ToArray();
        var r = ps.Run("Test-SafeDeployManifest -Path $paths", ("paths", paths));
        Assert.True(!r.AllErrors.Any(), r.Describe());
        var byFile = manifests.Select((m, i) => (m.Id, Path: paths[i])).ToDictionary(x => x.Path, x => x.Id);
        var found = manifests.ToDictionary(m => m.Id, _ => new List<string>());
        foreach (var o in r.Output.Where(o => (string)o.Properties["Code"].Value == "UnknownKey"))
            if (byFile.TryGetValue((string)o.Properties["File"].Value, out var id)) found[id].Add((string)o.Properties["Message"].Value);
        return found;
    }

    static string Phase(string action) => $"name: probe\nphases:\n  - name: p\n{action}";

    [Fact]
    public void AboutManifest_DocumentsEveryKeyTheParserAccepts()
    {
        using var dir = new TempDir("mdoc");
        using var ps = new PsSession();
        var text = File.ReadAllText(Path.Combine(RepoPaths.Root, "en-US", "about_SafeDeploy_Manifest.help.txt"));

        // Top-level keys, phase keys and the action kinds.
        var top = Probe(ps, dir, [("top", $"name: probe\n{Unknown}: 1\nphases:\n  - name: p\n    {Unknown}: 1\n    run: 'true'\n")])["top"];
        var topKeys = top.SelectMany(m => Listed(m, "Known keys")).ToHashSet();
        var phaseKeys = top.SelectMany(m => Listed(m, "Phase keys")).ToHashSet();
        var kinds = top.SelectMany(m => Listed(m, "actions")).ToHashSet();
        Assert.True(topKeys.Contains("phases") && phaseKeys.Contains("dependsOn") && kinds.Count >= 5,
            "the parser's UnknownKey messages no longer list the known keys: " + string.Join(" | ", top));

        // Each action's keys: as a mapping, as a list of mappings, and one level down (a check's diskFree).
        var keys = new Dictionary<string, HashSet<string>>();
        var first = Probe(ps, dir, kinds.SelectMany(k => new[]
        {
            ($"{k}:map", Phase($"    {k}: {{ {Unknown}: 1 }}\n")),
            ($"{k}:list", Phase($"    {k}: [ {{ {Unknown}: 1 }} ]\n")),
        }).ToList());
        foreach (var k in kinds) keys[k] = first[$"{k}:map"].Concat(first[$"{k}:list"]).SelectMany(m => Listed(m, "Known keys")).ToHashSet();
        var nested = Probe(ps, dir, kinds.SelectMany(k => keys[k].SelectMany(key => new[]
        {
            ($"{k}:{key}:map", Phase($"    {k}: {{ {key}: {{ {Unknown}: 1 }} }}\n")),
            ($"{k}:{key}:list", Phase($"    {k}: [ {{ {key}: {{ {Unknown}: 1 }} }} ]\n")),
        })).ToList());
        foreach (var (id, messages) in nested) keys[id.Split(':')[0]].UnionWith(messages.SelectMany(m => Listed(m, "Known keys")));
        Assert.All(kinds, k => Assert.True(keys[k].Count > 0, $"no keys found for action '{k}': the probe does not reach its parser"));

        bool Documented(string key) =>
            Regex.IsMatch(text, $@"(?m)^ {{4}}{Regex.Escape(key)}\s") || Regex.IsMatch(text, $@"[\s{{\[,-]{Regex.Escape(key)}:");
        var all = new List<(string What, string Key)>();
        all.AddRange(topKeys.Select(k => ($"top-level key '{k}'", k)));
        all.AddRange(phaseKeys.Select(k => ($"phase key '{k}'", k)));
        all.AddRange(kinds.Select(k => ($"action '{k}'", k)));
        all.AddRange(kinds.SelectMany(k => keys[k].Select(key => ($"key '{key}' of action '{k}'", key))));
        var missing = all.Where(x => !Documented(x.Key)).Select(x => x.What).ToList();
        Assert.True(missing.Count == 0, "en-US/about_SafeDeploy_Manifest.help.txt does not document: " + string.Join(", ", missing));
    }
}
