using System.Diagnostics;
using System.Text;

namespace SafeDeploy.Tests.Infrastructure;

/// <summary>What a safedeploy process did.</summary>
public sealed record ProcessOutcome(int ExitCode, string StdOut, string StdErr, TimeSpan Duration)
{
    public override string ToString() => $"exit {ExitCode} after {Duration.TotalSeconds:0.0}s\nstdout:\n{StdOut}\nstderr:\n{StdErr}";
}

/// <summary>Runs the real host executable (a separate OS process with its own PowerShell engine) — for multi-process and crash tests.</summary>
public sealed class HostProcess : IDisposable
{
    readonly Process process;
    readonly StringBuilder stdout = new(), stderr = new();
    readonly Stopwatch clock = Stopwatch.StartNew();

    HostProcess(Process process)
    {
        this.process = process;
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (stdout) stdout.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (stderr) stderr.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public int Pid => process.Id;
    public bool HasExited => process.HasExited;
    public string StdOutSoFar { get { lock (stdout) return stdout.ToString(); } }
    public string StdErrSoFar { get { lock (stderr) return stderr.ToString(); } }

    /// <summary>Starts `safedeploy -Command script` (or any program with <paramref name="arguments"/> when given).</summary>
    public static HostProcess Start(string script, IReadOnlyDictionary<string, string?>? env = null, string? workingDirectory = null, params string[] extraArgs)
    {
        var args = new List<string>(extraArgs) { "-Command", script };
        return StartProgram(RepoPaths.HostExecutable, args, env, workingDirectory);
    }

    public static HostProcess StartProgram(string program, IEnumerable<string> args, IReadOnlyDictionary<string, string?>? env = null, string? workingDirectory = null)
    {
        var psi = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? RepoPaths.Root,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["NO_COLOR"] = "1";
        if (env is not null) foreach (var (k, v) in env) { if (v is null) psi.Environment.Remove(k); else psi.Environment[k] = v; }
        var p = Process.Start(psi) ?? throw new InvalidOperationException("cannot start " + program);
        p.StandardInput.Close();
        return new HostProcess(p);
    }

    /// <summary>Runs `safedeploy -Command script` to completion.</summary>
    public static ProcessOutcome Run(string script, IReadOnlyDictionary<string, string?>? env = null, TimeSpan? timeout = null, params string[] extraArgs)
    {
        using var p = Start(script, env, null, extraArgs);
        return p.Wait(timeout ?? TimeSpan.FromMinutes(2));
    }

    public ProcessOutcome Wait(TimeSpan timeout)
    {
        if (!process.WaitForExit(timeout))
        {
            Kill();
            throw new TimeoutException($"process {Pid} did not finish within {timeout}:\n{StdOutSoFar}\n{StdErrSoFar}");
        }
        process.WaitForExit(); // drains the output readers
        return new ProcessOutcome(process.ExitCode, StdOutSoFar, StdErrSoFar, clock.Elapsed);
    }

    /// <summary>Sends a signal (kill -9 by default) to the process.</summary>
    public void Signal(int signal = 9) => Process.Start("kill", [$"-{signal}", Pid.ToString()])!.WaitForExit();

    /// <summary>Waits until the process prints <paramref name="text"/> on stdout or stderr.</summary>
    public bool WaitForOutput(string text, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (StdOutSoFar.Contains(text) || StdErrSoFar.Contains(text)) return true;
            if (process.HasExited) return StdOutSoFar.Contains(text) || StdErrSoFar.Contains(text);
            Thread.Sleep(10);
        }
        return false;
    }

    public void Kill()
    {
        try { if (!process.HasExited) process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
    }

    public void Dispose()
    {
        Kill();
        process.Dispose();
    }
}

/// <summary>
/// Starts N host processes that all wait on a barrier (a file) before they run their script, so their races are real;
/// collects every exit code and output.
/// </summary>
public static class ProcessSwarm
{
    public static IReadOnlyList<ProcessOutcome> RunAtOnce(int count, Func<int, string> scriptFor,
        IReadOnlyDictionary<string, string?>? env = null, TimeSpan? timeout = null, TimeSpan? barrierDeadline = null)
    {
        using var barrier = new TempDir("barrier");
        var go = Path.Combine(barrier.Path, "go");
        var procs = new List<HostProcess>();
        try
        {
            for (int i = 0; i < count; i++)
            {
                var ready = Path.Combine(barrier.Path, $"ready.{i}");
                var prelude = $"[IO.File]::WriteAllText('{ready}', ''); while (-not [IO.File]::Exists('{go}')) {{ [Threading.Thread]::Sleep(1) }}\n";
                procs.Add(HostProcess.Start(prelude + scriptFor(i), env));
            }
            var deadline = DateTime.UtcNow + (barrierDeadline ?? TimeSpan.FromSeconds(60 + count));
            while (Directory.GetFiles(barrier.Path, "ready.*").Length < count)
            {
                if (DateTime.UtcNow > deadline || procs.Any(p => p.HasExited))
                    throw new InvalidOperationException("not every process reached the barrier:\n" + string.Join("\n", procs.Where(p => p.HasExited).Select(p => p.StdErrSoFar)));
                Thread.Sleep(5);
            }
            File.WriteAllText(go, "");
            return procs.Select(p => p.Wait(timeout ?? TimeSpan.FromMinutes(3))).ToList();
        }
        finally { foreach (var p in procs) p.Dispose(); }
    }
}

/// <summary>
/// The real pwsh (the PowerShell dotnet tool 7.6.9 that .ci/run installs): $SAFEDEPLOY_PWSH, pwsh on PATH, or
/// ~/.dotnet/tools/pwsh. When none is there it installs the tool once into out/tools (the registry's ordinary client).
/// </summary>
public static class RealPwsh
{
    static readonly Lazy<string> path = new(Locate);
    public static string Path => path.Value;

    static string Locate()
    {
        var env = Environment.GetEnvironmentVariable("SAFEDEPLOY_PWSH");
        if (!string.IsNullOrEmpty(env)) return env;
        var onPath = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(d => System.IO.Path.Combine(d, "pwsh")).FirstOrDefault(File.Exists);
        if (onPath is not null) return onPath;
        var home = System.IO.Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".dotnet", "tools", "pwsh");
        if (File.Exists(home)) return home;
        var toolDir = System.IO.Path.Combine(RepoPaths.Root, "out", "tools");
        var local = System.IO.Path.Combine(toolDir, "pwsh");
        if (File.Exists(local)) return local;
        using var install = HostProcess.StartProgram("dotnet", ["tool", "install", "--tool-path", toolDir, "PowerShell", "--version", "7.6.9"]);
        var o = install.Wait(TimeSpan.FromMinutes(5));
        if (o.ExitCode != 0 || !File.Exists(local)) throw new InvalidOperationException("no pwsh, and installing the PowerShell dotnet tool failed:\n" + o);
        return local;
    }
}
