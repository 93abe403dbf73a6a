using System.Globalization;
using System.Text;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Files;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.StateDirectories;

internal enum LogLevel { Debug, Info, Warning, Error }

/// <summary>
/// Appends one line per call with a single O_APPEND write(2), so lines from many processes never interleave; a vanished
/// directory is re-created first, so logging never fails for want of a directory. The log file is opened without
/// following a link (a planted FIFO or device is refused), created 0600, and every write error is reported.
/// </summary>
internal static class StateLog
{
    /// <summary>Appends one line; <paramref name="durable"/> also fdatasyncs it (checked) before returning.</summary>
    public static string Append(string logFile, string message, LogLevel level = LogLevel.Info, uint directoryMode = 0x1C0, bool durable = false)
    {
        logFile = Path.GetFullPath(logFile);
        var line = Format(message, level);
        var bytes = Encoding.UTF8.GetBytes(line);
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                using var dir = SafePath.OpenParent(logFile, out var name);
                using var fd = dir.OpenHere(name, SafeOpen.Write | SafeOpen.Append | SafeOpen.Create, 0x180, out _);
                Native.WriteOnce(fd, bytes, logFile);
                if (durable) Native.Fdatasync(fd, logFile);
                return line.TrimEnd('\n');
            }
            catch (SafeDeployException e) when (e.ErrorId == "DirectoryNotFound" && attempt < 3)
            {
                SecureDirectory.Ensure(Path.GetDirectoryName(logFile)!, directoryMode);
            }
            catch (NativeIOException e) { throw IoErrors.From(e.Errno, logFile, "append to the log", inner: e); }
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
