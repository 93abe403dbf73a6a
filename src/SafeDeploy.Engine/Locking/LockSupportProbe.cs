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
    /// <summary>
    /// Whether a lock taken here keeps out a process on another node: true only when proven through a second mount of
    /// the same directory (-OtherPath), false when that probe got in or when the filesystem may be shared by nodes
    /// (NFS, Lustre, GPFS, FUSE...) and nothing proved it; null for a local filesystem, which no other node sees.
    /// </summary>
    public bool? ReachesOtherNodes { get; init; }
    /// <summary>The second mount probed across, if any.</summary>
    public string? OtherPath { get; init; }
    public string Detail { get; init; } = "";
}

internal static class LockSupportProbe
{
    /// <summary>
    /// Holds a lock in this process and asks flock(1), a separate process, to take it: it must fail, then succeed. With
    /// <paramref name="otherPath"/> (the same directory seen through another mount, as another node sees it), the second
    /// process also tries through that path: it must be kept out there too for exclusion to reach other nodes.
    /// </summary>
    public static LockSupportReport Run(string directory, CancellationToken cancellationToken = default, string? otherPath = null)
    {
        directory = ExistingDirectory(directory);
        otherPath = otherPath is null ? null : ExistingDirectory(otherPath);
        var fs = FileSystemKind.Of(directory);
        var flockProgram = ExternalCommand.Which("flock") ?? throw new SafeDeployException("FlockNotFound", ErrorKind.NotInstalled, "flock",
            "The flock(1) program (util-linux) is needed as the second process of the test.", "Install util-linux (apt-get install util-linux).");
        var name = $".safedeploy-locktest-{Environment.ProcessId}-{Convert.ToHexString(RandomNumberGenerator.GetBytes(4))}";
        var probe = System.IO.Path.Combine(directory, name);
        try
        {
            bool keptOut, letIn, keptOutThere = false;
            using (var held = FileLock.Acquire(probe, new LockOptions { RecordHolder = false, CreateMode = 0x180 }, cancellationToken))
            {
                keptOut = TryFromOtherProcess(flockProgram, probe, cancellationToken) == 75;
                if (otherPath is not null)
                {
                    var there = System.IO.Path.Combine(otherPath, name);
                    if (!File.Exists(there))
                        throw new SafeDeployException("NotSameDirectory", ErrorKind.InvalidArgument, otherPath,
                            $"'{otherPath}' does not show the probe file made in '{directory}': it is not the same directory through another mount.",
                            "Give the path under which another node (or another mount) sees the same directory.");
                    keptOutThere = TryFromOtherProcess(flockProgram, there, cancellationToken) == 75;
                }
            }
            letIn = TryFromOtherProcess(flockProgram, probe, cancellationToken) == 0;
            bool works = keptOut && letIn;
            bool? reaches = otherPath is not null ? works && keptOutThere : fs.IsNetwork ? false : null;
            var detail = !works
                ? keptOut ? "The second process could not take the lock even after it was released."
                          : $"The second process took the lock while this one held it: flock does nothing on this {fs.Name} mount."
                : otherPath is not null
                    ? keptOutThere
                        ? $"flock excludes between processes, also through '{otherPath}'."
                        : $"flock excludes between processes on this mount, but not through '{otherPath}': exclusion does not reach other nodes. SafeDeploy's model cache stays correct there (at worst a duplicate transfer); do not rely on locks across machines."
                    : fs.IsNetwork
                        ? $"flock excludes between processes on this node, but nothing proves that it reaches other nodes on {fs.Name}: do not rely on it across machines (Test-LockSupport -OtherPath probes through another mount)."
                        : "flock excludes between processes.";
            return new LockSupportReport
            {
                Path = directory, FileSystemType = fs.Name, IsNetworkFileSystem = fs.IsNetwork, ExclusionWorks = works,
                ReachesOtherNodes = reaches, OtherPath = otherPath, Detail = detail,
            };
        }
        finally { try { File.Delete(probe); } catch (IOException) { } } // our own probe file, never a lock anyone waits on
    }

    static string ExistingDirectory(string directory)
    {
        directory = System.IO.Path.GetFullPath(directory);
        if (!Directory.Exists(directory))
            throw new SafeDeployException("DirectoryNotFound", ErrorKind.ObjectNotFound, directory,
                $"Directory '{directory}' does not exist.", "Give an existing directory on the filesystem you want to test.");
        return directory;
    }

    static int TryFromOtherProcess(string flockProgram, string file, CancellationToken token) =>
        new ExternalCommand { Program = flockProgram, Arguments = ["-n", "-E", "75", file, "true"], Timeout = TimeSpan.FromSeconds(10) }
            .Run(token).ExitCode;
}
