using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using SafeDeploy.Engine.Locking;
using SafeDeploy.Engine.StateDirectories;

namespace SafeDeploy.Engine.Deployment;

/// <summary>Where deployments keep their journals, logs and backups: &lt;state&gt;/deployments/&lt;name&gt;/&lt;run id&gt;.journal and &lt;run id&gt;/.</summary>
public sealed class DeploymentStore(StateDirectory state)
{
    public StateDirectory State { get; } = state;

    public string DeploymentDirectory(string name) => Path.Combine(State.StateDir, "deployments", StateDirectoryManager.ValidateName(name, "deployment name"));
    public string JournalPath(string name, string runId) => Path.Combine(DeploymentDirectory(name), runId + ".journal");
    public string RunDirectory(string name, string runId) => Path.Combine(DeploymentDirectory(name), runId);

    /// <summary>A sortable, unique run id: 20261123T091500123Z-a1b2.</summary>
    public static string NewRunId() =>
        DateTimeOffset.UtcNow.ToString("yyyyMMdd'T'HHmmssfff'Z'", CultureInfo.InvariantCulture) + "-" + Convert.ToHexString(RandomNumberGenerator.GetBytes(2)).ToLowerInvariant();

    /// <summary>Journals of one deployment (or all), oldest first.</summary>
    public IEnumerable<string> Journals(string? name = null)
    {
        var root = Path.Combine(State.StateDir, "deployments");
        if (!Directory.Exists(root)) return [];
        var dirs = name is null ? Directory.GetDirectories(root) : [DeploymentDirectory(name)];
        return dirs.Where(Directory.Exists).SelectMany(d => Directory.GetFiles(d, "*.journal"))
            .OrderBy(f => Path.GetFileName(f), StringComparer.Ordinal);
    }

    /// <summary>Summarizes one journal.</summary>
    public DeployHistoryEntry Summarize(string journalPath)
    {
        var records = Journal.Read(journalPath);
        var start = records.FirstOrDefault(r => (string?)r["type"] == "start");
        var end = IsIncomplete(records) ? null : records.LastOrDefault(r => (string?)r["type"] == "end");
        var name = (string?)start?["name"] ?? Path.GetFileName(Path.GetDirectoryName(journalPath)!);
        string status;
        if (end is not null) status = (string?)end["status"] ?? "Unknown";
        else
        {
            var lockName = (string?)start?["lock"] ?? name;
            bool running = File.Exists(State.LockPath(lockName)) && LockInspector.Inspect(State.LockPath(lockName)) is { IsHeld: true } h
                           && h.Pids.Contains((int?)start?["pid"] ?? -1);
            status = running ? "Running" : "Incomplete";
        }
        var tryRecord = records.LastOrDefault(r => (string?)r["type"] == "try");
        return new DeployHistoryEntry
        {
            Name = name,
            Id = (string?)start?["id"] ?? Path.GetFileNameWithoutExtension(journalPath),
            Status = status,
            Generation = (int?)start?["generation"] ?? 0,
            Started = ParseTime(start?["time"]) ?? File.GetCreationTimeUtc(journalPath),
            Ended = end is null ? null : ParseTime(end["time"]),
            Pid = (int?)start?["pid"] ?? 0,
            Phases = records.Where(r => (string?)r["type"] == "phase-end").Select(r => (string)r["phase"]!).ToList(),
            ManifestFile = (string?)start?["manifestFile"],
            Root = (string?)start?["root"],
            JournalPath = journalPath,
            Error = (string?)end?["error"],
            RollbackAt = ParseTime(tryRecord?["rollbackAt"]),
            Confirmed = records.Any(r => (string?)r["type"] == "confirmed"),
        };
    }

    /// <summary>True when the journal's last start (of the run, or of an undo of it) has no end after it: its process died.</summary>
    public static bool IsIncomplete(List<JsonObject> records)
    {
        int lastEnd = records.FindLastIndex(r => (string?)r["type"] == "end");
        int lastBegin = records.FindLastIndex(r => (string?)r["type"] is "start" or "undo-start");
        return records.Count > 0 && lastEnd < lastBegin;
    }

    /// <summary>The file whose existence confirms a try-mode run (written by Confirm-SafeDeploy, watched by the watchdog).</summary>
    public string ConfirmMarker(string name, string runId) => Path.Combine(RunDirectory(name, runId), "confirmed");

    public IReadOnlyList<DeployHistoryEntry> History(string? name = null) => Journals(name).Select(Summarize).ToList();

    static DateTimeOffset? ParseTime(JsonNode? n) =>
        n is null ? null : DateTimeOffset.Parse((string)n!, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind);
}
