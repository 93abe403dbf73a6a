using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Locking;

/// <summary>What a holder writes into its lock file.</summary>
internal sealed record LockHolderRecord(
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
    /// <summary>The holder's real uid according to the kernel (/proc/&lt;pid&gt;/status), not to any record.</summary>
    public uint? Uid { get; init; }
    /// <summary>The user name of <see cref="Uid"/> (from /etc/passwd), or null when unknown.</summary>
    public string? User { get; init; }
    /// <summary>True when the lock file's record describes the holder (same pid, boot, start time, written by its user).</summary>
    public bool RecordTrusted { get; init; }
    /// <summary>Why a record in the lock file was not trusted (another user wrote it, no start time, another process).</summary>
    public string? RecordNote { get; init; }
    /// <summary>Every pid the kernel lists as holding the lock (several for shared locks).</summary>
    public IReadOnlyList<int> Pids { get; init; } = Array.Empty<int>();
    public string State => IsHeld ? "Held" : "Free";

    /// <summary>"pid 123 (sleep 5) since 10:01:02Z" — for messages.</summary>
    public string Describe()
    {
        if (!IsHeld) return "no one";
        var who = Pid is { } p ? $"pid {p}" : "a process in another pid namespace";
        if (Uid is { } u) who += $" (uid {u}{(User is null ? "" : " " + User)})";
        if (!string.IsNullOrEmpty(CommandLine)) who += $" ({Shorten(CommandLine)})";
        if (Host is not null && Host != ProcessInfo.HostName) who += $" on {Host}";
        if (Since is { } s) who += $" since {s.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)}Z";
        if (RecordNote is not null) who += $"; {RecordNote}";
        return who;
    }

    static string Shorten(string s) => s.Length <= 80 ? s : s[..77] + "...";

    /// <summary>Text from a record or /proc made safe to print: control and bidi characters become '?', length bounded.</summary>
    public static string? Clean(string? s, int max = 4096)
    {
        if (s is null) return null;
        var chars = s.Length > max ? s[..max].ToCharArray() : s.ToCharArray();
        for (int i = 0; i < chars.Length; i++)
            if (char.IsControl(chars[i]) || chars[i] is >= '\u202A' and <= '\u202E' or >= '\u2066' and <= '\u2069') chars[i] = '?';
        return new string(chars);
    }
}

/// <summary>Reads who holds a flock from the kernel's own table, never by taking the lock.</summary>
internal static class LockInspector
{
    /// <summary>As <see cref="Inspect"/>, but a missing lock file is a LockNotFound error (ObjectNotFound).</summary>
    public static LockHolder InspectExisting(string path)
    {
        if (Native.Stat(path, followSymlinks: false) is null)
            throw ErrorCatalog.LockNotFound(path);
        return Inspect(path);
    }

    public static LockHolder Inspect(string path)
    {
        var st = Native.Stat(path);
        if (st is null) return new LockHolder { Path = path };
        var entries = ReadKernelLocks(st);
        if (entries.Count == 0) return new LockHolder { Path = path };

        var main = entries.Any(e => e.Write) ? entries.First(e => e.Write) : entries[0];
        int pid = main.Pid;
        var proc = ProcessInfo.Get(pid);
        uint? uid = pid > 0 ? ProcessUid(pid) : null;
        var holder = new LockHolder
        {
            Path = path,
            IsHeld = true,
            Mode = main.Write ? "Exclusive" : "Shared",
            Pid = pid > 0 ? pid : null,
            Host = ProcessInfo.HostName,
            CommandLine = LockHolder.Clean(proc?.CommandLine),
            ProcessStartTime = proc?.StartTime,
            BootId = ProcessInfo.BootId,
            Uid = uid,
            User = uid is { } u ? UserName(u) : null,
            Pids = entries.Select(e => e.Pid).Distinct().ToArray(),
        };
        var record = ReadRecord(path, out var writer);
        if (record is null) return holder;
        // The record is trusted only when it describes the very process the kernel names (same boot, same start time,
        // recorded) and was written by that process's user: a reused pid, a record left by an earlier holder, or one
        // planted by another user is never shown as the holder's.
        string? note = null;
        if (writer is { } w && uid is { } hu && w != hu && w != 0)
            note = $"the lock file holds a record written by uid {w}{(UserName(w) is { } n ? " " + n : "")}, not by the holder: not trusted";
        else if (record.Pid != pid || record.BootId != ProcessInfo.BootId)
            return holder; // an earlier holder's record (e.g. flock(1) holds the lock now): simply not this holder's
        else if (record.ProcessStartTime is null || proc?.StartTime is null)
            note = "the lock file's record has no process start time: not trusted";
        else if (Math.Abs((record.ProcessStartTime.Value - proc.StartTime.Value).TotalSeconds) >= 1)
            note = "the lock file's record is from an earlier process with the same pid: not trusted";
        if (note is not null) return holder with { RecordNote = note };
        return holder with
        {
            RecordTrusted = true, Since = record.Since, Purpose = LockHolder.Clean(record.Purpose, 200),
            Host = LockHolder.Clean(record.Host, 255), CommandLine = LockHolder.Clean(record.CommandLine),
        };
    }

    /// <summary>The holder's own record in the lock file, if it wrote one.</summary>
    public static LockHolderRecord? ReadRecord(string path) => ReadRecord(path, out _);

    /// <summary>The record in the lock file and the uid owning the file (who could have written it).</summary>
    public static LockHolderRecord? ReadRecord(string path, out uint? writer)
    {
        writer = null;
        try
        {
            // Never follow a link or block on a planted FIFO; only a regular file's record is read.
            using var fd = Native.Open(path, Native.O_RDONLY | Native.O_NOCTTY | Native.O_NOFOLLOW | Native.O_NONBLOCK);
            var st = Native.Fstat(fd);
            if (!st.IsRegularFile) return null;
            writer = st.Uid;
            var buf = new byte[8192];
            int n = RandomAccess.Read(fd, buf, 0);
            if (n < FileLock.RecordMarker.Length) return null;
            return JsonSerializer.Deserialize(buf.AsSpan(0, n), LockJson.Default.LockHolderRecord);
        }
        catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException) { return null; }
    }

    /// <summary>The real uid of <paramref name="pid"/> from /proc/&lt;pid&gt;/status ("Uid: real effective saved fs").</summary>
    public static uint? ProcessUid(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
                if (line.StartsWith("Uid:", StringComparison.Ordinal))
                    return uint.TryParse(line.Split('\t', ' ', StringSplitOptions.RemoveEmptyEntries)[1], NumberStyles.None, CultureInfo.InvariantCulture, out var u) ? u : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        return null;
    }

    static string? UserName(uint uid)
    {
        try
        {
            foreach (var line in File.ReadLines("/etc/passwd"))
            {
                var f = line.Split(':');
                if (f.Length > 2 && f[2] == uid.ToString(CultureInfo.InvariantCulture)) return LockHolder.Clean(f[0], 64);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        return null;
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
