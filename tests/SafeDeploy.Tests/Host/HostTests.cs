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
    public void Errors_GoToStderr_WithPositionIdCategoryAndAdvice_AndAFailedLastStatementExitsOne()
    {
        var o = HostProcess.Run($"'before'\nGet-LockHolder -Path '{dir["missing.lock"]}'");
        Assert.Equal(1, o.ExitCode);
        Assert.Contains("before", o.StdOut);
        Assert.DoesNotContain("LockNotFound", o.StdOut);
        Assert.Contains("FullyQualifiedErrorId : LockNotFound", o.StdErr);
        Assert.Contains("ObjectNotFound", o.StdErr);
        Assert.Contains("RecommendedAction", o.StdErr);
        Assert.Contains("At line:2 char:1", o.StdErr);
    }

    [Fact]
    public void ScriptErrors_NameTheFileLineColumnAndTheLine()
    {
        var script = dir.Write("pos.ps1", "'one'\n  Get-Item -Path '/nonexistent/x'\n'three'\n");
        using var p = HostProcess.StartProgram(RepoPaths.HostExecutable, ["-File", script]);
        var o = p.Wait(TimeSpan.FromMinutes(1));
        Assert.Equal(0, o.ExitCode); // as pwsh -File: a non-terminating error does not fail the script
        Assert.Equal("one\nthree\n", o.StdOut);
        Assert.Contains($"At {script}:2 char:3", o.StdErr);
        Assert.Contains("+   Get-Item -Path '/nonexistent/x'", o.StdErr);
        Assert.Contains("PathNotFound", o.StdErr);
    }

    [Fact]
    public void ACmdletPipedIntoFormatListAndConvertToJson_RunsAndShowsItsObject()
    {
        var o = HostProcess.Run($"Initialize-StateDirectory -Name fl -Path '{dir["fl"]}' | Format-List Name, StateDir; (Initialize-StateDirectory -Name fl -Path '{dir["fl"]}' | ConvertTo-Json -Depth 1 | ConvertFrom-Json).Name");
        Assert.True(o.ExitCode == 0, o.ToString());
        Assert.Matches(@"Name\s+: fl", o.StdOut);
        Assert.Contains("StateDir : " + Path.Combine(dir["fl"], "state"), o.StdOut);
        Assert.EndsWith("fl\n", o.StdOut);
        Assert.True(Directory.Exists(Path.Combine(dir["fl"], "state")));
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
    public void Redirected_ProgressPrintsNothing_ButWarningsAndVerboseStillGoToStderr()
    {
        var lockFile = dir["p.lock"];
        var state = dir["w"];
        Directory.CreateDirectory(Path.Combine(state, "state"));
        File.SetUnixFileMode(Path.Combine(state, "state"), (UnixFileMode)0x1ED); // 0755: looser than asked, so a warning
        var holder = new FlockHolder(lockFile, 120);
        using var p = HostProcess.Start($"$null = Initialize-StateDirectory -Name w -Path '{state}'; Invoke-WithLock -Path '{lockFile}' -ScriptBlock {{ 'got it' }}", extraArgs: "-Verbose");
        Assert.True(p.WaitForOutput("VERBOSE: Waiting for lock", TimeSpan.FromSeconds(60)), p.StdErrSoFar);
        Thread.Sleep(1500); // long enough for the lock's progress ("waiting for <holder>") to have been reported
        int holderPid = holder.Pid;
        holder.Dispose();
        var o = p.Wait(TimeSpan.FromSeconds(60));
        Assert.Equal(0, o.ExitCode);
        Assert.Equal("got it\n", o.StdOut);
        Assert.Contains("WARNING: '" + Path.Combine(state, "state") + "' has mode 755", o.StdErr);
        Assert.Contains($"pid {holderPid}", o.StdErr);
        Assert.DoesNotContain("PROGRESS", o.StdErr);
        Assert.DoesNotContain(": waiting for", o.StdErr); // the progress line's text
        Assert.False(o.StdErr.Contains('\x1b'), "an escape sequence on redirected stderr: " + o.StdErr.Replace("\x1b", "<ESC>"));
    }

    [Fact]
    public void OnATerminal_ProgressIsDrawnOnOneLine()
    {
        var lockFile = dir["t.lock"];
        var holder = new FlockHolder(lockFile, 120);
        // script(1) gives the host a pseudo-terminal for stdin, stdout and stderr; its output is what the terminal showed.
        var log = dir["typescript"];
        using var p = HostProcess.StartProgram("script", ["-q", "-e", "-f", "-c", $"'{RepoPaths.HostExecutable}' -Command \"Invoke-WithLock -Path '{lockFile}' -ScriptBlock {{ 'got it' }}\"", log]);
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline && !(File.Exists(log) && File.ReadAllText(log).Contains(": waiting for"))) Thread.Sleep(50);
        holder.Dispose();
        var o = p.Wait(TimeSpan.FromSeconds(60));
        var screen = File.ReadAllText(log);
        Assert.True(o.ExitCode == 0, o + "\n" + screen);
        Assert.Contains($"Waiting for lock {lockFile}: waiting for", screen);
        Assert.Contains("\r\x1b[K", screen);
        Assert.Contains("got it", screen);
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
