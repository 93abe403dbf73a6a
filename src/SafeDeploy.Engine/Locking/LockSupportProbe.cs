using System.Security.Cryptography;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Locking;

/// <summary>Whether flock excludes on a directory's filesystem, proven with a second real process.</summary>
public sealed record LockSupportReport
{
    public required string Path { get; init; }
    public required string FileSystemType { get; init; }
    public bool IsNetworkFileSystem { get; init; }
    /// <summary>A second process was kept out while this one held the lock, and got in after it let go.</summary>
    public bool ExclusionWorks { get; init; }
    public string Detail { get; init; } = "";
}

public static class LockSupportProbe
{
    /// <summary>Holds a lock in this process and asks flock(1), a separate process, to take it: it must fail, then succeed.</summary>
    public static LockSupportReport Run(string directory, CancellationToken cancellationToken = default)
    {
        directory = System.IO.Path.GetFullPath(directory);
        if (!Directory.Exists(directory))
            throw new SafeDeployException("DirectoryNotFound", ErrorKind.ObjectNotFound, directory,
                $"Directory '{directory}' does not exist.", "Give an existing directory on the filesystem you want to test.");
        var fs = FileSystemKind.Of(directory);
        var flockProgram = ExternalCommand.Which("flock") ?? throw new SafeDeployException("FlockNotFound", ErrorKind.NotInstalled, "flock",
            "The flock(1) program (util-linux) is needed as the second process of the test.", "Install util-linux (apt-get install util-linux).");
        var probe = System.IO.Path.Combine(directory, $".safedeploy-locktest-{Environment.ProcessId}-{Convert.ToHexString(RandomNumberGenerator.GetBytes(4))}");
        try
        {
            bool keptOut, letIn;
            using (FileLock.Acquire(probe, new LockOptions { RecordHolder = false }, cancellationToken))
                keptOut = TryFromOtherProcess(flockProgram, probe, cancellationToken) == 75;
            letIn = TryFromOtherProcess(flockProgram, probe, cancellationToken) == 0;
            bool works = keptOut && letIn;
            var detail = works
                ? fs.IsNetwork
                    ? $"flock excludes between processes on this node, but {fs.Name} may not carry locks to other nodes: do not rely on it across machines."
                    : "flock excludes between processes."
                : keptOut ? "The second process could not take the lock even after it was released."
                          : $"The second process took the lock while this one held it: flock does nothing on this {fs.Name} mount.";
            return new LockSupportReport
            {
                Path = directory, FileSystemType = fs.Name, IsNetworkFileSystem = fs.IsNetwork, ExclusionWorks = works, Detail = detail,
            };
        }
        finally { try { File.Delete(probe); } catch (IOException) { } } // our own probe file, never a lock anyone waits on
    }

    static int TryFromOtherProcess(string flockProgram, string file, CancellationToken token) =>
        new ExternalCommand { Program = flockProgram, Arguments = ["-n", "-E", "75", file, "true"], Timeout = TimeSpan.FromSeconds(10) }
            .Run(token).ExitCode;
}
