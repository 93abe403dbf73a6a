using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using SafeDeploy.Engine.Files;

namespace SafeDeploy.Engine.JobStatus;

/// <summary>An update waiting to be pushed: the exact status file bytes plus where they go.</summary>
public sealed record OutboxEntry
{
    [JsonPropertyName("id")] public required string Id { get; init; }
    [JsonPropertyName("job_name")] public required string JobName { get; init; }
    [JsonPropertyName("status")] public required string Status { get; init; }
    [JsonPropertyName("remote")] public required string Remote { get; init; }
    [JsonPropertyName("branch")] public required string Branch { get; init; }
    [JsonPropertyName("status_directory")] public required string StatusDirectory { get; init; }
    [JsonPropertyName("updated_at_ticks")] public long UpdatedAtTicks { get; init; }
    [JsonPropertyName("content")] public required string Content { get; init; }

    [JsonIgnore] public string FileName { get; init; } = "";
    [JsonIgnore] public string RepoPath => $"{StatusDirectory}/{JobName}.json";
}

[JsonSerializable(typeof(OutboxEntry))]
internal sealed partial class OutboxJson : JsonSerializerContext;

/// <summary>
/// The clone's outbox, .git/safedeploy/outbox: one file per update, written atomically and without any lock (so a
/// caller that cannot get the clone's lock still leaves its update behind). File names sort by time
/// (&lt;job&gt;~&lt;ticks&gt;~&lt;id&gt;.json): the pusher keeps the newest per job and removes only files it has seen, so an update
/// written while a push runs is never lost. A pushed entry of another process becomes a receipt in done/ that its
/// writer (possibly waiting for the lock) picks up to learn the commit.
/// </summary>
public sealed class Outbox
{
    public Outbox(string stateDirectory)
    {
        Directory = Path.Combine(stateDirectory, "outbox");
        DoneDirectory = Path.Combine(stateDirectory, "done");
    }

    public string Directory { get; }
    public string DoneDirectory { get; }

    public OutboxEntry Add(JobStatusUpdate update, string content, string remote, string branch, string statusDirectory)
    {
        System.IO.Directory.CreateDirectory(Directory);
        var id = Convert.ToHexString(RandomNumberGenerator.GetBytes(8)).ToLowerInvariant();
        var ticks = update.UpdatedAt.UtcTicks;
        var name = $"{update.JobName}~{ticks.ToString("D19", CultureInfo.InvariantCulture)}~{id}.json";
        var entry = new OutboxEntry
        {
            Id = id, JobName = update.JobName, Status = update.Status, Remote = remote, Branch = branch,
            StatusDirectory = statusDirectory, UpdatedAtTicks = ticks, Content = content, FileName = name,
        };
        AtomicFile.WriteAllBytes(Path.Combine(Directory, name), JsonSerializer.SerializeToUtf8Bytes(entry, OutboxJson.Default.OutboxEntry),
            new AtomicWriteOptions { NewFileMode = 0x180 });
        return entry;
    }

    public bool Contains(OutboxEntry entry) => File.Exists(Path.Combine(Directory, entry.FileName));

    /// <summary>Every readable entry (a file that cannot be parsed is left for a person to look at, and reported).</summary>
    public IReadOnlyList<OutboxEntry> ReadAll(Action<string>? onUnreadable = null)
    {
        if (!System.IO.Directory.Exists(Directory)) return [];
        var list = new List<OutboxEntry>();
        foreach (var file in System.IO.Directory.EnumerateFiles(Directory, "*.json"))
        {
            var name = Path.GetFileName(file);
            if (name.StartsWith('.')) continue; // an AtomicFile temporary
            try
            {
                var e = JsonSerializer.Deserialize(File.ReadAllBytes(file), OutboxJson.Default.OutboxEntry);
                if (e is null || !JobName.IsValid(e.JobName)) { onUnreadable?.Invoke(file); continue; }
                list.Add(e with { FileName = name });
            }
            catch (FileNotFoundException) { }
            catch (JsonException) { onUnreadable?.Invoke(file); }
        }
        return list;
    }

    /// <summary>Newest entry per job (by updated_at, then file name); the rest are superseded.</summary>
    public static IReadOnlyList<OutboxEntry> Newest(IEnumerable<OutboxEntry> entries) =>
        entries.GroupBy(e => e.JobName, StringComparer.Ordinal)
            .Select(g => g.OrderByDescending(e => e.UpdatedAtTicks).ThenByDescending(e => e.FileName, StringComparer.Ordinal).First())
            .ToList();

    /// <summary>Marks an entry as pushed in <paramref name="commit"/>: its file becomes a receipt, or goes when nobody waits for it.</summary>
    public void Complete(OutboxEntry entry, string commit, bool keepReceipt)
    {
        var source = Path.Combine(Directory, entry.FileName);
        try
        {
            if (keepReceipt)
            {
                System.IO.Directory.CreateDirectory(DoneDirectory);
                File.Move(source, Path.Combine(DoneDirectory, $"{entry.Id}~{commit}"), overwrite: true);
            }
            else File.Delete(source);
        }
        catch (FileNotFoundException) { }
        catch (DirectoryNotFoundException) { }
    }

    /// <summary>The commit that carried an entry pushed by another process (taking the receipt), or null.</summary>
    public string? TakeReceipt(OutboxEntry entry)
    {
        if (!System.IO.Directory.Exists(DoneDirectory)) return null;
        foreach (var file in System.IO.Directory.EnumerateFiles(DoneDirectory, entry.Id + "~*"))
        {
            var commit = Path.GetFileName(file)[(entry.Id.Length + 1)..];
            try { File.Delete(file); } catch (IOException) { }
            return commit;
        }
        return null;
    }

    /// <summary>Receipts nobody came for (their writer gave up and returned Queued) are removed after a day.</summary>
    public void PruneReceipts()
    {
        if (!System.IO.Directory.Exists(DoneDirectory)) return;
        var cutoff = DateTime.UtcNow - TimeSpan.FromDays(1);
        foreach (var file in System.IO.Directory.EnumerateFiles(DoneDirectory))
            try { if (File.GetLastWriteTimeUtc(file) < cutoff) File.Delete(file); } catch (IOException) { }
    }
}
