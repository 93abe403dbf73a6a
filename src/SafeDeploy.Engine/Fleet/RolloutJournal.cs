using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using SafeDeploy.Engine.Deployment;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Locking;
using SafeDeploy.Engine.StateDirectories;

namespace SafeDeploy.Engine.Fleet;

/// <summary>
/// The controller's journal of one rollout (JSON lines in its state directory, fleet/&lt;key&gt;/&lt;id&gt;.jsonl), where the key
/// names the manifest, inventory and host selection. A rollout without an `end` record is unfinished: the same command
/// resumes it. The key's lock is held for the whole rollout, so two controllers never drive the same rollout.
/// </summary>
internal sealed class RolloutJournal : IDisposable
{
    readonly Journal journal;
    readonly FileLock held;

    RolloutJournal(Journal journal, FileLock held, string id, List<JsonObject> earlier)
    {
        this.journal = journal; this.held = held; Id = id; Earlier = earlier;
    }

    public string Id { get; }
    public string Path => journal.Path;
    /// <summary>The records of the interrupted run this one resumes (empty for a new rollout).</summary>
    public IReadOnlyList<JsonObject> Earlier { get; }
    public bool Resumed => Earlier.Count > 0;

    public static string Folder(StateDirectory state) => System.IO.Path.Combine(state.StateDir, "fleet");

    /// <summary>The key of a rollout: what "the same command" means.</summary>
    public static string Key(string manifest, string? inventory, IEnumerable<string> hosts)
    {
        var text = string.Join("\n", new[] { manifest, inventory ?? "" }.Concat(hosts));
        return Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(text))).ToLowerInvariant()[..20];
    }

    /// <summary>Resumes the unfinished rollout of <paramref name="key"/>, or starts a new one with <paramref name="start"/>.</summary>
    public static RolloutJournal OpenOrCreate(StateDirectory state, string key, Func<string, JsonObject> start)
    {
        var dir = Directory.CreateDirectory(System.IO.Path.Combine(Folder(state), key)).FullName;
        var lockPath = System.IO.Path.Combine(dir, "rollout.lock");
        var held = FileLock.TryAcquire(lockPath, new LockOptions { Purpose = "fleet rollout" })
            ?? throw new SafeDeployException("RolloutRunning", ErrorKind.ResourceBusy, key,
                $"Another controller is running this rollout now (it holds {lockPath}).",
                "Wait for it to finish (Get-LockHolder shows who holds it); it reports every host.");
        try
        {
            var unfinished = Directory.EnumerateFiles(dir, "*.jsonl").OrderBy(f => f, StringComparer.Ordinal)
                .Select(f => (File: f, Records: Journal.Read(f))).LastOrDefault(j => j.Records.Count > 0 && !j.Records.Any(r => (string?)r["type"] == "end"));
            if (unfinished.File is not null)
            {
                var j = Journal.Append(unfinished.File);
                j.Write("resume", new JsonObject { ["pid"] = Environment.ProcessId });
                return new RolloutJournal(j, held, (string)unfinished.Records[0]["id"]!, unfinished.Records);
            }
            var id = DeploymentStore.NewRunId();
            var created = Journal.Create(System.IO.Path.Combine(dir, id + ".jsonl"));
            var record = start(id);
            record["id"] = id;
            created.Write("start", record);
            return new RolloutJournal(created, held, id, []);
        }
        catch { held.Dispose(); throw; }
    }

    public void Write(string type, JsonObject fields) => journal.Write(type, fields);

    public void HostResult(string type, HostDeployResult r) => Write(type, new JsonObject
    {
        ["host"] = r.HostName, ["status"] = StatusName.Of(r.Status), ["batch"] = r.Batch, ["generation"] = r.Generation, ["runId"] = r.Id,
        ["error"] = r.Error, ["durationMs"] = (long)r.Duration.TotalMilliseconds,
        ["rollbackAt"] = r.RollbackAt?.ToUnixTimeSeconds(),
    });

    /// <summary>A host result record read back.</summary>
    public static HostDeployResult ToResult(JsonObject r, string name, string rollout) => new()
    {
        HostName = (string)r["host"]!, Status = StatusName.Parse((string?)r["status"], HostStatus.Unknown), Batch = (int?)r["batch"] ?? 0, Generation = (int?)r["generation"] ?? 0,
        Id = (string?)r["runId"], Error = (string?)r["error"], Duration = TimeSpan.FromMilliseconds((long?)r["durationMs"] ?? 0),
        RollbackAt = (long?)r["rollbackAt"] is { } at ? DateTimeOffset.FromUnixTimeSeconds(at) : null,
        Name = name, Rollout = rollout, Resumed = true,
    };

    /// <summary>Every rollout in the state directory, oldest first, each with its hosts' last state.</summary>
    public static IReadOnlyList<RolloutHistoryEntry> History(StateDirectory state)
    {
        var folder = Folder(state);
        if (!Directory.Exists(folder)) return [];
        var list = new List<RolloutHistoryEntry>();
        foreach (var file in Directory.EnumerateFiles(folder, "*.jsonl", SearchOption.AllDirectories))
        {
            var records = Journal.Read(file);
            if (records.Count == 0 || (string?)records[0]["type"] != "start") continue;
            var start = records[0];
            var name = (string?)start["name"] ?? "";
            var id = (string)start["id"]!;
            var hosts = new Dictionary<string, HostDeployResult>(StringComparer.Ordinal);
            foreach (var r in records.Where(r => (string?)r["type"] is "host" or "rollback"))
                hosts[(string)r["host"]!] = ToResult(r, name, id) with { Resumed = false };
            var end = records.LastOrDefault(r => (string?)r["type"] == "end");
            list.Add(new RolloutHistoryEntry
            {
                Id = id, Name = name, Status = end is null ? RolloutStatus.Incomplete : StatusName.Parse((string?)end["status"], RolloutStatus.Unknown), JournalPath = file,
                Started = DateTimeOffset.Parse((string)start["time"]!, System.Globalization.CultureInfo.InvariantCulture),
                Ended = end?["time"] is { } t ? DateTimeOffset.Parse((string)t!, System.Globalization.CultureInfo.InvariantCulture) : null,
                Manifest = (string?)start["manifest"], Inventory = (string?)start["inventory"],
                Hosts = ((start["hosts"] as JsonArray) ?? []).Select(h => (string)h!).Select(h => hosts.TryGetValue(h, out var x) ? x
                    : new HostDeployResult { HostName = h, Status = HostStatus.NotStarted, Name = name, Rollout = id }).ToList(),
            });
        }
        return list.OrderBy(e => e.Started).ToList();
    }

    public void Dispose()
    {
        journal.Dispose();
        held.Dispose();
    }
}
