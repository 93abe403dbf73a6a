using System.Diagnostics;

namespace SafeDeploy.Tests.Infrastructure;

/// <summary>Runs a small external program (chmod, chown, stat) for a test and returns its trimmed stdout; a failure throws.</summary>
public static class Programs
{
    public static string Run(string program, params string[] args)
    {
        using var p = Process.Start(new ProcessStartInfo(program, args) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var stdout = p.StandardOutput.ReadToEnd();
        var stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{program} {string.Join(' ', args)} exited {p.ExitCode}: {stderr}");
        return stdout.Trim();
    }
}
