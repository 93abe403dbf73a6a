using System.Diagnostics;
using SafeDeploy.Tests.Infrastructure;

namespace SafeDeploy.Tests.Faults;

/// <summary>
/// A small real filesystem that runs out of space: tmpfs mounted by the test (root) with size= and nr_inodes= limits,
/// unmounted (lazily, if something still holds it) on Dispose. <see cref="Fill"/> uses up the space or the inodes.
/// </summary>
public sealed class Tmpfs : IDisposable
{
    readonly TempDir mountPoint = new("tmpfs");

    public Tmpfs(long sizeBytes, int inodes = 1000)
    {
        Path = mountPoint.Path;
        Programs.Run("mount", "-t", "tmpfs", "-o", $"size={sizeBytes},nr_inodes={inodes},mode=0755", "tmpfs", Path);
    }

    /// <summary>The mount point.</summary>
    public string Path { get; }

    public string this[string relative] => System.IO.Path.Combine(Path, relative);

    /// <summary>Writes filler files until the filesystem refuses (ENOSPC): blocks with <paramref name="inodes"/> false, inodes with true.</summary>
    public IReadOnlyList<string> Fill(bool inodes = false)
    {
        var made = new List<string>();
        var dir = Directory.CreateDirectory(this[".filler"]).FullName;
        for (int i = 0; i < 1_000_000; i++)
        {
            var f = System.IO.Path.Combine(dir, $"f{i}");
            try
            {
                if (inodes) File.WriteAllBytes(f, []);
                else File.WriteAllBytes(f, new byte[1 << 16]);
                made.Add(f);
            }
            catch (IOException)
            {
                if (File.Exists(f) && !inodes)
                {
                    // the last block-filler was partly written: keep what fitted, then top up byte-wise
                    made.Add(f);
                    TopUp(System.IO.Path.Combine(dir, $"g{i}"));
                }
                return made;
            }
        }
        throw new InvalidOperationException($"{Path} never filled up");
    }

    static void TopUp(string f)
    {
        try
        {
            using var s = new FileStream(f, FileMode.CreateNew);
            var one = new byte[512];
            while (true) { s.Write(one); s.Flush(); }
        }
        catch (IOException) { }
    }

    /// <summary>Frees what <see cref="Fill"/> used.</summary>
    public void Free() => Directory.Delete(this[".filler"], recursive: true);

    public void Dispose()
    {
        using (var p = Process.Start(new ProcessStartInfo("umount", [Path]) { RedirectStandardError = true })!)
            if (!p.WaitForExit(10_000) || p.ExitCode != 0)
                Process.Start(new ProcessStartInfo("umount", ["-l", Path]) { RedirectStandardError = true })?.WaitForExit(10_000);
        mountPoint.Dispose();
    }
}
