using System.Text;
using Microsoft.Win32.SafeHandles;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Deployment;

/// <summary>
/// A phase's log: every line goes to its file in the run's log folder (0600, in 0700 folders) and, as a verbose message,
/// to the operator. A log that cannot be created or written fails the phase (<see cref="Open"/> throws, a write
/// throws); an undo log is best-effort (<see cref="OpenForUndo"/>: a full disk must not stop a rollback), its lines then
/// kept in memory only.
/// </summary>
sealed class PhaseLog : TextWriter
{
    readonly SafeFileHandle? file;
    readonly IOperationReporter reporter;
    readonly string prefix;
    readonly StringBuilder pending = new();
    readonly StringBuilder memory = new();

    PhaseLog(string path, SafeFileHandle? file, IOperationReporter reporter, string phase)
    {
        Path = path;
        this.file = file;
        this.reporter = reporter;
        prefix = $"[{phase}] ";
    }

    /// <summary>Creates (or appends to) the log; throws when it cannot (the phase then fails).</summary>
    public static PhaseLog Open(string path, IOperationReporter reporter, string phase) => new(path, Create(path), reporter, phase);

    /// <summary>Like <see cref="Open"/>, but a log that cannot be created is kept in memory (with a warning).</summary>
    public static PhaseLog OpenForUndo(string path, IOperationReporter reporter, string phase)
    {
        try { return Open(path, reporter, phase); }
        catch (Exception e) when (e is Errors.SafeDeployException or IOException)
        {
            reporter.Warning($"The undo log '{path}' could not be created ({e.Message}); the undo goes on, its output is in the result only.");
            return new PhaseLog(path, null, reporter, phase);
        }
    }

    static SafeFileHandle Create(string path)
    {
        StateDirectories.SecureDirectory.Ensure(System.IO.Path.GetDirectoryName(path)!, 0x1C0);
        return Native.Open(path, Native.O_WRONLY | Native.O_APPEND | Native.O_CREAT | Native.O_NOFOLLOW, 0x180);
    }

    public string Path { get; }
    public override Encoding Encoding => Encoding.UTF8;

    public override void Write(char value)
    {
        lock (pending)
        {
            if (value == '\n') { Flush(pending.ToString()); pending.Clear(); }
            else if (value != '\r') pending.Append(value);
        }
    }

    public override void Write(string? value)
    {
        if (value is null) return;
        lock (pending) foreach (var c in value) Write(c);
    }

    public override void WriteLine(string? value)
    {
        lock (pending) { Write(value); Write('\n'); }
    }

    void Flush(string line)
    {
        memory.Append(line).Append('\n');
        if (memory.Length > 2 * MaxTail) memory.Remove(0, memory.Length - MaxTail);
        reporter.Verbose(prefix + line);
        if (file is not null) Native.WriteOnce(file, Encoding.UTF8.GetBytes(line + "\n"), Path);
    }

    const int MaxTail = 64 * 1024;

    /// <summary>The log's text (its last 64 KiB), from memory: what this process wrote to it.</summary>
    public string Text()
    {
        lock (pending)
        {
            if (pending.Length > 0) { var p = pending.ToString(); pending.Clear(); try { Flush(p); } catch (Exception e) when (e is Errors.SafeDeployException or IOException) { } }
            var text = memory.ToString();
            return (text.Length > MaxTail ? text[^MaxTail..] : text).TrimEnd('\n');
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) file?.Dispose();
        base.Dispose(disposing);
    }
}
