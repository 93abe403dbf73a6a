using System.Diagnostics;
using SafeDeploy.Tests.Infrastructure;

namespace SafeDeploy.Tests.Security;

/// <summary>
/// Another local user, for attacker tests (issue 12): every action is a real process running as uid/gid 65534
/// (`setpriv --reuid=65534 --regid=65534 --clear-groups`), so the kernel, not the test, decides what it may do.
/// It owns directories it is given (<see cref="OwnedDirectory"/>), plants symlinks, FIFOs and hard links there or in a
/// sticky world-writable directory (<see cref="StickyDirectory"/>), and can race us by swapping a path in a loop
/// (<see cref="StartSwapping"/>). Dispose stops every process it started.
/// </summary>
public sealed class Attacker : IDisposable
{
    public const int Uid = 65534;
    readonly TempDir scratch = new("attacker");
    readonly List<Process> running = [];

    public Attacker()
    {
        // The attacker must be able to reach its directories: the scratch root is searchable by everyone.
        File.SetUnixFileMode(scratch.Path, (UnixFileMode)0x1ED);
    }

    /// <summary>Runs <paramref name="command"/> as the attacker; a failure throws with its stderr.</summary>
    public string Run(params string[] command) =>
        Programs.Run("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "--", .. command]);

    /// <summary>Runs a shell snippet as the attacker.</summary>
    public string Sh(string script) => Run("sh", "-c", script);

    /// <summary>A new directory owned by the attacker (mode 0755, not sticky): it can replace anything in it.</summary>
    public string OwnedDirectory(string name)
    {
        var dir = scratch[name];
        Directory.CreateDirectory(dir);
        Programs.Run("chown", $"{Uid}:{Uid}", dir);
        return dir;
    }

    /// <summary>A root-owned world-writable sticky directory, like /tmp (the attacker may add entries, not replace ours).</summary>
    public string StickyDirectory(string name)
    {
        var dir = scratch[name];
        Directory.CreateDirectory(dir);
        File.SetUnixFileMode(dir, (UnixFileMode)0x3FF); // 1777
        return dir;
    }

    /// <summary>
    /// A root-owned directory the attacker's group may write (root:65534, 0775, not sticky), like a team's shared
    /// directory: the attacker may rename and replace any entry in it, root's included.
    /// </summary>
    public string GroupWritableDirectory(string name)
    {
        var dir = scratch[name];
        Directory.CreateDirectory(dir);
        Programs.Run("chown", $"0:{Uid}", dir);
        File.SetUnixFileMode(dir, (UnixFileMode)0x1FD); // 0775
        return dir;
    }

    /// <summary>The attacker makes <paramref name="link"/> point at <paramref name="target"/>.</summary>
    public void Symlink(string target, string link) => Run("ln", "-sfn", target, link);

    /// <summary>The attacker makes a FIFO at <paramref name="path"/> (opening it for writing would block us forever).</summary>
    public void Fifo(string path) => Run("mkfifo", path);

    /// <summary>The attacker hard-links <paramref name="existing"/> (a file it can reach, e.g. root's) as <paramref name="link"/>.</summary>
    public void HardLink(string existing, string link) => Run("ln", existing, link);

    /// <summary>The attacker writes <paramref name="content"/> into a file of its own.</summary>
    public void WriteFile(string path, string content) => Sh($"printf '%s' '{content.Replace("'", "'\\''")}' > '{path}'");

    /// <summary>
    /// Swaps <paramref name="path"/> in a loop between a real directory and a symlink to <paramref name="linkTarget"/>
    /// (rename over it, so it is never absent) until Dispose: a race against a walk that checks, then opens.
    /// </summary>
    public void StartSwapping(string path, string linkTarget)
    {
        var dir = Path.GetDirectoryName(path)!;
        var name = Path.GetFileName(path);
        var script = $"cd '{dir}' && mkdir -p '{name}' && while :; do mv -T '{name}' '.real-{name}'; ln -sfn '{linkTarget}' '{name}'; " +
                     $"rm -f '{name}'; mv -T '.real-{name}' '{name}'; done 2>/dev/null";
        var p = Process.Start(new ProcessStartInfo("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "--", "sh", "-c", script])
            { RedirectStandardError = true, RedirectStandardOutput = true })!;
        running.Add(p);
    }

    /// <summary>
    /// Exchanges <paramref name="path"/> in a loop between a directory (the attacker's, or one already there that it may
    /// rename, e.g. root's in a <see cref="GroupWritableDirectory"/>) and a symlink to
    /// <paramref name="linkTarget"/> with renameat2(RENAME_EXCHANGE) (a small C program: the exchange is one system call), so the name is always one or the other, never
    /// absent: a race against a walk that looks at a component twice (open, then stat by name) until Dispose.
    /// </summary>
    public void StartExchanging(string path, string linkTarget)
    {
        var dir = Path.GetDirectoryName(path)!;
        var name = Path.GetFileName(path);
        const string source = """
            #define _GNU_SOURCE
            #include <errno.h>
            #include <fcntl.h>
            #include <stdio.h>
            #include <sys/stat.h>
            #include <unistd.h>
            /* argv: directory, name, link target. The name is a directory (made unless it exists) or the link, never absent. */
            int main(int argc, char **argv) {
                char link[4096];
                if (argc != 4 || chdir(argv[1]) != 0) { perror("chdir"); return 2; }
                snprintf(link, sizeof link, ".link-%s", argv[2]);
                if (symlink(argv[3], link) != 0 || (mkdir(argv[2], 0755) != 0 && errno != EEXIST)) { perror("setup"); return 2; }
                for (;;) if (renameat2(AT_FDCWD, argv[2], AT_FDCWD, link, RENAME_EXCHANGE) != 0) { perror("renameat2"); return 2; }
            }
            """;
        var program = scratch["exchange"];
        if (!File.Exists(program))
        {
            File.WriteAllText(scratch["exchange.c"], source);
            Programs.Run("gcc", "-O2", "-o", program, scratch["exchange.c"]);
            File.SetUnixFileMode(program, (UnixFileMode)0x1ED);
        }
        var p = Process.Start(new ProcessStartInfo("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "--", program, dir, name, linkTarget])
            { RedirectStandardError = true, RedirectStandardOutput = true })!;
        running.Add(p);
        // Started when the name exists; a loop that died at once (no renameat2) says why.
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!Path.Exists(path) && DateTime.UtcNow < deadline && !p.HasExited) Thread.Sleep(20);
        if (p.HasExited || !Path.Exists(path)) throw new InvalidOperationException("the exchanging loop did not start: " + p.StandardError.ReadToEnd());
    }

    public void Dispose()
    {
        foreach (var p in running)
        {
            try { if (!p.HasExited) { p.Kill(entireProcessTree: true); p.WaitForExit(10_000); } } catch (InvalidOperationException) { }
            p.Dispose();
        }
        scratch.Dispose();
    }
}
