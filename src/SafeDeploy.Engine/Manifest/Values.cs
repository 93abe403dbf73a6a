using System.Globalization;

namespace SafeDeploy.Engine.Manifest;

/// <summary>An octal file mode as written in manifests and parameters ("0644", "755").</summary>
internal readonly record struct OctalMode(uint Bits)
{
    public static bool TryParse(string text, out OctalMode mode)
    {
        bool ok = text.Length is >= 3 and <= 4 && text.All(c => c is >= '0' and <= '7');
        mode = ok ? new OctalMode(Convert.ToUInt32(text, 8)) : default;
        return ok;
    }

    public override string ToString() => Convert.ToString(Bits, 8).PadLeft(4, '0');
}

/// <summary>A SHA-256 digest as 64 hex digits (kept lower-case).</summary>
internal readonly record struct Sha256Digest(string Hex)
{
    public static bool TryParse(string text, out Sha256Digest digest)
    {
        bool ok = text.Length == 64 && text.All(Uri.IsHexDigit);
        digest = ok ? new Sha256Digest(text.ToLowerInvariant()) : default;
        return ok;
    }

    public override string ToString() => Hex;
}

/// <summary>A duration: "30s", "5m", "1h", "250ms" or a number of seconds.</summary>
internal static class Durations
{
    public static bool TryParse(string text, out TimeSpan value) => ManifestReader.TryParseDuration(text, out value);

    public static string Format(TimeSpan t) => t.TotalSeconds < 1 ? $"{t.TotalMilliseconds:0} ms"
        : t.TotalMinutes < 1 ? $"{t.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture)} s"
        : t.TotalHours < 1 ? $"{(int)t.TotalMinutes} min {t.Seconds} s" : $"{(int)t.TotalHours} h {t.Minutes} min";
}

/// <summary>The value readers every action parser shares: each kind of value is checked here, once.</summary>
internal sealed partial class ActionNode
{
    /// <summary>An absolute path (every path a deployment writes is placed under -Root).</summary>
    public string? AbsolutePath(string key, bool required = false)
    {
        var p = String(key, required);
        if (p is not null && !Path.IsPathRooted(p)) { ErrorAt(key, $"'{key}' must be an absolute path (it is placed under -Root), not '{p}'."); return null; }
        return p;
    }

    /// <summary>An octal file mode such as 0644.</summary>
    public uint? Mode(string key)
    {
        var text = String(key);
        if (text is null) return null;
        if (OctalMode.TryParse(text, out var mode)) return mode.Bits;
        ErrorAt(key, $"'{key}' must be an octal file mode such as 0644 or 0755, not '{text}'.");
        return null;
    }

    /// <summary>A SHA-256 digest (64 hex digits).</summary>
    public string? Sha256(string key)
    {
        var text = String(key);
        if (text is null) return null;
        if (Sha256Digest.TryParse(text, out var d)) return d.Hex;
        ErrorAt(key, $"'{key}' must be 64 hex digits, not '{text}'.");
        return null;
    }

    /// <summary>An argument list: a list of words, or a command line split by shell rules (no shell runs it).</summary>
    public IReadOnlyList<string>? Arguments(string what)
    {
        if (IsScalar)
        {
            var line = Scalar();
            if (string.IsNullOrWhiteSpace(line)) { Error($"'{what}' is empty."); return null; }
            try { return Platform.ShellWords.Split(line); }
            catch (Errors.SafeDeployException e) { Error(e.Message); return null; }
        }
        if (IsSequence)
        {
            var args = Items().Select(i => i.Scalar()).ToList();
            if (args.Count == 0) { Error($"'{what}' is empty."); return null; }
            return args.Any(a => a is null) ? null : args!;
        }
        Error($"'{what}' must be a command line or a list of arguments.");
        return null;
    }

    /// <summary>A command: a scalar is a command line (run by /bin/sh -c), a list an argument list (run directly).</summary>
    public Actions.CommandSpec? Command(string what)
    {
        if (IsScalar)
        {
            foreach (var name in reader.UnquotedVariables((YamlDotNet.RepresentationModel.YamlScalarNode)Node))
                reader.Problem(Node, "UnquotedVariable",
                    $"'{what}' of phase '{Phase}' is a shell command line with ${{{name}}} unquoted: a value with spaces, quotes or ';' would split or run as code. Write ${{{name}:q}} (quoted for the shell) or give 'args' as a list.",
                    Phase, ProblemSeverity.Warning);
            return Scalar() is { Length: > 0 } line ? new Actions.CommandSpec(line, null) : Empty();
        }
        if (IsSequence)
        {
            var args = Items().Select(i => i.Scalar()).ToList();
            if (args.Any(a => a is null)) return null;
            return args.Count > 0 ? new Actions.CommandSpec(null, args!) : Empty();
        }
        Error($"'{what}' must be a command line or a list of arguments.");
        return null;
        Actions.CommandSpec? Empty() { Error($"'{what}' is empty."); return null; }
    }
}
