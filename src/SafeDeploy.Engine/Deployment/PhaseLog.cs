using System.Text;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Deployment;

/// <summary>A phase's log: every line goes to its file in the run's log folder and, as a verbose message, to the operator.</summary>
sealed class PhaseLog : TextWriter
{
    readonly FileStream file;
    readonly IOperationReporter reporter;
    readonly string prefix;
    readonly StringBuilder pending = new();

    public PhaseLog(string path, IOperationReporter reporter, string phase)
    {
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        Path = path;
        file = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete);
        this.reporter = reporter;
        prefix = $"[{phase}] ";
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
        var bytes = Encoding.UTF8.GetBytes(line + "\n");
        file.Write(bytes);
        file.Flush();
        reporter.Verbose(prefix + line);
    }

    /// <summary>The log's text (its last 64 KiB).</summary>
    public string Text()
    {
        lock (pending)
        {
            if (pending.Length > 0) { Flush(pending.ToString()); pending.Clear(); }
            return Tail(Path);
        }
    }

    public static string Tail(string path)
    {
        if (!File.Exists(path)) return "";
        using var s = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        const int max = 64 * 1024;
        if (s.Length > max) s.Seek(-max, SeekOrigin.End);
        using var r = new StreamReader(s);
        return r.ReadToEnd().TrimEnd('\n');
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) { Text(); file.Dispose(); }
        base.Dispose(disposing);
    }
}
