using System.Management.Automation;
using SafeDeploy.Engine.Locking;
using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.Locking;

public sealed class LockTests : IDisposable
{
    readonly TempDir dir = new("lock");
    readonly PsSession ps = new();

    public void Dispose() { ps.Dispose(); dir.Dispose(); }

    [Fact]
    public void InvokeWithLock_WaitsWhileFlockProgramHoldsTheLock()
    {
        var file = dir["x.lock"];
        using var holder = new FlockHolder(file, 1.5);
        var r = ps.Run("Invoke-WithLock -Path $f -ScriptBlock { [IO.Directory]::Exists('/proc/' + $holderPid) }",
            ("f", file), ("holderPid", holder.Pid));
        Assert.True(r.AllErrors.Count() == 0, r.Describe());
        // The block ran only once flock(1) had let go: its process was gone by then.
        Assert.False((bool)r.Output.Single().BaseObject);
    }

    [Fact]
    public void AWaitShorterThanASecond_ShowsWhoItWaitsFor_AndEndsItsProgress()
    {
        var file = dir["short.lock"];
        var reporter = new Models.RecordingReporter();
        using var holder = new FlockHolder(file, 0.7); // the wait cannot outlast flock(1)'s 0.7 s
        using (FileLock.Acquire(file, new LockOptions { Reporter = reporter }))
            Assert.Equal(75, FlockHolder.TryOnce(file)); // ours now: flock(1) is kept out
        var progress = reporter.Lines.Where(l => l.StartsWith("P: Waiting for lock", StringComparison.Ordinal)).ToList();
        Assert.Contains(progress, l => l.Contains($"waiting for pid {holder.Pid}", StringComparison.Ordinal));
        Assert.Contains(progress, l => l.Contains("acquired", StringComparison.Ordinal));
    }

    [Fact]
    public void FlockProgram_IsKeptOutWhileInvokeWithLockHolds_AndGetsInAfter()
    {
        var file = dir["y.lock"];
        using var host = HostProcess.Start($"Invoke-WithLock -Path '{file}' -ScriptBlock {{ 'holding'; [Threading.Thread]::Sleep(1500) }}");
        Assert.True(host.WaitForOutput("holding", TimeSpan.FromSeconds(30)), host.StdErrSoFar);
        Assert.Equal(75, FlockHolder.TryOnce(file));
        var outcome = host.Wait(TimeSpan.FromSeconds(30));
        Assert.Equal(0, outcome.ExitCode);
        Assert.Equal(0, FlockHolder.TryOnce(file));
    }

    [Fact]
    public void InvokeWithLock_TimeoutGivesUp_WithResourceBusyNamingTheHolder_AndNeverDeletesTheLockFile()
    {
        var file = dir["busy.lock"];
        using var holder = new FlockHolder(file, 30);
        var r = ps.Run("Invoke-WithLock -Path $f -TimeoutSec 1 -ScriptBlock { 'ran' }", ("f", file));
        var error = Assert.Single(r.AllErrors);
        Assert.StartsWith("LockTimeout", error.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.ResourceBusy, error.CategoryInfo.Category);
        Assert.Equal(file, error.TargetObject);
        Assert.Contains($"pid {holder.Pid}", error.ToString());
        Assert.NotNull(error.ErrorDetails?.RecommendedAction);
        Assert.DoesNotContain(r.Output, o => o.ToString() == "ran");
        Assert.True(File.Exists(file));
        Assert.False(holder.HasExited); // nothing was stolen: the holder still holds it
        Assert.Equal(75, FlockHolder.TryOnce(file));
    }

    [Fact]
    public void InvokeWithLock_IsReleasedWhenTheBlockThrows_AndWhenThePipelineIsStopped()
    {
        var file = dir["t.lock"];
        var r = ps.Run("Invoke-WithLock -Path $f -ScriptBlock { throw 'boom' }", ("f", file));
        Assert.Contains("boom", r.Terminating?.Message ?? string.Join(",", r.Errors));
        Assert.Equal(0, FlockHolder.TryOnce(file));

        var stopped = ps.RunAndStop("Invoke-WithLock -Path $f -ScriptBlock { [Threading.Thread]::Sleep(200); while ($true) { [Threading.Thread]::Sleep(20) } }",
            TimeSpan.FromMilliseconds(800), ("f", file));
        Assert.IsAssignableFrom<PipelineStoppedException>(stopped.Terminating);
        Assert.Equal(0, FlockHolder.TryOnce(file));
    }

