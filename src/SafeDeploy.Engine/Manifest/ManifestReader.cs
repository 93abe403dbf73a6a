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

    /// <summary>The manifest text, for exact positions inside scalars (set by the parser).</summary>
    public string? Source { get; set; }

    /// <summary>
    /// Expands ${name} in a scalar's text; ${name:q} expands to the value quoted for /bin/sh (one word, whatever it holds).
    /// An undefined name is a problem at its own line and column, in every scalar style.
    /// </summary>
    public string Expand(YamlScalarNode node, string? phase)
    {
        var text = node.Value ?? "";
        if (!text.Contains('$')) return text;
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        return VariablePattern().Replace(text, m =>
        {
            if (m.Value == "$${") return "${";
            var occurrence = seen[m.Value] = seen.GetValueOrDefault(m.Value) + 1;
            var name = m.Groups[1].Value.Trim();
            bool quote = name.EndsWith(":q", StringComparison.Ordinal);
            if (quote) name = name[..^2].TrimEnd();
            if (Variables.TryGetValue(name, out var value)) return quote ? ShellQuote(value) : value;
            Problem(Position(node, m.Value, occurrence), "UndefinedVariable", $"Variable '{name}' is not defined (define it under 'variables:' or pass -Variables @{{ {name} = ... }}).", phase);
            return m.Value;
        });
    }

    /// <summary>A value as one /bin/sh word: in single quotes, each ' written as '\''.</summary>
    public static string ShellQuote(string value) => "'" + value.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    /// <summary>
    /// Where the <paramref name="occurrence"/>-th <paramref name="token"/> of a scalar stands in the manifest text (the
    /// scalar's raw source, quotes, escapes and block indentation included); the scalar's start when it cannot be found.
    /// </summary>
    Mark Position(YamlScalarNode node, string token, int occurrence)
    {
        if (Source is null || node.End.Index > Source.Length) return node.Start;
        int index = (int)node.Start.Index - 1;
        for (int k = 0; k < occurrence; k++)
        {
            index = Source.IndexOf(token, index + 1, (int)(node.End.Index - index - 1), StringComparison.Ordinal);
            if (index < 0) return node.Start;
        }
        int line = 1, lineStart = 0;
        for (int i = 0; i < index; i++) if (Source[i] == '\n') { line++; lineStart = i + 1; }
        return new Mark(index, line, index - lineStart + 1);
    }

    /// <summary>Variables in a shell command line that are not quoted with ${name:q}: their values could split or inject.</summary>
    public IEnumerable<string> UnquotedVariables(YamlScalarNode node) =>
        VariablePattern().Matches(node.Value ?? "").Where(m => m.Value != "$${" && !m.Groups[1].Value.Trim().EndsWith(":q", StringComparison.Ordinal))
            .Select(m => m.Groups[1].Value.Trim()).Where(Variables.ContainsKey).Distinct(); // an undefined one is an error already

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
