using System.Diagnostics;

namespace SafeDeploy.Tests.JobStatus;

/// <summary>Another local user: a real unprivileged process (uid/gid 65534, no groups) running a shell script, with a deadline.</summary>
public static class Attacker
{
    public const int Uid = 65534;

    /// <summary>Runs <paramref name="script"/> with /bin/sh as nobody; a non-zero exit or a timeout fails the test.</summary>
    public static string Run(string script, TimeSpan? timeout = null)
    {
        var psi = new ProcessStartInfo("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "/bin/sh", "-ec", script])
        {
            RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = "/",
        };
        psi.Environment["HOME"] = "/nonexistent";
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEndAsync();
        if (!p.WaitForExit((int)(timeout ?? TimeSpan.FromSeconds(30)).TotalMilliseconds))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"the attacker's script did not finish: {script}");
        }
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"the attacker's script failed ({p.ExitCode}): {stderr.Result}\n{script}");
        return stdout.Result;
    }

    /// <summary>Single-quotes a value for the attacker's shell script.</summary>
    public static string Q(string s) => "'" + s.Replace("'", "'\\''") + "'";
}