    [Fact]
    public void StopProcessing_ReachesAWaitingInvokeWithLock()
    {
        var file = dir["wait.lock"];
        using var holder = new FlockHolder(file, 30);
        var stopped = ps.RunAndStop("Invoke-WithLock -Path $f -ScriptBlock { 'ran' }", TimeSpan.FromMilliseconds(500), ("f", file));
        Assert.IsAssignableFrom<PipelineStoppedException>(stopped.Terminating);
        Assert.Empty(stopped.Output);
        Assert.False(holder.HasExited);
    }

    [Fact]
    public void Lock_IsReleasedByTheKernel_WhenItsHolderIsKilledWithSignal9()
    {
        var file = dir["k.lock"];
        using var host = HostProcess.Start($"Invoke-WithLock -Path '{file}' -ScriptBlock {{ 'holding'; [Threading.Thread]::Sleep(60000) }}");
        Assert.True(host.WaitForOutput("holding", TimeSpan.FromSeconds(30)), host.StdErrSoFar);
        Assert.Equal(host.Pid, LockInspector.Inspect(file).Pid);
        host.Signal(9);
        Assert.True(FlockHolder.WaitUntilFree(file, TimeSpan.FromSeconds(10)));
        var r = ps.Run("Invoke-WithLock -Path $f -TimeoutSec 5 -ScriptBlock { 'after' }", ("f", file));
        Assert.Equal("after", r.Output.Single().ToString());
        Assert.True(File.Exists(file));
    }

    [Fact]
    public void GetLockHolder_NamesTheRecordedHolder_AndSaysFreeOnceReleased_WhateverTheFileSays()
    {
        var file = dir["h.lock"];
        using var host = HostProcess.Start($"Invoke-WithLock -Path '{file}' -ScriptBlock {{ 'holding'; [Threading.Thread]::Sleep(60000) }}");
        Assert.True(host.WaitForOutput("holding", TimeSpan.FromSeconds(30)), host.StdErrSoFar);
        var held = ps.Run("Get-LockHolder -Path $f", ("f", file));
        Assert.Equal("Held", held.Prop(0, "State"));
        Assert.Equal(host.Pid, held.Prop(0, "Pid"));
        Assert.Contains("safedeploy", (string)held.Prop(0, "CommandLine")!, StringComparison.OrdinalIgnoreCase);
        Assert.NotNull(held.Prop(0, "Since"));
        Assert.Equal(File.ReadAllText("/proc/sys/kernel/random/boot_id").Trim(), held.Prop(0, "BootId"));
        host.Signal(9);
        Assert.True(FlockHolder.WaitUntilFree(file, TimeSpan.FromSeconds(10)));
        Assert.Contains("safedeployLockHolder", File.ReadAllText(file)); // the stale record is still there ...
        var free = ps.Run("Get-LockHolder -Path $f", ("f", file));
        Assert.Equal("Free", free.Prop(0, "State")); // ... and means nothing
        Assert.Null(free.Prop(0, "Pid"));
    }

    [Fact]
    public void GetLockHolder_DoesNotTrustARecordOfAnotherProcess_ReusedPidIsNotTheHolder()
    {
        var file = dir["r.lock"];
        using var holder = new FlockHolder(file, 30);
        // A record claiming the holder's pid, but from a process that started at another time: a reused pid.
        // (Written without .NET's own flock, which would meet flock(1)'s.)
        using (var fd = SafeDeploy.Engine.Platform.Native.Open(file, SafeDeploy.Engine.Platform.Native.O_WRONLY))
            RandomAccess.Write(fd, System.Text.Encoding.UTF8.GetBytes($"{{\"safedeployLockHolder\":1,\"pid\":{holder.Pid},\"host\":\"elsewhere\",\"processStartTime\":\"2001-01-01T00:00:00+00:00\",\"bootId\":\"{ProcessInfoBootId()}\",\"commandLine\":\"impostor\",\"since\":\"2001-01-01T00:00:00+00:00\",\"purpose\":null}}"), 0);
        var r = ps.Run("Get-LockHolder -Path $f", ("f", file));
        Assert.Equal("Held", r.Prop(0, "State"));
        Assert.Equal(holder.Pid, r.Prop(0, "Pid"));
        Assert.Null(r.Prop(0, "Since"));
        Assert.DoesNotContain("impostor", (string?)r.Prop(0, "CommandLine") ?? "");
        Assert.Contains("flock", (string?)r.Prop(0, "CommandLine") ?? "");
    }

    static string ProcessInfoBootId() => File.ReadAllText("/proc/sys/kernel/random/boot_id").Trim();

