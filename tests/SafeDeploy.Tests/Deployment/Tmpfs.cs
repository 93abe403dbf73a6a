using SafeDeploy.Tests.Infrastructure;

namespace SafeDeploy.Tests.Deployment;

/// <summary>A real small filesystem (tmpfs with size= and nr_inodes= limits) mounted by the test as root; unmounted on Dispose.</summary>
public sealed class Tmpfs : IDisposable
{
    public Tmpfs(string path, string options)
    {
        Path = path;
        Directory.CreateDirectory(path);
        Programs.Run("mount", "-t", "tmpfs", "-o", options, "tmpfs", path);
    }

    public string Path { get; }

    public void Dispose()
    {
        try { Programs.Run("umount", Path); }
        catch (InvalidOperationException) { Programs.Run("umount", "-l", Path); } // a process still inside: detach it
    }
}
