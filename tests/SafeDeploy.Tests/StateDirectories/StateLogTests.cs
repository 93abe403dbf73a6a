using System.Text.RegularExpressions;
using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.StateDirectories;

public sealed class StateLogTests : IDisposable
{
    readonly TempDir dir = new("log");
    readonly PsSession ps = new();

    public void Dispose() { ps.Dispose(); dir.Dispose(); }

    static readonly Regex line = new(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[(\d+)\] (DEBUG|INFO|WARNING|ERROR) (.*)$");

    [Fact]
    public void Logging_SurvivesTheDirectoryVanishingBetweenTwoCalls()
    {
        var s = ps.Run("Initialize-StateDirectory -Name t -Path $p", ("p", dir["b"]));
        var logFile = (string)s.Prop(0, "LogFile")!;
        ps.Run("Write-StateLog -LogFile $f -Message 'first'", ("f", logFile));
        Directory.Delete(Path.GetDirectoryName(logFile)!, recursive: true);
        var r = ps.Run("Write-StateLog -LogFile $f -Message 'second' -Level Warning", ("f", logFile));
        Assert.True(!r.AllErrors.Any(), r.Describe());
        var m = line.Match(File.ReadAllText(logFile).TrimEnd('\n'));
        Assert.True(m.Success);
        Assert.Equal("WARNING", m.Groups[2].Value);
        Assert.Equal("second", m.Groups[3].Value);
        Assert.Equal("700", Convert.ToString((int)File.GetUnixFileMode(Path.GetDirectoryName(logFile)!) & 0xFFF, 8));
    }

    [Fact]
    public void AMultiLineMessage_IsOneLine()
    {
        var f = dir["one.log"];
        ps.Run("Write-StateLog -LogFile $f -Message \"a`nb`r`nc\"", ("f", f));
        var lines = File.ReadAllLines(f);
        Assert.Single(lines);
        Assert.EndsWith(@"a\nb\nc", lines[0]);
    }

    [Fact]
    public void EightProcessesLoggingAtOnce_NeverInterleaveInsideALine()
    {
        var f = dir["many/shared.log"];
        const int processes = 8, lines = 40;
        var payload = new string('x', 3000);
        var outcomes = ProcessSwarm.RunAtOnce(processes, i =>
            $"for ($n = 0; $n -lt {lines}; $n++) {{ Write-StateLog -LogFile '{f}' -Message ('p{i} n' + $n + ' {payload}') }}");
        Assert.All(outcomes, o => Assert.True(o.ExitCode == 0, o.ToString()));
        var all = File.ReadAllLines(f);
        Assert.Equal(processes * lines, all.Length);
        foreach (var l in all)
        {
            var m = line.Match(l);
            Assert.True(m.Success, "torn line: " + l[..Math.Min(80, l.Length)]);
            Assert.Matches(@"^p\d n\d+ x{3000}$", m.Groups[3].Value);
        }
        for (int i = 0; i < processes; i++) Assert.Equal(lines, all.Count(l => l.Contains($"] INFO p{i} n")));
    }

    [Fact]
    public void EveryFoundationCmdlet_WorksOnAFreshHomeWithoutDotCache()
    {
        var home = dir["freshhome"];
        Directory.CreateDirectory(home);
        var env = new Dictionary<string, string?> { ["HOME"] = home, ["XDG_STATE_HOME"] = null, ["XDG_CACHE_HOME"] = null };
        // The PowerShell engine itself makes ~/.cache/powershell at start-up; remove ~/.cache and ~/.local before our cmdlets run.
        var o = HostProcess.Run($$"""
            [IO.Directory]::Delete('{{home}}/.cache', $true); if ([IO.Directory]::Exists('{{home}}/.local')) { [IO.Directory]::Delete('{{home}}/.local', $true) }
            Write-StateLog -Message 'first line on a fresh machine'
            Invoke-WithLock -Name setup -ScriptBlock { 'locked' }
            Get-LockHolder -Name setup | ForEach-Object State
            Edit-LockedFile -Path '{{home}}/.npmrc' -EnsureLine 'prefix=~/.npm-global' -Key 'prefix='
            Test-LockSupport | ForEach-Object ExclusionWorks
            (Initialize-StateDirectory -Name tool).CacheDir
            """, env);
        Assert.True(o.ExitCode == 0, o.ToString());
        Assert.Contains("locked", o.StdOut);
        Assert.Contains("Free", o.StdOut);
        Assert.Contains("True", o.StdOut);
        Assert.Contains($"{home}/.cache/tool", o.StdOut);
        Assert.Contains("first line on a fresh machine", File.ReadAllText($"{home}/.local/state/safedeploy/log/safedeploy.log"));
        Assert.Equal("prefix=~/.npm-global\n", File.ReadAllText($"{home}/.npmrc"));
    }
}