    [Fact]
    public void GetLockHolder_MissingLockFile_IsObjectNotFound()
    {
        var missing = dir["nope.lock"];
        var r = ps.Run("Get-LockHolder -Path $f", ("f", missing));
        var e = Assert.Single(r.AllErrors);
        Assert.StartsWith("LockNotFound", e.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.ObjectNotFound, e.CategoryInfo.Category);
        Assert.Equal(missing, e.TargetObject);
        Assert.False(File.Exists(missing));
    }

    [Fact]
    public void InvokeWithLock_MissingDirectory_IsObjectNotFound_AndCreatesNothing()
    {
        var path = dir["no/such/dir/x.lock"];
        var r = ps.Run("Invoke-WithLock -Path $f -ScriptBlock { 'ran' }", ("f", path));
        var e = Assert.Single(r.AllErrors);
        Assert.StartsWith("LockPathNotFound", e.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.ObjectNotFound, e.CategoryInfo.Category);
        Assert.Equal(path, e.TargetObject);
        Assert.False(Directory.Exists(dir["no"]));
    }

    [Fact]
    public void SharedLocks_AdmitSeveralReaders_ButKeepAWriterOut()
    {
        var file = dir["s.lock"];
        using var reader = HostProcess.Start($"Invoke-WithLock -Path '{file}' -Shared -ScriptBlock {{ 'reading'; [Threading.Thread]::Sleep(60000) }}");
        Assert.True(reader.WaitForOutput("reading", TimeSpan.FromSeconds(30)), reader.StdErrSoFar);
        var second = ps.Run("Invoke-WithLock -Path $f -Shared -TimeoutSec 5 -ScriptBlock { 'second reader' }", ("f", file));
        Assert.Equal("second reader", second.Output.Single().ToString());
        var writer = ps.Run("Invoke-WithLock -Path $f -TimeoutSec 1 -ScriptBlock { 'writer' }", ("f", file));
        Assert.StartsWith("LockTimeout", Assert.Single(writer.AllErrors).FullyQualifiedErrorId);
    }

    [Fact]
    public void NamedLocks_LiveInTheStateDirectory_OnAFreshHome()
    {
        using var home = new TempDir("home");
        using var env = EnvScope.FreshHome(home.Path);
        var r = ps.Run("Invoke-WithLock -Name 'gpu-setup' -ScriptBlock { 'inside' }; Get-LockHolder -Name 'gpu-setup'");
        Assert.True(r.AllErrors.Count() == 0, r.Describe());
        Assert.Equal("inside", r.Output[0].ToString());
        Assert.Equal("Free", r.Prop(1, "State"));
        Assert.True(File.Exists(Path.Combine(home.Path, ".local/state/safedeploy/locks/gpu-setup.lock")));
    }

    [Fact]
    public void TenProcesses_IncrementingOneCounterUnderTheLock_LoseNoIncrement()
    {
        var file = dir["counter.lock"];
        var counter = dir["counter.txt"];
        File.WriteAllText(counter, "0");
        const int processes = 6, rounds = 15;
        var outcomes = ProcessSwarm.RunAtOnce(processes, _ => $$"""
            for ($i = 0; $i -lt {{rounds}}; $i++) {
                Invoke-WithLock -Path '{{file}}' -ScriptBlock {
                    $n = [int][IO.File]::ReadAllText('{{counter}}')
                    [Threading.Thread]::Sleep(1)
                    [IO.File]::WriteAllText('{{counter}}', [string]($n + 1))
                }
            }
            """);
        Assert.All(outcomes, o => Assert.True(o.ExitCode == 0, o.ToString()));
        Assert.Equal(processes * rounds, int.Parse(File.ReadAllText(counter)));
    }

    [Fact]
    public void TestLockSupport_ProvesExclusionWithASecondProcess_AndNamesTheFileSystem()
    {
        var r = ps.Run("Test-LockSupport -Path $d", ("d", dir.Path));
        Assert.True(r.AllErrors.Count() == 0, r.Describe());
        Assert.Equal(true, r.Prop(0, "ExclusionWorks"));
        Assert.False(string.IsNullOrEmpty((string?)r.Prop(0, "FileSystemType")));
        Assert.Empty(Directory.GetFiles(dir.Path, ".safedeploy-locktest*"));
    }

    [Fact]
    public void FileLock_HandsTheLockToAWaiterAsSoonAsItIsReleased()
    {
        var file = dir["e.lock"];
        var first = FileLock.Acquire(file);
        var acquired = new ManualResetEventSlim();
        var t = new Thread(() => { using var second = FileLock.Acquire(file); acquired.Set(); });
        t.Start();
        Assert.False(acquired.Wait(300));
        first.Dispose();
        Assert.True(acquired.Wait(TimeSpan.FromSeconds(10)));
        t.Join();
    }
}
