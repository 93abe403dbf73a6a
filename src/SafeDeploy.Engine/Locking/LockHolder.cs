using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Locking;

/// <summary>What a holder writes into its lock file.</summary>
public sealed record LockHolderRecord(
    [property: JsonPropertyName("safedeployLockHolder")] int Version,
    int Pid, string Host, DateTimeOffset? ProcessStartTime, string BootId, string CommandLine, DateTimeOffset Since, string? Purpose);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(LockHolderRecord))]
internal partial class LockJson : JsonSerializerContext { }

/// <summary>Who holds a lock, according to the kernel (/proc/locks), enriched with the holder's own record when it matches.</summary>
public sealed record LockHolder
{
    public required string Path { get; init; }
    /// <summary>True when the kernel says some process holds a flock on the file.</summary>
    public bool IsHeld { get; init; }
    /// <summary>Exclusive or Shared; null when free.</summary>
    public string? Mode { get; init; }
    public int? Pid { get; init; }
    public string? Host { get; init; }
    public string? CommandLine { get; init; }
    public DateTimeOffset? ProcessStartTime { get; init; }
    public string? BootId { get; init; }
    /// <summary>Since when the holder has had the lock (from its record; null for holders that keep none, like flock(1)).</summary>
    public DateTimeOffset? Since { get; init; }
    public string? Purpose { get; init; }
    /// <summary>Every pid the kernel lists as holding the lock (several for shared locks).</summary>
    public IReadOnlyList<int> Pids { get; init; } = Array.Empty<int>();
    public string State => IsHeld ? "Held" : "Free";

    /// <summary>"pid 123 (sleep 5) since 10:01:02Z" — for messages.</summary>
    public string Describe()
    {
        if (!IsHeld) return "no one";
        var who = Pid is { } p ? $"pid {p}" : "a process in another pid namespace";
        if (!string.IsNullOrEmpty(CommandLine)) who += $" ({Shorten(CommandLine)})";
        if (Host is not null && Host != ProcessInfo.HostName) who += $" on {Host}";
        if (Since is { } s) who += $" since {s.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)}Z";
        return who;
    }

    static string Shorten(string s) => s.Length <= 80 ? s : s[..77] + "...";
}

/// <summary>Reads who holds a flock from the kernel's own table, never by taking the lock.</summary>
public static class LockInspector
{
    public static LockHolder Inspect(string path)
    {
        var st = Native.Stat(path);
        if (st is null) return new LockHolder { Path = path };
        var entries = ReadKernelLocks(st);
        if (entries.Count == 0) return new LockHolder { Path = path };

        var main = entries.Any(e => e.Write) ? entries.First(e => e.Write) : entries[0];
        int pid = main.Pid;
        var proc = ProcessInfo.Get(pid);
        var holder = new LockHolder
        {
            Path = path,
            IsHeld = true,
            Mode = main.Write ? "Exclusive" : "Shared",
            Pid = pid > 0 ? pid : null,
            Host = ProcessInfo.HostName,
            CommandLine = proc?.CommandLine,
            ProcessStartTime = proc?.StartTime,
            BootId = ProcessInfo.BootId,
            Pids = entries.Select(e => e.Pid).Distinct().ToArray(),
        };
        var record = ReadRecord(path);
        // The record is trusted only when it describes the very process the kernel names (same boot, same start time):
        // a reused pid, or a record left by an earlier holder, is not mistaken for the holder.
        if (record is not null && record.Pid == pid && record.BootId == ProcessInfo.BootId &&
            (record.ProcessStartTime is null || proc?.StartTime is null || Math.Abs((record.ProcessStartTime.Value - proc.StartTime.Value).TotalSeconds) < 1))
        {
            holder = holder with { Since = record.Since, Purpose = record.Purpose, Host = record.Host, CommandLine = record.CommandLine };
        }
        return holder;
    }

    /// <summary>The holder's own record in the lock file, if it wrote one.</summary>
    public static LockHolderRecord? ReadRecord(string path)
    {
        try
        {
            using var fd = Native.Open(path, Native.O_RDONLY | Native.O_NOCTTY);
            var buf = new byte[8192];
            int n = RandomAccess.Read(fd, buf, 0);
            if (n < FileLock.RecordMarker.Length) return null;
            return JsonSerializer.Deserialize(buf.AsSpan(0, n), LockJson.Default.LockHolderRecord);
        }
        catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException) { return null; }
    }

    readonly record struct KernelLock(int Pid, bool Write);

    static List<KernelLock> ReadKernelLocks(FileStatus st)
    {
        var found = new List<KernelLock>();
        string dev = $"{st.DevMajor:x2}:{st.DevMinor:x2}:{st.Inode}";
        string[] lines;
        try { lines = File.ReadAllLines("/proc/locks"); }
        catch (IOException) { return found; }
        foreach (var line in lines)
        {
            // "12: FLOCK  ADVISORY  WRITE 4242 fd:01:1234 0 EOF"; blocked waiters are marked "->" and do not hold it.
            if (line.Contains("->", StringComparison.Ordinal)) continue;
            var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (f.Length < 6 || f[1] != "FLOCK") continue;
            if (!string.Equals(f[5], dev, StringComparison.OrdinalIgnoreCase)) continue;
            int.TryParse(f[4], NumberStyles.Integer, CultureInfo.InvariantCulture, out var pid);
            found.Add(new KernelLock(pid, f[3] == "WRITE"));
        }
        return found;
    }
}
