using System.Text;
using System.Text.Json;
using Microsoft.Win32.SafeHandles;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Locking;

// The lock file itself: opened without following links or blocking on a FIFO, the holder's record written only into a
// file that is ours, and, after the lock, checked to be still the file the path names.
internal sealed partial class FileLock
{
    void RecordHolder(string? purpose, bool withCommandLine)
    {
        if (!mayRecord) return; // a lock file someone else made (or linked elsewhere) is locked, never written
        var fd = Handle;
        var head = new byte[RecordMarker.Length];
        int n = RandomAccess.Read(fd, head, 0);
        bool ours = n == 0 || Encoding.UTF8.GetString(head, 0, n) == RecordMarker;
        if (!ours) return; // a file with other content: never overwrite it
        var me = ProcessInfo.Current;
        var record = new LockHolderRecord(1, me.Pid, ProcessInfo.HostName, me.StartTime, ProcessInfo.BootId,
            withCommandLine ? me.CommandLine : "", DateTimeOffset.UtcNow, purpose);
        var bytes = JsonSerializer.SerializeToUtf8Bytes(record, LockJson.Default.LockHolderRecord);
        try
        {
            RandomAccess.Write(fd, bytes, 0);
            Native.Truncate(fd, bytes.Length, Path); // only the record we own is shortened, never someone's file
        }
        catch (IOException) { } // a read-only lock file still locks; the record is a courtesy
        catch (UnauthorizedAccessException) { }
    }

    /// <summary>The opened lock file: the descriptor, whether this call created it, and whether a holder record may go into it.</summary>
    readonly record struct LockFileHandle(SafeFileHandle Fd, bool Created, bool MayRecord);

    // Opened through SafePath: the last component is never followed, a FIFO or device is refused, a new file is 0600
    // and never truncated. A record is written only into a file we created, or own with no other name (nlink 1).
    static LockFileHandle OpenLockFile(string path, LockOptions options)
    {
        try
        {
            string name = System.IO.Path.GetFileName(path);
            using var opened = options.Directory is null ? SafePath.OpenParent(path, out name) : null;
            var dir = opened ?? options.Directory!;
            SafeFileHandle? fd;
            bool created;
            bool writable = true;
            try { fd = dir.TryOpenHere(name, SafeOpen.ReadWrite | (options.Create ? SafeOpen.Create : 0), options.CreateMode, out created); }
            catch (SafeDeployException e) when (e.ErrorId == "AccessDenied")
            {
                // A lock file we may only read (or on a read-only filesystem) still locks.
                writable = false;
                fd = dir.TryOpenHere(name, SafeOpen.Read, 0, out created);
            }
            if (fd is null)
                throw new SafeDeployException("LockPathNotFound", ErrorKind.ObjectNotFound, path, $"There is no lock file '{path}'.",
                    "Check the path, or let the lock be created (a named lock, -Name, lives in the state directory).");
            var st = Native.Fstat(fd);
            bool mine = st.Uid == Native.GetEffectiveUserId() && st.Nlink == 1;
            return new LockFileHandle(fd, created, writable && (created || mine));
        }
        catch (SafeDeployException e) when (e.ErrorId == "DirectoryNotFound")
        {
            throw new SafeDeployException("LockPathNotFound", ErrorKind.ObjectNotFound, path, $"Cannot open lock file '{path}': {e.Message}",
                "Create the directory that holds the lock file, or use a named lock (-Name), which lives in the state directory.", e);
        }
        catch (SafeDeployException e) when (e.ErrorId == "AccessDenied")
        {
            throw new SafeDeployException("LockAccessDenied", ErrorKind.PermissionDenied, path, $"Cannot open lock file '{path}': {e.Message}",
                "Run as a user who may read that file, or choose a lock file you own.", e);
        }
    }

    /// <summary>
    /// The file locked was no longer the one the path names (replaced while we waited): that happens once or twice when
    /// editors rename over it, never a hundred times running, unless someone keeps swapping the path (or a directory on it).
    /// </summary>
    static void CheckSwaps(string path, int swaps)
    {
        if (swaps >= 100)
            throw new SafeDeployException("LockPathUnstable", ErrorKind.ResourceBusy, path,
                $"The lock file '{path}' was replaced {swaps} times while SafeDeploy took its lock: something keeps swapping it or a directory on its path.",
                "Find what keeps replacing it (a directory another user can write, a racing script), stop it, then run again.");
    }

    static bool StillNamesPath(SafeFileHandle fd, string path, LockOptions options)
    {
        // Followed like the open was (a trusted link in the last place leads to the file we locked); in a given directory, by name.
        var now = options.Directory is { } dir ? Native.StatAt(dir.Handle, System.IO.Path.GetFileName(path), followSymlinks: false) : Native.Stat(path);
        return now is not null && now.SameFileAs(Native.Fstat(fd));
    }

}
