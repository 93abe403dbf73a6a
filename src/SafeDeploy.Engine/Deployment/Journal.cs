using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Win32.SafeHandles;
using SafeDeploy.Engine.Actions;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Deployment;

/// <summary>
/// One run's journal: an append-only file of JSON lines (0600, in a 0700 directory). Each record is written with one
/// write(2) and fsynced before <see cref="Write"/> returns; a failed write or fsync throws (DiskFull, IOError), so no
/// step acts on an intent that may not be on disk. Record numbers ("seq") count from 1. Read it with <see cref="JournalView"/>.
/// </summary>
internal sealed class Journal : IDisposable
{
    /// <summary>Test hook: the process kills itself with SIGKILL right after writing the record with this number.</summary>
    public const string CrashAfterVariable = "SAFEDEPLOY_TEST_CRASH_AFTER";

    readonly SafeFileHandle handle;
    readonly object gate = new();
    readonly int crashAfter;
    int seq;

    Journal(string path, SafeFileHandle handle, int seq)
    {
        Path = path;
        this.handle = handle;
        this.seq = seq;
        crashAfter = int.TryParse(Environment.GetEnvironmentVariable(CrashAfterVariable), NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) ? n : 0;
    }

    public string Path { get; }
    public int Count => seq;

    /// <summary>Creates a new journal (the file must not exist).</summary>
    public static Journal Create(string path)
    {
        StateDirectories.SecureDirectory.Ensure(System.IO.Path.GetDirectoryName(path)!, 0x1C0);
        var fd = Native.Open(path, Native.O_WRONLY | Native.O_APPEND | Native.O_CREAT | Native.O_EXCL | Native.O_NOFOLLOW, 0x180);
        Native.FsyncDirectory(System.IO.Path.GetDirectoryName(path)!);
        return new Journal(path, fd, 0);
    }

    /// <summary>Opens an existing journal to append to it (a rollback or an undo of that run).</summary>
    public static Journal Append(string path)
    {
        var existing = Read(path).Count;
        var fd = Native.Open(path, Native.O_WRONLY | Native.O_APPEND | Native.O_NOFOLLOW);
        return new Journal(path, fd, existing);
    }

    /// <summary>Appends one record; it is on disk (written and fsynced) when this returns, else this throws.</summary>
    public int Write(string type, JsonObject fields)
    {
        lock (gate)
        {
            var record = new JsonObject
            {
                ["seq"] = ++seq,
                ["type"] = type,
                ["time"] = DateTimeOffset.UtcNow.ToString("o", CultureInfo.InvariantCulture),
            };
            foreach (var (k, v) in fields) record[k] = v?.DeepClone();
            var line = Encoding.UTF8.GetBytes(record.ToJsonString() + "\n");
            Native.WriteOnce(handle, line, Path);
            Native.Fsync(handle, Path);
            if (crashAfter == seq) Native.Kill(Environment.ProcessId, 9);
            return seq;
        }
    }

    public void WriteUndo(string phase, UndoRecord undo)
    {
        var data = new JsonObject();
        foreach (var (k, v) in undo.Data) data[k] = v;
        var backups = new JsonArray(undo.Backups.Select(b => (JsonNode)new JsonObject
        {
            ["path"] = b.Path, ["backup"] = b.BackupPath, ["mode"] = b.Mode is { } m ? JsonValue.Create(m) : null, ["link"] = b.LinkTarget,
        }).ToArray());
        Write(JournalRecord.Undo, new JsonObject { ["phase"] = phase, ["step"] = undo.Step, ["data"] = data, ["backups"] = backups });
    }

    /// <summary>Journals a phase command's process group: its token before the start, its pgid and leader start time right after.</summary>
    public void WriteProcessGroup(string phase, Platform.ProcessGroupRecord group)
    {
        var o = group.ToJson();
        o["phase"] = phase;
        Write(JournalRecord.ProcessGroup, o);
    }

    /// <summary>Journals a temporary file before it is created, so that recovery removes it if the process dies before its rename.</summary>
    public void WriteTemporary(string phase, string path) => Write(JournalRecord.Temporary, new JsonObject { ["phase"] = phase, ["path"] = path });

    /// <summary>Every record of a journal; a torn last line (a crash mid-write) is ignored.</summary>
    public static List<JsonObject> Read(string path)
    {
        var list = new List<JsonObject>();
        var bytes = LockedFileReader(path);
        foreach (var line in Encoding.UTF8.GetString(bytes).Split('\n'))
        {
            if (line.Length == 0) continue;
            try { if (JsonNode.Parse(line) is JsonObject o) list.Add(o); }
            catch (JsonException) { }
        }
        return list;
    }

    static byte[] LockedFileReader(string path) => Files.LockedFileEditor.ReadUnlocked(path) ?? Array.Empty<byte>();

    public void Dispose() => handle.Dispose();
}
