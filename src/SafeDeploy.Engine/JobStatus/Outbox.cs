using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace SafeDeploy.Engine.JobStatus;

/// <summary>An update waiting to be pushed: the exact status file bytes plus where they go.</summary>
internal sealed record OutboxEntry
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

/// <summary>Where a caller's updates go: a remote, a branch on it and the status directory. Only the caller says this.</summary>
internal sealed record OutboxTarget(string Remote, string Branch, string StatusDirectory)
{
    public bool Matches(OutboxEntry e) => e.Remote == Remote && e.Branch == Branch && e.StatusDirectory == StatusDirectory;
    public override string ToString() => $"{Remote}/{Branch} ({StatusDirectory})";
}

[JsonSerializable(typeof(OutboxEntry))]
internal sealed partial class OutboxJson : JsonSerializerContext;

/// <summary>
/// The clone's outbox, .git/safedeploy/outbox: one file per update, written atomically and without any lock (so a
/// caller that cannot get the clone's lock still leaves its update behind). File names sort by time
/// (&lt;job&gt;~&lt;ticks&gt;~&lt;id&gt;.json): the pusher keeps the newest per job and removes only files it has seen, so an update
/// written while a push runs is never lost. A pushed entry of another process becomes a receipt in done/ that its
/// writer (possibly waiting for the lock) picks up to learn the commit.
/// A record read back is checked again as if a stranger wrote it (see <see cref="OutboxRecord"/>): it can only ever
/// supply the content of one job's file, never say where git goes.
/// </summary>
internal sealed class Outbox
{
    readonly OutboxFiles state, outbox, done;

    public Outbox(string stateDirectory)
    {
        state = new OutboxFiles(stateDirectory);
        outbox = new OutboxFiles(Path.Combine(stateDirectory, "outbox"));
        done = new OutboxFiles(Path.Combine(stateDirectory, "done"));
    }

    public string Directory => outbox.Directory;

    /// <summary>Creates .git/safedeploy (for the lock file beside the outbox).</summary>
    public void EnsureStateDirectory() => state.Create();

    public OutboxEntry Add(JobStatusUpdate update, string content, OutboxTarget target)
    {
        state.Create();
        state.Sub("outbox", create: true);
        var id = Convert.ToHexString(RandomNumberGenerator.GetBytes(8)).ToLowerInvariant();
        var ticks = update.UpdatedAt.UtcTicks;
        var entry = new OutboxEntry
        {
            Id = id, JobName = update.JobName, Status = update.Status, Remote = target.Remote, Branch = target.Branch,
            StatusDirectory = target.StatusDirectory, UpdatedAtTicks = ticks, Content = content, FileName = OutboxRecord.FileNameOf(update.JobName, ticks, id),
        };
        outbox.WriteNew(entry.FileName, JsonSerializer.SerializeToUtf8Bytes(entry, OutboxJson.Default.OutboxEntry), 0x180);
        return entry;
    }

    public bool Contains(OutboxEntry entry) => outbox.Exists(entry.FileName);

    /// <summary>Every record that passes <see cref="OutboxRecord.Check"/>; any other file is left for a person to look at, and reported.</summary>
    public IReadOnlyList<OutboxEntry> ReadAll(Action<string>? onRejected = null)
    {
        var list = new List<OutboxEntry>();
        foreach (var name in outbox.Names().Order(StringComparer.Ordinal))
        {
            if (name.StartsWith('.')) continue; // a temporary being written
            var bytes = outbox.ReadRegular(name, OutboxRecord.MaxBytes, out var refusal);
            if (bytes is null && refusal is null) continue; // pushed and removed meanwhile
            var (entry, why) = bytes is null ? (null, refusal) : OutboxRecord.Check(name, bytes);
            if (entry is not null) list.Add(entry);
            else onRejected?.Invoke($"Outbox file '{outbox.FullPath(name)}' is left in place and not used: {why}.");
        }
        return list;
    }

    /// <summary>The records bound for <paramref name="target"/>; records for other targets are named through <paramref name="onElsewhere"/>.</summary>
    public IReadOnlyList<OutboxEntry> ReadFor(OutboxTarget target, Action<string>? onRejected = null, Action<string>? onElsewhere = null)
    {
        var all = ReadAll(onRejected);
        var others = all.Where(e => !target.Matches(e)).GroupBy(e => new OutboxTarget(e.Remote, e.Branch, e.StatusDirectory)).ToList();
        foreach (var g in others)
            onElsewhere?.Invoke($"{g.Count()} update(s) in the outbox are for {g.Key}, not {target}; they are left there (push them with -Remote {g.Key.Remote} -Branch {g.Key.Branch} -StatusDirectory {g.Key.StatusDirectory}).");
        return all.Where(target.Matches).ToList();
    }

    /// <summary>Newest entry per job (by updated_at, then file name); the rest are superseded.</summary>
    public static IReadOnlyList<OutboxEntry> Newest(IEnumerable<OutboxEntry> entries) =>
        entries.GroupBy(e => e.JobName, StringComparer.Ordinal)
            .Select(g => g.OrderByDescending(e => e.UpdatedAtTicks).ThenByDescending(e => e.FileName, StringComparer.Ordinal).First())
            .ToList();

