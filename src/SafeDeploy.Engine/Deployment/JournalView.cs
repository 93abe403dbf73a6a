using System.Globalization;
using System.Text.Json.Nodes;
using SafeDeploy.Engine.Actions;

namespace SafeDeploy.Engine.Deployment;

/// <summary>The record types a journal holds, in the order a run writes them.</summary>
internal static class JournalRecord
{
    public const string Start = "start", PhaseStart = "phase-start", Undo = "undo", PhaseEnd = "phase-end", RollbackStart = "rollback-start",
        PhaseUndoStart = "phase-undo-start", PhaseUndone = "phase-undone", UndoStart = "undo-start", Try = "try", Confirmed = "confirmed",
        Temporary = "temporary", ProcessGroup = "process-group", End = "end";
}

/// <summary>
/// One journal read once and typed: what the run was (its start record), how it ended, which phases ran, what each
/// journaled for its undo. The one reader shared by the store (history), rollback, recovery, undo and try mode.
/// </summary>
internal sealed class JournalView
{
    JournalView(string path, List<JsonObject> records)
    {
        Path = path;
        Records = records;
        StartRecord = records.FirstOrDefault(r => Type(r) == JournalRecord.Start);
        int lastEnd = records.FindLastIndex(r => Type(r) == JournalRecord.End);
        int lastBegin = records.FindLastIndex(r => Type(r) is JournalRecord.Start or JournalRecord.UndoStart);
        IsIncomplete = records.Count > 0 && lastEnd < lastBegin;
        EndRecord = IsIncomplete || lastEnd < 0 ? null : records[lastEnd];
    }

    public static JournalView Load(string path) => new(path, Journal.Read(path));

    public string Path { get; }
    public IReadOnlyList<JsonObject> Records { get; }
    public JsonObject? StartRecord { get; }
    /// <summary>The last end record, when the journal is complete.</summary>
    public JsonObject? EndRecord { get; }
    /// <summary>The last start (of the run or of an undo of it) has no end after it: its process died.</summary>
    public bool IsIncomplete { get; }

    public string Id => (string?)StartRecord?["id"] ?? System.IO.Path.GetFileNameWithoutExtension(Path);
    public string Name => (string?)StartRecord?["name"] ?? System.IO.Path.GetFileName(System.IO.Path.GetDirectoryName(Path)!);
    public string LockName => (string?)StartRecord?["lock"] ?? Name;
    public int Generation => (int?)StartRecord?["generation"] ?? 0;
    public int PreviousGeneration => (int?)StartRecord?["previousGeneration"] ?? 0;
    public int Pid => (int?)StartRecord?["pid"] ?? 0;
    public string? ManifestFile => (string?)StartRecord?["manifestFile"];
    public string? ManifestText => (string?)StartRecord?["manifestText"];
    public string? Root => (string?)StartRecord?["root"];
    public DateTimeOffset? Started => Time(StartRecord?["time"]);
    public IReadOnlyDictionary<string, string> Variables =>
        (StartRecord?["variables"] as JsonObject)?.ToDictionary(kv => kv.Key, kv => (string)kv.Value!) ?? new Dictionary<string, string>();

    /// <summary>The status the run ended with (null while it has not ended).</summary>
    public DeployStatus? EndStatus => EndRecord is null ? null : StatusName.Parse((string?)EndRecord["status"], DeployStatus.Unknown);
    public string? EndError => (string?)EndRecord?["error"];
    public DateTimeOffset? Ended => Time(EndRecord?["time"]);
    public bool WasUndo => Records.Any(r => Type(r) == JournalRecord.UndoStart);
    public bool Confirmed => Records.Any(r => Type(r) == JournalRecord.Confirmed);
    public DateTimeOffset? RollbackAt => Time(Records.LastOrDefault(r => Type(r) == JournalRecord.Try)?["rollbackAt"]);

    /// <summary>Phases that ended (any status), in journal order.</summary>
    public IReadOnlyList<string> PhasesEnded => Records.Where(r => Type(r) == JournalRecord.PhaseEnd).Select(r => (string)r["phase"]!).ToList();

    /// <summary>What each phase journaled for its undo, oldest first.</summary>
    public IReadOnlyList<UndoRecord> UndoRecords(string phase) =>
        Records.Where(r => Type(r) == JournalRecord.Undo && (string?)r["phase"] == phase).Select(ToUndoRecord).ToList();

    /// <summary>Process groups of the run's phase commands (the token record before each start, the pgid record after).</summary>
    public IReadOnlyList<Platform.ProcessGroupRecord> ProcessGroups =>
        Records.Where(r => Type(r) == JournalRecord.ProcessGroup).Select(r => Platform.ProcessGroupRecord.FromJson(r)).OfType<Platform.ProcessGroupRecord>().ToList();

    /// <summary>Temporary files the run may have left (journaled before each was created), with the phase that made them.</summary>
    public IReadOnlyList<(string Phase, string Path)> Temporaries =>
        Records.Where(r => Type(r) == JournalRecord.Temporary).Select(r => ((string?)r["phase"] ?? "", (string)r["path"]!)).ToList();

    /// <summary>
    /// Every phase that started (or journaled undo data) and is not yet undone, in the order to undo them: phases that
    /// never ended first, then the others newest end first.
    /// </summary>
    public IReadOnlyList<string> PhasesToUndo()
    {
        var started = Records.Where(r => Type(r) == JournalRecord.PhaseStart).Select(r => (string)r["phase"]!).Distinct().ToList();
        foreach (var p in Records.Where(r => Type(r) == JournalRecord.Undo).Select(r => (string)r["phase"]!).Distinct())
            if (!started.Contains(p)) started.Add(p);
        var endSeq = Records.Where(r => Type(r) == JournalRecord.PhaseEnd).GroupBy(r => (string)r["phase"]!).ToDictionary(g => g.Key, g => (int)g.Last()["seq"]!);
        var undone = Records.Where(r => Type(r) == JournalRecord.PhaseUndone && r["error"] is null).Select(r => (string)r["phase"]!).ToHashSet();
        return started.Where(p => !undone.Contains(p)).OrderByDescending(p => endSeq.TryGetValue(p, out var s) ? s : int.MaxValue).ToList();
    }

    public static string? Type(JsonObject r) => (string?)r["type"];

    public static UndoRecord ToUndoRecord(JsonObject r) => new()
    {
        Step = (string?)r["step"] ?? "",
        Data = (r["data"] as JsonObject)?.ToDictionary(kv => kv.Key, kv => (string?)kv.Value) ?? new Dictionary<string, string?>(),
        Backups = (r["backups"] as JsonArray)?.OfType<JsonObject>()
            .Select(b => new FileBackup((string)b["path"]!, (string?)b["backup"], b["mode"] is { } m ? (uint)m : null, (string?)b["link"])).ToList() ?? [],
    };

    static DateTimeOffset? Time(JsonNode? n) =>
        n is null ? null : DateTimeOffset.Parse((string)n!, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind);
}
