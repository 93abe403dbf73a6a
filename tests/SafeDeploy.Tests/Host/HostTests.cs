using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.Host;

public sealed class HostTests : IDisposable
{
    readonly TempDir dir = new("host");

    public void Dispose() => dir.Dispose();

    [Fact]
    public void File_RunsAScriptWithNamedAndPositionalArguments_AndItsExitCodeIsTheHosts()
    {
        var script = dir.Write("s.ps1", "param([string] $Name, [int] $Count, [switch] $Loud, [string] $Rest)\n\"name=$Name count=$Count loud=$Loud rest=$Rest\"\nexit 3\n");
        using var p = HostProcess.StartProgram(RepoPaths.HostExecutable, ["-File", script, "-Name", "it's", "-Count", "2", "-Loud", "tail"]);
        var o = p.Wait(TimeSpan.FromMinutes(1));
        Assert.Equal(3, o.ExitCode);
        Assert.Contains("name=it's count=2 loud=True rest=tail", o.StdOut);
    }

    [Fact]
    public void AScriptPathAlone_RunsLikeFile_AndASuccessfulScriptExitsZero()
    {
        var script = dir.Write("ok.ps1", "'fine'\n");
        using var p = HostProcess.StartProgram(RepoPaths.HostExecutable, [script]);
        var o = p.Wait(TimeSpan.FromMinutes(1));
        Assert.Equal(0, o.ExitCode);
        Assert.Equal("fine", o.StdOut.Trim());
    }

    [Fact]
    public void Errors_GoToStderr_WithIdCategoryAndAdvice_AndTheExitCodeIsOne()
    {
        var o = HostProcess.Run($"Get-LockHolder -Path '{dir["missing.lock"]}'; 'after'");
        Assert.Equal(1, o.ExitCode);
        Assert.Contains("after", o.StdOut);
        Assert.DoesNotContain("LockNotFound", o.StdOut);
        Assert.Contains("FullyQualifiedErrorId : LockNotFound", o.StdErr);
        Assert.Contains("ObjectNotFound", o.StdErr);
        Assert.Contains("RecommendedAction", o.StdErr);
    }

    [Fact]
    public void Verbose_IsShownOnStderrOnlyWithTheVerboseSwitch()
    {
        var lockFile = dir["v.lock"];
        var quiet = HostProcess.Run($"Invoke-WithLock -Path '{lockFile}' -ScriptBlock {{ 'x' }}");
        Assert.DoesNotContain("VERBOSE:", quiet.StdErr);
        var loud = HostProcess.Run($"Invoke-WithLock -Path '{lockFile}' -ScriptBlock {{ 'x' }}", extraArgs: "-Verbose");
        Assert.Equal(0, loud.ExitCode);
        Assert.Contains("VERBOSE: Acquired lock", loud.StdErr);
    }

    [Fact]
    public void Progress_AndWarnings_AreShownOnStderr_WhileWaitingForALock()
    {
        var lockFile = dir["p.lock"];
        var state = dir["w"];
        Directory.CreateDirectory(Path.Combine(state, "state"));
        File.SetUnixFileMode(Path.Combine(state, "state"), (UnixFileMode)0x1ED); // 0755: looser than asked, so a warning
        var holder = new FlockHolder(lockFile, 120);
        using var p = HostProcess.Start($"$null = Initialize-StateDirectory -Name w -Path '{state}'; Invoke-WithLock -Path '{lockFile}' -ScriptBlock {{ 'got it' }}");
        Assert.True(p.WaitForOutput("PROGRESS: Waiting for lock", TimeSpan.FromSeconds(60)), p.StdErrSoFar);
        int holderPid = holder.Pid;
        holder.Dispose();
        var o = p.Wait(TimeSpan.FromSeconds(60));
        Assert.Equal(0, o.ExitCode);
        Assert.Contains("got it", o.StdOut);
        Assert.Contains("WARNING: '" + Path.Combine(state, "state") + "' has mode 755", o.StdErr);
        Assert.Contains("PROGRESS: Waiting for lock", o.StdErr);
        Assert.Contains($"pid {holderPid}", o.StdErr);
    }

    [Fact]
    public void Output_IsRenderedThroughTheModulesFormatViews()
    {
        var o = HostProcess.Run($"Initialize-StateDirectory -Name fmt -Path '{dir["b"]}'");
        Assert.Equal(0, o.ExitCode);
        var header = o.StdOut.Split('\n').First(l => l.Trim().Length > 0);
        Assert.Matches(@"^Name\s+Scope\s+StateDir\s+CacheDir\s+Created\s*$", header);
    }

    [Fact]
    public void CtrlC_StopsAWaitingCmdlet_AndTheHostExits130()
    {
        var lockFile = dir["c.lock"];
        using var holder = new FlockHolder(lockFile, 60);
        using var p = HostProcess.Start($"'started'; Invoke-WithLock -Path '{lockFile}' -ScriptBlock {{ 'never' }}");
        Assert.True(p.WaitForOutput("started", TimeSpan.FromSeconds(60)), p.StdErrSoFar);
        Thread.Sleep(500);
        p.Signal(2); // SIGINT, what Ctrl+C sends
        var o = p.Wait(TimeSpan.FromSeconds(30));
        Assert.Equal(130, o.ExitCode);
        Assert.DoesNotContain("never", o.StdOut);
        Assert.False(holder.HasExited); // the holder kept its lock; it was our wait that stopped
    }

    [Fact]
    public void UnknownOptions_AndMissingScripts_AreUsageErrors()
    {
        using var a = HostProcess.StartProgram(RepoPaths.HostExecutable, ["-Bogus"]);
        Assert.Equal(64, a.Wait(TimeSpan.FromMinutes(1)).ExitCode);
        using var b = HostProcess.StartProgram(RepoPaths.HostExecutable, ["-File", dir["nope.ps1"]]);
        var o = b.Wait(TimeSpan.FromMinutes(1));
        Assert.Equal(64, o.ExitCode);
        Assert.Contains("not found", o.StdErr);
    }
}
