using System.Collections;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using SafeDeploy.Engine.Errors;

namespace SafeDeploy.Engine.Files;

/// <summary>The edits Edit-LockedFile and the editFile action offer, as pure text transforms.</summary>
internal static class TextEdits
{
    /// <summary>Replaces the line starting with <paramref name="key"/> (or the identical line) with <paramref name="line"/>, or appends it.</summary>
    public static string EnsureLine(string? text, string line, string? key = null)
    {
        text ??= "";
        var lines = text.Length == 0 ? new List<string>() : text.Split('\n').ToList();
        if (lines.Count > 0 && lines[^1].Length == 0) lines.RemoveAt(lines.Count - 1);
        bool Matches(string l) => key is null ? l.TrimEnd('\r') == line : l.StartsWith(key, StringComparison.Ordinal);
        int first = lines.FindIndex(Matches);
        if (first < 0) lines.Add(line);
        else
        {
            if (lines[first].TrimEnd('\r') == line && lines.Skip(first + 1).All(l => !Matches(l)))
                return text.EndsWith('\n') || text.Length == 0 ? text : text + "\n";
            lines[first] = line;
            for (int i = lines.Count - 1; i > first; i--) if (Matches(lines[i])) lines.RemoveAt(i); // one true value per key
        }
        return string.Join('\n', lines) + "\n";
    }

    static readonly JsonDocumentOptions readOptions = new() { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true };
    static readonly JsonSerializerOptions writeOptions = new() { WriteIndented = true };

    /// <summary>Deep-merges <paramref name="patch"/> into the JSON object in <paramref name="text"/>, keeping every other key.</summary>
    public static string MergeJson(string? text, IDictionary patch, string pathForErrors)
    {
        JsonObject root;
        if (string.IsNullOrWhiteSpace(text)) root = new JsonObject();
        else
        {
            JsonNode? parsed;
            try { parsed = JsonNode.Parse(text, documentOptions: readOptions); }
            catch (JsonException e)
            {
                throw new SafeDeployException("InvalidJson", ErrorKind.InvalidData, pathForErrors,
                    $"'{pathForErrors}' is not valid JSON (line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1}): {e.Message} The file was left untouched.",
                    "Fix the JSON by hand (or restore it from a backup), then run the command again.", e);
            }
            root = parsed as JsonObject ?? throw new SafeDeployException("JsonNotAnObject", ErrorKind.InvalidData, pathForErrors,
                $"'{pathForErrors}' holds a JSON {parsed?.GetValueKind().ToString().ToLowerInvariant() ?? "null"}, not an object; there are no keys to merge into. The file was left untouched.",
                "Merge only into files whose top level is a JSON object.");
        }
        MergeInto(root, patch);
        var result = root.ToJsonString(writeOptions) + "\n";
        return text is not null && Normalize(text) == Normalize(result) ? text : result;
    }

    static string Normalize(string json)
    {
        try { return JsonNode.Parse(json, documentOptions: readOptions)!.ToJsonString(writeOptions); }
        catch (JsonException) { return json; }
    }

    static void MergeInto(JsonObject target, IDictionary patch)
    {
        foreach (DictionaryEntry e in patch)
        {
            var key = Convert.ToString(e.Key, CultureInfo.InvariantCulture)!;
            if (e.Value is IDictionary nested && target[key] is JsonObject existing) MergeInto(existing, nested);
            else target[key] = ToNode(e.Value);
        }
    }

    /// <summary>Plain .NET values (hashtables, arrays, numbers, strings) to JSON nodes.</summary>
    public static JsonNode? ToNode(object? value) => value switch
    {
        null => null,
        JsonNode n => n.DeepClone(),
        string s => JsonValue.Create(s),
        bool b => JsonValue.Create(b),
        char c => JsonValue.Create(c.ToString()),
        DateTime d => JsonValue.Create(d.ToUniversalTime().ToString("o", CultureInfo.InvariantCulture)),
        DateTimeOffset d => JsonValue.Create(d.ToUniversalTime().ToString("o", CultureInfo.InvariantCulture)),
        Enum en => JsonValue.Create(en.ToString()),
        int or long or short or byte or sbyte or uint or ushort or ulong => JsonValue.Create(Convert.ToInt64(value, CultureInfo.InvariantCulture)),
        float or double or decimal => JsonValue.Create(Convert.ToDouble(value, CultureInfo.InvariantCulture)),
        IDictionary dict => DictToNode(dict),
        IEnumerable seq => new JsonArray(seq.Cast<object?>().Select(ToNode).ToArray()),
        _ => JsonValue.Create(Convert.ToString(value, CultureInfo.InvariantCulture)),
    };

    static JsonObject DictToNode(IDictionary dict)
    {
        var o = new JsonObject();
        foreach (DictionaryEntry e in dict) o[Convert.ToString(e.Key, CultureInfo.InvariantCulture)!] = ToNode(e.Value);
        return o;
    }
}

/// <summary>A small line diff ("-" removed, "+" added, " " context) for -WhatIf.</summary>
internal static class TextDiff
{
    /// <summary>
    /// The diff; with <paramref name="hideContent"/> (a file others may not read) only which lines changed, never their
    /// text: "- line 3 (hidden)", "+ line 3 (hidden)", no context lines.
    /// </summary>
    public static string Lines(string before, string after, int context = 2, bool hideContent = false)
    {
        var a = Split(before);
        var b = Split(after);
        if ((long)a.Length * b.Length > 4_000_000) return $"- ({a.Length} lines)\n+ ({b.Length} lines)\n";
        var lcs = new int[a.Length + 1, b.Length + 1];
        for (int i = a.Length - 1; i >= 0; i--)
            for (int j = b.Length - 1; j >= 0; j--)
                lcs[i, j] = a[i] == b[j] ? lcs[i + 1, j + 1] + 1 : Math.Max(lcs[i + 1, j], lcs[i, j + 1]);
        var ops = new List<(char Op, string Line)>();
        int x = 0, y = 0;
        while (x < a.Length || y < b.Length)
        {
            if (x < a.Length && y < b.Length && a[x] == b[y]) { if (!hideContent) ops.Add((' ', a[x])); x++; y++; }
            else if (y < b.Length && (x == a.Length || lcs[x, y + 1] >= lcs[x + 1, y])) { ops.Add(('+', hideContent ? $"line {y + 1} (hidden)" : b[y])); y++; }
            else { ops.Add(('-', hideContent ? $"line {x + 1} (hidden)" : a[x])); x++; }
        }
        var sb = new StringBuilder();
        for (int i = 0; i < ops.Count; i++)
        {
            bool near = false;
            for (int k = Math.Max(0, i - context); k <= Math.Min(ops.Count - 1, i + context); k++) if (ops[k].Op != ' ') { near = true; break; }
            if (near) sb.Append(ops[i].Op).Append(' ').Append(ops[i].Line).Append('\n');
        }
        return sb.ToString();
    }

    static string[] Split(string s) => s.Length == 0 ? Array.Empty<string>() : s.TrimEnd('\n').Split('\n');
}
