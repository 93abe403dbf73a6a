using System.Globalization;
using YamlDotNet.RepresentationModel;

namespace SafeDeploy.Engine.Manifest;

/// <summary>
/// The YAML value of an action key, read the forgiving way: each getter expands ${variables} and, instead of
/// throwing, records a problem with file, line and column and returns null, so that a manifest reports every
/// problem at once. Call <see cref="AllowOnly"/> with the keys an action understands.
/// </summary>
internal sealed partial class ActionNode
{
    readonly ManifestReader reader;

    internal ActionNode(ManifestReader reader, YamlNode node, string kind, string phase)
    {
        this.reader = reader;
        Node = node;
        Kind = kind;
        Phase = phase;
    }

    internal YamlNode Node { get; }
    public string Kind { get; }
    public string Phase { get; }
    public string File => reader.File;
    public int Line => (int)Node.Start.Line;
    public int Column => (int)Node.Start.Column;
    public bool IsScalar => Node is YamlScalarNode;
    public bool IsMapping => Node is YamlMappingNode;
    public bool IsSequence => Node is YamlSequenceNode;

    /// <summary>The expanded text of a scalar node (e.g. `run: make -j4`); records an error for other nodes.</summary>
    public string? Scalar() => reader.ScalarText(Node, Kind, Phase);

    /// <summary>The items of a sequence node (e.g. `checks: [...]`).</summary>
    public IReadOnlyList<ActionNode> Items()
    {
        if (Node is YamlSequenceNode seq) return seq.Children.Select(c => new ActionNode(reader, c, Kind, Phase)).ToList();
        Error($"'{Kind}' must be a list.");
        return Array.Empty<ActionNode>();
    }

    /// <summary>Records an UnknownKey problem for every key not listed (only for mapping nodes).</summary>
    public void AllowOnly(params string[] keys)
    {
        if (Node is not YamlMappingNode map) return;
        foreach (var (k, _) in map.Children)
        {
            var name = (k as YamlScalarNode)?.Value ?? "";
            if (!keys.Contains(name, StringComparer.Ordinal))
                reader.Problem(k, "UnknownKey", $"Unknown key '{name}' in '{Kind}' of phase '{Phase}'. Known keys: {string.Join(", ", keys)}.", Phase);
        }
    }

    public bool Has(string key) => Get(key) is not null;

    /// <summary>A child node, or null (and, when required, a MissingKey problem).</summary>
    public ActionNode? Child(string key, bool required = false)
    {
        var n = Get(key);
        if (n is null) { if (required) Missing(key); return null; }
        return new ActionNode(reader, n, Kind, Phase);
    }

    public string? String(string key, bool required = false)
    {
        var n = Get(key);
        if (n is null) { if (required) Missing(key); return null; }
        return reader.ScalarText(n, key, Phase);
    }

    /// <summary>A list of strings; a single scalar counts as a one-item list.</summary>
    public IReadOnlyList<string>? StringList(string key, bool required = false)
    {
        var n = Get(key);
        if (n is null) { if (required) Missing(key); return null; }
        return reader.StringList(n, key, Phase);
    }

    /// <summary>A mapping of string to string (e.g. environment).</summary>
    public IReadOnlyDictionary<string, string>? Map(string key, bool required = false)
    {
        var n = Get(key);
        if (n is null) { if (required) Missing(key); return null; }
        return reader.StringMap(n, key, Phase);
    }

    public bool? Bool(string key)
    {
        var s = String(key);
        if (s is null) return null;
        if (bool.TryParse(s, out var b)) return b;
        Error($"'{key}' must be true or false, not '{s}'.", Get(key));
        return null;
    }

    public long? Integer(string key, bool required = false)
    {
        var s = String(key, required);
        if (s is null) return null;
        if (long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v)) return v;
        Error($"'{key}' must be an integer, not '{s}'.", Get(key));
        return null;
    }

    /// <summary>A duration: "30s", "5m", "1h", "250ms" or a number of seconds.</summary>
    public TimeSpan? Duration(string key, bool required = false)
    {
        var s = String(key, required);
        if (s is null) return null;
        if (ManifestReader.TryParseDuration(s, out var t)) return t;
        Error($"'{key}' must be a duration such as 30s, 5m or 1h, not '{s}'.", Get(key));
        return null;
    }

    /// <summary>A size in bytes: "500MB", "10GiB", "1024" (k/M/G/T are powers of 1024).</summary>
    public long? Size(string key, bool required = false)
    {
        var s = String(key, required);
        if (s is null) return null;
        if (ManifestReader.TryParseSize(s, out var v)) return v;
        Error($"'{key}' must be a size such as 500MB or 10GB, not '{s}'.", Get(key));
        return null;
    }

    /// <summary>
    /// The value as plain .NET data (Hashtable, object[], string, long, double, bool, null) with variables expanded
    /// in every string: for JSON merges and other free-form values.
    /// </summary>
    public object? PlainValue(string key) => Get(key) is { } n ? ToPlain(n) : null;

    object? ToPlain(YamlNode n) => n switch
    {
        YamlMappingNode m => m.Children.Aggregate(new System.Collections.Hashtable(StringComparer.Ordinal), (h, e) =>
        {
            h[(e.Key as YamlScalarNode)?.Value ?? ""] = ToPlain(e.Value);
            return h;
        }),
        YamlSequenceNode s => s.Children.Select(ToPlain).ToArray(),
        YamlScalarNode s => TypedScalar(s),
        _ => null,
    };

    object? TypedScalar(YamlScalarNode s)
    {
        var text = reader.Expand(s, Phase);
        if (s.Style != YamlDotNet.Core.ScalarStyle.Plain) return text;
        if (text is "null" or "~" or "") return null;
        if (text is "true" or "false") return text == "true";
        if (long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var l)) return l;
        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d)) return d;
        return text;
    }

    /// <summary>Records an error at this node (or at <paramref name="at"/>).</summary>
    public void Error(string message, string code = "InvalidValue") => reader.Problem(Node, code, message, Phase);

    internal void Error(string message, YamlNode? at) => reader.Problem(at ?? Node, "InvalidValue", message, Phase);

    /// <summary>Records an error at the given key's value (or at this node when the key is absent).</summary>
    public void ErrorAt(string key, string message, string code = "InvalidValue") => reader.Problem(Get(key) ?? Node, code, message, Phase);

    void Missing(string key) => reader.Problem(Node, "MissingKey", $"'{Kind}' of phase '{Phase}' needs '{key}'.", Phase);

    YamlNode? Get(string key) =>
        Node is YamlMappingNode map && map.Children.TryGetValue(new YamlScalarNode(key), out var v) ? v : null;
}
