using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace SafeDeploy.Engine.Manifest;

/// <summary>Reads YAML values with ${variable} expansion, collecting problems with their positions instead of throwing.</summary>
internal sealed partial class ManifestReader(string file, IReadOnlyDictionary<string, string> variables)
{
    public string File { get; } = file;
    public List<ManifestProblem> Problems { get; } = new();
    public IReadOnlyDictionary<string, string> Variables { get; set; } = variables;

    [GeneratedRegex(@"\$\$\{|\$\{([^}]*)\}")]
    private static partial Regex VariablePattern();

    public void Problem(YamlNode at, string code, string message, string? phase = null, ProblemSeverity severity = ProblemSeverity.Error) =>
        Problem(at.Start, code, message, phase, severity);

    public void Problem(Mark at, string code, string message, string? phase = null, ProblemSeverity severity = ProblemSeverity.Error) =>
        Problems.Add(new ManifestProblem
        {
            File = File, Line = (int)at.Line, Column = (int)at.Column, Code = code, Message = message, Phase = phase, Severity = severity,
        });

    /// <summary>Expands ${name} in a scalar's text; an undefined name is a problem at its exact column where that is known.</summary>
    public string Expand(YamlScalarNode node, string? phase)
    {
        var text = node.Value ?? "";
        if (!text.Contains('$')) return text;
        return VariablePattern().Replace(text, m =>
        {
            if (m.Value == "$${") return "${";
            var name = m.Groups[1].Value.Trim();
            if (Variables.TryGetValue(name, out var value)) return value;
            var at = node.Start;
            if (node.Style == ScalarStyle.Plain && !text.Contains('\n'))
                at = new Mark(at.Index + m.Index, at.Line, at.Column + m.Index);
            Problem(at, "UndefinedVariable", $"Variable '{name}' is not defined (define it under 'variables:' or pass -Variables @{{ {name} = ... }}).", phase);
            return m.Value;
        });
    }

    public string? ScalarText(YamlNode node, string key, string? phase)
    {
        if (node is YamlScalarNode s) return Expand(s, phase);
        Problem(node, "InvalidValue", $"'{key}' must be a single value, not a {(node is YamlSequenceNode ? "list" : "mapping")}.", phase);
        return null;
    }

    public IReadOnlyList<string>? StringList(YamlNode node, string key, string? phase)
    {
        if (node is YamlScalarNode s) return s.Value is null or "" && s.Style == ScalarStyle.Plain ? Array.Empty<string>() : [Expand(s, phase)];
        if (node is YamlSequenceNode seq)
        {
            var list = new List<string>();
            foreach (var item in seq.Children)
                if (ScalarText(item, key + " item", phase) is { } t) list.Add(t);
            return list;
        }
        Problem(node, "InvalidValue", $"'{key}' must be a list of values.", phase);
        return null;
    }

    public IReadOnlyDictionary<string, string>? StringMap(YamlNode node, string key, string? phase)
    {
        if (node is not YamlMappingNode map)
        {
            Problem(node, "InvalidValue", $"'{key}' must be a mapping of names to values.", phase);
            return null;
        }
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (k, v) in map.Children)
            if (k is YamlScalarNode ks && ScalarText(v, ks.Value ?? "", phase) is { } t) result[ks.Value ?? ""] = t;
        return result;
    }

    public static bool TryParseDuration(string s, out TimeSpan value)
    {
        s = s.Trim();
        value = default;
        var m = Regex.Match(s, @"^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$", RegexOptions.CultureInvariant);
        if (!m.Success) return false;
        var n = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
        value = m.Groups[2].Value switch
        {
            "ms" => TimeSpan.FromMilliseconds(n),
            "m" => TimeSpan.FromMinutes(n),
            "h" => TimeSpan.FromHours(n),
            "d" => TimeSpan.FromDays(n),
            _ => TimeSpan.FromSeconds(n),
        };
        return true;
    }

    public static bool TryParseSize(string s, out long value)
    {
        value = 0;
        var m = Regex.Match(s.Trim(), @"^(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(i?[bB])?$", RegexOptions.CultureInvariant);
        if (!m.Success) return false;
        var n = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
        int power = "kmgt".IndexOf(char.ToLowerInvariant(m.Groups[2].Value.FirstOrDefault('x'))) + 1;
        value = (long)(n * Math.Pow(1024, power));
        return true;
    }

    public static string Describe(Mark m) => string.Create(CultureInfo.InvariantCulture, $"line {m.Line}, column {m.Column}");

    public static string Oneline(string s) => new StringBuilder(s).Replace('\n', ' ').ToString();
}
