using System.Globalization;
using System.Text;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.StateDirectories;

public enum LogLevel { Debug, Info, Warning, Error }

/// <summary>
/// Appends one line per call with a single O_APPEND write(2), so lines from many processes never interleave; a vanished
/// directory is re-created first, so logging never fails for want of a directory.
/// </summary>
public static class StateLog
{
    public static string Append(string logFile, string message, LogLevel level = LogLevel.Info, uint directoryMode = 0x1C0)
    {
        var line = Format(message, level);
        var bytes = Encoding.UTF8.GetBytes(line);
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                using var fd = Native.Open(logFile, Native.O_WRONLY | Native.O_APPEND | Native.O_CREAT | Native.O_NOCTTY, 0x180);
                Native.WriteOnce(fd, bytes, logFile);
                return line.TrimEnd('\n');
            }
            catch (IOException e) when ((e.HResult == Native.ENOENT || e.HResult == Native.ENOTDIR) && attempt < 3)
            {
                SecureDirectory.Ensure(Path.GetDirectoryName(Path.GetFullPath(logFile))!, directoryMode);
            }
        }
    }

    /// <summary>"2026-11-23T09:12:01.123Z [4242] INFO message" — one line, whatever the message holds.</summary>
    public static string Format(string message, LogLevel level)
    {
        var oneLine = message.Replace("\r\n", "\n").Replace("\r", "\\r").Replace("\n", "\\n");
        var stamp = DateTimeOffset.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);
        return $"{stamp} [{Environment.ProcessId}] {level.ToString().ToUpperInvariant()} {oneLine}\n";
    }
}
