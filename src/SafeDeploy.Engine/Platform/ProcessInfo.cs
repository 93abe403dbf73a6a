using System.Globalization;
using System.Text;

namespace SafeDeploy.Engine.Platform;

/// <summary>Facts about a process read from /proc: enough to tell a live holder from a reused pid.</summary>
internal sealed record ProcessInfo(int Pid, DateTimeOffset? StartTime, string CommandLine)
{
    static readonly Lazy<string> bootId = new(() => ReadTrimmed("/proc/sys/kernel/random/boot_id") ?? "");
    static readonly Lazy<DateTimeOffset> bootTime = new(ReadBootTime);
    static readonly Lazy<ProcessInfo> current = new(() => Get(Environment.ProcessId) ?? new ProcessInfo(Environment.ProcessId, null, Environment.CommandLine));

    /// <summary>The kernel's boot id: a recorded pid from an earlier boot means nothing now.</summary>
    public static string BootId => bootId.Value;

    public static string HostName => Environment.MachineName;

    /// <summary>This process: read from /proc once, since its pid, start time and command line never change.</summary>
    public static ProcessInfo Current => current.Value;

    /// <summary>Reads /proc/&lt;pid&gt;; null when the process does not exist.</summary>
    public static ProcessInfo? Get(int pid)
    {
        if (pid <= 0) return null;
        var stat = ReadTrimmed($"/proc/{pid}/stat");
        if (stat is null) return null;
        return new ProcessInfo(pid, ParseStartTime(stat), ReadCommandLine(pid));
    }

    static string ReadCommandLine(int pid)
    {
        try
        {
            var raw = File.ReadAllBytes($"/proc/{pid}/cmdline");
            return Encoding.UTF8.GetString(raw).TrimEnd('\0').Replace('\0', ' ');
        }
        catch (IOException) { return ""; }
        catch (UnauthorizedAccessException) { return ""; }
    }

    static DateTimeOffset? ParseStartTime(string stat)
    {
        // Field 22 (starttime, clock ticks since boot) counted after the ')' that closes the command name.
        int close = stat.LastIndexOf(')');
        if (close < 0) return null;
        var fields = stat[(close + 2)..].Split(' ');
        if (fields.Length < 20 || !long.TryParse(fields[19], NumberStyles.None, CultureInfo.InvariantCulture, out var ticks)) return null;
        const double clockTicksPerSecond = 100.0; // sysconf(_SC_CLK_TCK) is 100 on every Linux ABI in use
        return bootTime.Value.AddSeconds(ticks / clockTicksPerSecond);
    }

    static DateTimeOffset ReadBootTime()
    {
        foreach (var line in File.ReadLines("/proc/stat"))
            if (line.StartsWith("btime ", StringComparison.Ordinal))
                return DateTimeOffset.FromUnixTimeSeconds(long.Parse(line[6..], CultureInfo.InvariantCulture));
        return DateTimeOffset.UnixEpoch;
    }

    static string? ReadTrimmed(string path)
    {
        try { return File.ReadAllText(path).Trim(); }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }
}