    /// <summary>Marks an entry as pushed in <paramref name="commit"/>: its file becomes a receipt, or goes when nobody waits for it.</summary>
    public void Complete(OutboxEntry entry, string commit, bool keepReceipt)
    {
        if (keepReceipt)
            try
            {
                state.Sub("done", create: true);
                if (outbox.MoveToSibling(entry.FileName, "done", $"{entry.Id}~{commit}")) return;
            }
            catch (Errors.SafeDeployException) { } // no receipt: its writer still sees the update gone and reports it pushed
        outbox.Delete(entry.FileName);
    }

    /// <summary>The commit that carried an entry pushed by another process (taking the receipt), or null.</summary>
    public string? TakeReceipt(OutboxEntry entry)
    {
        IReadOnlyList<string> names;
        try { names = done.Names(); } catch (Errors.SafeDeployException) { return null; }
        foreach (var name in names)
        {
            if (!name.StartsWith(entry.Id + "~", StringComparison.Ordinal)) continue;
            var commit = name[(entry.Id.Length + 1)..];
            done.Delete(name);
            return OutboxRecord.IsObjectId(commit) ? commit : null;
        }
        return null;
    }

    /// <summary>Receipts nobody came for (their writer gave up and returned Queued) are removed after a day.</summary>
    public void PruneReceipts(Action<string>? onRefused = null)
    {
        var cutoff = DateTimeOffset.UtcNow - TimeSpan.FromDays(1);
        IReadOnlyList<string> names;
        try { names = done.Names(); }
        catch (Errors.SafeDeployException e) { onRefused?.Invoke($"Old receipts were not pruned: {e.Message}"); return; }
        foreach (var name in names)
            if (OutboxRecord.IsReceiptName(name) && done.LastWrite(name) is { } t && t < cutoff) done.Delete(name);
    }

    /// <summary>
    /// A fresh private directory (0700, random name) for one push's index and blob files, after removing what a killed
    /// run left (call only under the clone's lock).
    /// </summary>
    internal OutboxFiles NewWorkDirectory()
    {
        foreach (var name in state.Names())
        {
            if (name is "index" or "index.lock") state.Delete(name); // left by versions that kept the index here
            else if (name.StartsWith("work-", StringComparison.Ordinal) && !state.Delete(name))
                try { state.DeleteTree(name); } catch (Errors.SafeDeployException) { }
        }
        return state.Sub("work-" + Convert.ToHexString(RandomNumberGenerator.GetBytes(8)).ToLowerInvariant(), create: true, mode: 0x1C0, exclusive: true);
    }

    internal void RemoveWorkDirectory(OutboxFiles work) => state.DeleteTree(Path.GetFileName(work.Directory));
}

/// <summary>The checks a record read back from the outbox must pass: anyone who can write there could have written it.</summary>
internal static class OutboxRecord
{
    public const int MaxBytes = 1 << 20;

    public static string FileNameOf(string job, long ticks, string id) => $"{job}~{ticks.ToString("D19", CultureInfo.InvariantCulture)}~{id}.json";

    public static bool IsObjectId(string s) => s.Length is 40 or 64 && s.All(char.IsAsciiHexDigitLower);

    internal static bool IsReceiptName(string name) =>
        name.IndexOf('~') is 16 && IsId(name[..16]) && IsObjectId(name[17..]);

    static bool IsId(string s) => s.Length == 16 && s.All(char.IsAsciiHexDigitLower);

    /// <summary>
    /// The entry in <paramref name="bytes"/>, or the reason it is refused: its name must be &lt;job&gt;~&lt;ticks&gt;~&lt;id&gt;.json
    /// agreeing with its fields; job, remote, branch and directory must be names SafeDeploy itself would accept; the
    /// status a known word; the content a JSON object of that job.
    /// </summary>
    public static (OutboxEntry? Entry, string? Why) Check(string fileName, byte[] bytes)
    {
        OutboxEntry? e;
        try { e = JsonSerializer.Deserialize(bytes, OutboxJson.Default.OutboxEntry); }
        catch (JsonException x) { return (null, $"it is not an outbox record ({x.Message})"); }
        if (e is null) return (null, "it is empty");
        if (!JobName.IsValid(e.JobName)) return (null, "its job name is not a valid job name");
        if (!IsId(e.Id) || fileName != FileNameOf(e.JobName, e.UpdatedAtTicks, e.Id)) return (null, "its file name does not match its job, time and id");
        if (!JobName.IsValidRefName(e.Remote)) return (null, "its remote is not a plain remote name");
        if (!JobName.IsValidRefName(e.Branch)) return (null, "its branch is not a plain branch name");
        if (JobName.NormalizeRepoDirectory(e.StatusDirectory) != e.StatusDirectory) return (null, "its status directory is not a plain relative directory");
        if (!JobStatusNames.All.Contains(e.Status)) return (null, "its status is not a job status");
        try
        {
            using var doc = JsonDocument.Parse(e.Content);
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("job_name", out var j) || j.GetString() != e.JobName)
                return (null, "its content is not the status of its job");
        }
        catch (JsonException) { return (null, "its content is not JSON"); }
        catch (InvalidOperationException) { return (null, "its content is not the status of its job"); }
        return (e with { FileName = fileName }, null);
    }
}
