using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace SafeDeploy.Engine.Platform;

/// <summary>
/// A process group SafeDeploy started (a phase's command, in its own session): the leader's pid (= the group id), its
/// start time in clock ticks since boot and the boot id, exact identity so a reused pid is never taken for it, and a
/// random token every process of the group carries in its environment (<see cref="ProcessGroup.TokenVariable"/>).
/// </summary>
internal sealed record ProcessGroupRecord(int Pgid, long StartTicks, string BootId, string Token)
{
    /// <summary>A token journaled before the command starts (no leader known yet): its carriers are found by the token alone.</summary>
    public static ProcessGroupRecord ForToken(string token) => new(0, 0, ProcessInfo.BootId, token);

    /// <summary>For a journal record: {"pgid":…,"startTicks":…,"bootId":…,"token":…}.</summary>
    public JsonObject ToJson() => new() { ["pgid"] = Pgid, ["startTicks"] = StartTicks, ["bootId"] = BootId, ["token"] = Token };

    /// <summary>Reads <see cref="ToJson"/> back; null when a field is missing or malformed (such a record is not acted on).</summary>
    public static ProcessGroupRecord? FromJson(JsonObject? o)
    {
        if (o is null) return null;
        try
        {
            var pgid = (int?)o["pgid"]; var ticks = (long?)o["startTicks"]; var boot = (string?)o["bootId"]; var token = (string?)o["token"];
            if (boot is not { Length: > 0 } || token is not { Length: > 0 }) return null;
            return pgid > 1 && ticks > 0 ? new ProcessGroupRecord(pgid.Value, ticks.Value, boot, token) : new ProcessGroupRecord(0, 0, boot, token);
        }
        catch (Exception e) when (e is FormatException or InvalidOperationException) { return null; }
    }
}

/// <summary>What <see cref="ProcessGroup.EndIfAlive"/> found and did.</summary>
internal enum ProcessGroupOutcome
{
    /// <summary>No process of the group is left (or the record is from an earlier boot).</summary>
    NotRunning,
    /// <summary>Its processes were ended (SIGTERM, then SIGKILL after the grace time) and are gone.</summary>
    Ended,
    /// <summary>Some survived SIGKILL within the deadline (uninterruptible sleep).</summary>
    Survived,
}

/// <summary>Ends what a dead run left running, recognising its processes exactly (start time, token), never a reused pid.</summary>
internal static class ProcessGroup
{
    /// <summary>Environment variable holding the group's token in every process SafeDeploy starts for a phase.</summary>
    public const string TokenVariable = "SAFEDEPLOY_PROCESS_GROUP";

    /// <summary>A new random token (128 bits, hex).</summary>
    public static string NewToken() => Convert.ToHexString(RandomNumberGenerator.GetBytes(16)).ToLowerInvariant();

    /// <summary>The record of a just-started leader; null when it is already gone.</summary>
    public static ProcessGroupRecord? Describe(int pid, string token) =>
        StartTicks(pid) is { } ticks ? new ProcessGroupRecord(pid, ticks, ProcessInfo.BootId, token) : null;

    /// <summary>
    /// Every live process of the record: the leader when its start time matches, members of its group (a group id is not
    /// reused while any member lives, so members are ours when the leader is, or when one carries the token), and any
    /// process carrying the token (one that left the group with setsid).
    /// </summary>
    public static IReadOnlyList<int> Members(ProcessGroupRecord record)
    {
        if (record.BootId != ProcessInfo.BootId) return [];
        var inGroup = new List<int>();
        var carriers = new List<int>();
        foreach (var pid in AllPids())
        {
            var stat = Stat(pid);
            if (stat is null || stat.Value.State is 'Z' or 'X') continue;
            bool member = record.Pgid > 1 && stat.Value.Pgrp == record.Pgid;
            bool carrier = HasToken(pid, record.Token);
            if (member) inGroup.Add(pid);
            if (carrier) carriers.Add(pid);
        }
        bool leaderOurs = record.Pgid > 1 && StartTicks(record.Pgid) == record.StartTicks;
        bool groupOurs = leaderOurs || inGroup.Intersect(carriers).Any();
        return (groupOurs ? inGroup.Union(carriers) : carriers).Distinct().Order().ToList();
    }

    /// <summary>
    /// Ends the record's processes: SIGTERM to each, SIGKILL to what is left after <paramref name="grace"/>; waits (at most
    /// <paramref name="grace"/> + 10 s) until none is left. Safe on a stale record: nothing else is ever signalled.
    /// </summary>
    public static ProcessGroupOutcome EndIfAlive(ProcessGroupRecord record, TimeSpan grace, CancellationToken cancellationToken = default)
    {
        var members = Members(record);
        if (members.Count == 0) return ProcessGroupOutcome.NotRunning;
        Signal(record, members, 15);
        if (WaitGone(record, DateTime.UtcNow + grace, cancellationToken)) return ProcessGroupOutcome.Ended;
        Signal(record, Members(record), 9);
        return WaitGone(record, DateTime.UtcNow + TimeSpan.FromSeconds(10), cancellationToken) ? ProcessGroupOutcome.Ended : ProcessGroupOutcome.Survived;
    }

    /// <summary>SIGKILL to every process of a group we are running now (timeout or cancel of a phase command).</summary>
    public static void Kill(ProcessGroupRecord record) => Signal(record, Members(record), 9);

    static void Signal(ProcessGroupRecord record, IReadOnlyList<int> members, int signal)
    {
        // Each pid was identified just now; a pid that exited since cannot be reused before it is reaped by its parent.
        foreach (var pid in members) Native.Kill(pid, signal);
    }

    static bool WaitGone(ProcessGroupRecord record, DateTime deadline, CancellationToken token)
    {
        while (Members(record).Count > 0)
        {
            if (DateTime.UtcNow >= deadline) return false;
            token.ThrowIfCancellationRequested();
            Thread.Sleep(20);
        }
        return true;
    }

    /// <summary>Field 22 of /proc/&lt;pid&gt;/stat (start time in clock ticks since boot); null when the process is gone.</summary>
    public static long? StartTicks(int pid) => Stat(pid)?.StartTicks;

    static (char State, int Pgrp, long StartTicks)? Stat(int pid)
    {
        string text;
        try { text = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
        int close = text.LastIndexOf(')');
        if (close < 0 || close + 2 >= text.Length) return null;
        var f = text[(close + 2)..].Split(' ');
        // After the command name: state(3) ppid(4) pgrp(5) ... starttime(22).
        if (f.Length < 20 || !int.TryParse(f[2], NumberStyles.None, CultureInfo.InvariantCulture, out var pgrp)
            || !long.TryParse(f[19], NumberStyles.None, CultureInfo.InvariantCulture, out var ticks)) return null;
        return (f[0][0], pgrp, ticks);
    }

    static IEnumerable<int> AllPids()
    {
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
            if (int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid)) yield return pid;
    }

    static bool HasToken(int pid, string token)
    {
        byte[] env;
        try { env = File.ReadAllBytes($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/environ"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
        var needle = Encoding.ASCII.GetBytes(TokenVariable + "=" + token);
        var span = env.AsSpan();
        for (int i = span.IndexOf(needle); i >= 0;)
        {
            // The whole entry: starts the block or follows a NUL, ends at a NUL or the end.
            bool starts = i == 0 || span[i - 1] == 0;
            int end = i + needle.Length;
            if (starts && (end == span.Length || span[end] == 0)) return true;
            int next = span[(i + 1)..].IndexOf(needle);
            i = next < 0 ? -1 : i + 1 + next;
        }
        return false;
    }
}
