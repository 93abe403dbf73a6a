using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Win32.SafeHandles;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Files;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Services;

/// <summary>
/// The process manager's pid file, written and read only through the safe-path primitive (in the -Root jail when there
/// is one): no link followed, no FIFO, no file of another user in a directory they control; written by SafeDeploy
/// itself (temporary file, fsync, rename in the same directory descriptor), never by a shell redirect. A pid read back is
/// trusted only for a process that carries this pid file's service token in its environment (<see cref="TokenVariable"/>),
/// which only SafeDeploy's launcher gives: a pid someone else wrote into the file cannot make SafeDeploy signal their pick.
/// </summary>
internal sealed class PidFile(string path, string? root)
{
    /// <summary>Environment variable the launcher gives the service: a token derived from the pid file's path.</summary>
    public const string TokenVariable = "SAFEDEPLOY_SERVICE";

    /// <summary>The pid file (already under -Root when there is one).</summary>
    public string Path { get; } = System.IO.Path.GetFullPath(path);

    /// <summary>The token of this pid file's service (stable across runs: the same pid file names the same service).</summary>
    public string Token => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes("safedeploy-service:" + Path)))[..32].ToLowerInvariant();

    /// <summary>Writes <paramref name="pid"/> atomically (0644, creating the directory).</summary>
    public void Write(int pid) => In(create: true, (dir, name) =>
    {
        AtomicReplace.Write(dir, name, Encoding.ASCII.GetBytes(pid.ToString(CultureInfo.InvariantCulture) + "\n"),
            new AtomicWriteOptions { Mode = 0x1A4, KeepOwner = false });
        return 0;
    });

    /// <summary>The pid in the file; null when absent or not a pid. A link, FIFO or another user's file throws (SafePath's errors).</summary>
    public int? Read() => In(create: false, (dir, name) =>
    {
        {
            if (dir.Stat(name) is null) return (int?)null;
            using var fd = dir.OpenFile(name);
            var buffer = new byte[64];
            int n = RandomAccess.Read(fd, buffer, 0);
            var text = Encoding.ASCII.GetString(buffer, 0, n).Trim();
            return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && pid > 1 ? pid : null;
        }
    });

    /// <summary>Removes the pid file (never what a link there points to).</summary>
    public void Delete() => In(create: false, (dir, name) => { if (dir.Delete(name)) dir.Fsync(); return 0; });

    /// <summary>The pid is alive and was started by SafeDeploy's launcher for this pid file (its environment holds our token).</summary>
    public bool IsOurs(int pid)
    {
        if (!ProcessLiveness.IsAlive(pid)) return false;
        byte[] env;
        try { env = File.ReadAllBytes($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/environ"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
        var entry = TokenVariable + "=" + Token;
        return Encoding.UTF8.GetString(env).Split('\0').Contains(entry, StringComparer.Ordinal);
    }

    T? In<T>(bool create, Func<SafeDirectory, string, T> f) => ServicePath.In(Path, root, create, f);
}

/// <summary>Files of the process manager (pid file, log) opened through the primitive: in the -Root jail, or by a trusted walk.</summary>
internal static class ServicePath
{
    /// <summary>
    /// Runs <paramref name="f"/> on the directory holding <paramref name="path"/> (already under <paramref name="root"/>),
    /// the jail kept open meanwhile; a missing directory (when not creating) gives f's default.
    /// </summary>
    internal static T? In<T>(string path, string? root, bool create, Func<SafeDirectory, string, T> f)
    {
        SafeDirectory? jail = null;
        try
        {
            string name;
            SafeDirectory dir;
            try
            {
                if (string.IsNullOrEmpty(root)) dir = SafePath.OpenParent(path, out name, createParents: create);
                else
                {
                    jail = SafeDirectory.OpenRoot(root);
                    var rel = System.IO.Path.GetRelativePath(jail.Path, path);
                    if (rel.StartsWith("..", StringComparison.Ordinal) || System.IO.Path.IsPathRooted(rel))
                        throw new SafeDeployException("PathOutsideRoot", ErrorKind.InvalidArgument, path, $"'{path}' is not under the root '{root}'.", "Give the service's files under -Root.");
                    int slash = rel.LastIndexOf('/');
                    name = slash < 0 ? rel : rel[(slash + 1)..];
                    dir = jail.OpenDirectory(slash < 0 ? "" : rel[..slash], create);
                }
            }
            catch (SafeDeployException e) when (!create && e.ErrorId is "DirectoryNotFound") { return default; }
            using (dir) return f(dir, name);
        }
        finally { jail?.Dispose(); }
    }

    /// <summary>
    /// Makes sure the service's log can be appended to by path: a regular file (created 0640) of root or ours, in a
    /// directory only root or we can change, so the launcher's `>>log` opens what was checked here. Returns the path.
    /// </summary>
    internal static string PrepareLog(string logFile, string? root) => In(System.IO.Path.GetFullPath(logFile), root, true, (dir, name) =>
    {
        if (!SafePath.Trusted(dir.Status))
            throw new SafeDeployException("UntrustedPath", ErrorKind.SecurityError, dir.FullPath(name),
                $"The service log's directory '{dir.Path}' can be changed by another user: the log could be swapped for a link to any file between SafeDeploy's check and the service's start.",
                "Put the log in a directory only root (or you) can write, e.g. /var/log.");
        using var fd = dir.OpenFile(name, SafeOpen.Append | SafeOpen.Write | SafeOpen.Create, 0x1A0, out _);
        return dir.FullPath(name);
    })!;
}
