using System.Collections;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace SafeDeploy.Engine.JobStatus;

/// <summary>The status file's JSON: job_name, status, progress, message, updated_at (UTC ISO-8601), host, data.</summary>
internal static class StatusJson
{
    public static string Serialize(JobStatusUpdate u)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("job_name", u.JobName);
            w.WriteString("status", u.Status);
            if (u.Progress is { } p) w.WriteNumber("progress", p); else w.WriteNull("progress");
            if (u.Message is { } m) w.WriteString("message", m); else w.WriteNull("message");
            w.WriteString("updated_at", u.UpdatedAt.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture));
            w.WriteString("host", u.Host);
            w.WritePropertyName("data");
            WriteValue(w, u.Data ?? new Dictionary<string, object?>());
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray()) + "\n";
    }

    static void WriteValue(Utf8JsonWriter w, object? v)
    {
        switch (v)
        {
            case null: w.WriteNullValue(); break;
            case string s: w.WriteStringValue(s); break;
            case bool b: w.WriteBooleanValue(b); break;
            case char c: w.WriteStringValue(c.ToString()); break;
            case byte or sbyte or short or ushort or int or uint or long: w.WriteNumberValue(Convert.ToInt64(v, CultureInfo.InvariantCulture)); break;
            case ulong ul: w.WriteNumberValue(ul); break;
            case float or double or decimal:
                var d = Convert.ToDouble(v, CultureInfo.InvariantCulture);
                if (double.IsFinite(d)) w.WriteNumberValue(Convert.ToDecimal(v, CultureInfo.InvariantCulture)); else w.WriteStringValue(d.ToString(CultureInfo.InvariantCulture));
                break;
            case DateTimeOffset dto: w.WriteStringValue(dto.ToUniversalTime().ToString("o", CultureInfo.InvariantCulture)); break;
            case DateTime dt: w.WriteStringValue(dt.ToUniversalTime().ToString("o", CultureInfo.InvariantCulture)); break;
            case TimeSpan ts: w.WriteStringValue(ts.ToString("c", CultureInfo.InvariantCulture)); break;
            case Enum e: w.WriteStringValue(e.ToString()); break;
            case IDictionary dict:
                w.WriteStartObject();
                foreach (var key in dict.Keys.Cast<object>().OrderBy(k => k.ToString(), StringComparer.Ordinal))
                {
                    w.WritePropertyName(key.ToString() ?? "");
                    WriteValue(w, dict[key]);
                }
                w.WriteEndObject();
                break;
            case IEnumerable<KeyValuePair<string, object?>> pairs:
                w.WriteStartObject();
                foreach (var (k, val) in pairs.OrderBy(p => p.Key, StringComparer.Ordinal)) { w.WritePropertyName(k); WriteValue(w, val); }
                w.WriteEndObject();
                break;
            case IEnumerable seq:
                w.WriteStartArray();
                foreach (var item in seq) WriteValue(w, item);
                w.WriteEndArray();
                break;
            default: w.WriteStringValue(Convert.ToString(v, CultureInfo.InvariantCulture)); break;
        }
    }

    /// <summary>Reads a status file back; tolerant of missing fields (a file someone else wrote).</summary>
    public static JobStatusRecord Parse(string jobName, string json, string path, string? commit, bool pending)
    {
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        string? Str(string name) => root.TryGetProperty(name, out var e) && e.ValueKind == JsonValueKind.String ? e.GetString() : null;
        int? progress = root.TryGetProperty("progress", out var pe) && pe.ValueKind == JsonValueKind.Number && pe.TryGetInt32(out var pi) ? pi : null;
        DateTimeOffset? updated = DateTimeOffset.TryParse(Str("updated_at"), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t) ? t.ToUniversalTime() : null;
        IReadOnlyDictionary<string, object?>? data = root.TryGetProperty("data", out var de) && de.ValueKind == JsonValueKind.Object
            ? (IReadOnlyDictionary<string, object?>)ToPlain(de)! : null;
        return new JobStatusRecord
        {
            JobName = Str("job_name") ?? jobName, Status = Str("status"), Progress = progress, Message = Str("message"),
            UpdatedAt = updated, Host = Str("host"), Data = data, Pending = pending, Commit = commit, Path = path,
        };
    }

    /// <summary>The updated_at of a status file, or null when it has none (used so an older update never replaces a newer one).</summary>
    public static DateTimeOffset? UpdatedAtOf(string json)
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            return doc.RootElement.TryGetProperty("updated_at", out var e) && e.ValueKind == JsonValueKind.String
                && DateTimeOffset.TryParse(e.GetString(), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t) ? t : null;
        }
        catch (JsonException) { return null; }
    }

    static object? ToPlain(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => e.EnumerateObject().ToDictionary(p => p.Name, p => ToPlain(p.Value), StringComparer.OrdinalIgnoreCase),
        JsonValueKind.Array => e.EnumerateArray().Select(ToPlain).ToArray(),
        JsonValueKind.String => e.GetString(),
        JsonValueKind.Number => e.TryGetInt64(out var l) ? l : e.GetDouble(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => null,
    };
}
