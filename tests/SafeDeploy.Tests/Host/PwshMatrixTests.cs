using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.Host;

/// <summary>
/// The one-liners cron users write, each run by the real pwsh and by safedeploy as separate processes, side by side:
/// the same exit code and the same stdout. None of them uses SafeDeploy, so pwsh runs them without the module.
/// One difference is deliberate and not in the matrix: pwsh writes warnings and verbose messages to stdout, safedeploy to
/// stderr (so that a cron job's stdout stays its output; HostTests check that).
/// </summary>
public sealed class PwshMatrixTests
{
    public static TheoryData<string, string, string> Scripts => new()
    {
        { "format-table", "File", "[pscustomobject]@{ Name = 'a'; Size = 1 }, [pscustomobject]@{ Name = 'bb'; Size = 22 } | Format-Table" },
        { "format-list", "File", "Set-Content \"$PSScriptRoot/d.txt\" 'twelve bytes'; Get-Item \"$PSScriptRoot/d.txt\" | Format-List Name, Length" },
        { "json", "File", "$o = '{\"a\":1,\"b\":[1,2,3]}' | ConvertFrom-Json; $o.b.Count; $o | ConvertTo-Json -Compress; @{ k = 'v' } | ConvertTo-Json" },
        { "csv", "File", "$f = Join-Path $PSScriptRoot o.csv; [pscustomobject]@{ n = 'x'; v = 1 }, [pscustomobject]@{ n = 'y'; v = 2 } | Export-Csv $f; Import-Csv $f | ForEach-Object { $_.n + '=' + $_.v }; Get-Content $f" },
        { "select-sort-group-measure", "File", "1..10 | Where-Object { $_ % 2 } | Sort-Object -Descending | Select-Object -First 3; 'a', 'b', 'a' | Group-Object | Sort-Object Name | ForEach-Object { \"$($_.Name):$($_.Count)\" }; (1..4 | Measure-Object -Sum -Maximum).Sum; 'x', 'yy' | Select-Object @{ n = 'L'; e = { $_.Length } } | Format-Table -HideTableHeaders" },
        { "paths", "File", "$p = Join-Path $PSScriptRoot 'sub' 'f.txt'; Test-Path $p; $null = New-Item -ItemType Directory (Split-Path $p); Test-Path (Split-Path $p) -PathType Container; Split-Path $p -Leaf; [IO.Path]::GetExtension($p)" },
        { "content", "File", "$f = Join-Path $PSScriptRoot c.txt; Set-Content $f 'one', 'two'; Add-Content $f 'three'; (Get-Content $f).Count; Get-Content $f -Tail 1; Get-Content $f -Raw | Measure-Object -Line | Select-Object -ExpandProperty Lines" },
        { "out-file-and-redirect", "File", "$f = Join-Path $PSScriptRoot r.txt; 'x' > $f; 'y' | Out-File -Append $f; 'z' >> $f; Get-Content $f; Get-ChildItem /nonexistent 2> (Join-Path $PSScriptRoot e.txt); (Get-Content (Join-Path $PSScriptRoot e.txt) -Raw) -match 'nonexistent'" },
        { "cd", "File", "cd $PSScriptRoot; $null = New-Item -ItemType Directory d; cd d; Split-Path -Leaf (Get-Location); cd ..; (Get-Location).Path -eq $PSScriptRoot; Set-Location /; (Get-Location).Path" },
        { "get-date", "File", "(Get-Date -Year 2024 -Month 2 -Day 29).ToString('yyyy-MM-dd'); Get-Date -Date '2024-01-01T10:20:30' -Format 'yyyy-MM-dd HH:mm:ss'; (Get-Date) -is [datetime]; (New-TimeSpan -Hours 2).TotalMinutes" },
        { "start-sleep", "File", "$s = [Diagnostics.Stopwatch]::StartNew(); Start-Sleep -Milliseconds 200; $s.ElapsedMilliseconds -ge 190; Start-Sleep 0; 'woke'" },
        { "write-host-and-output", "File", "Write-Host 'to the host'; Write-Output 'to the pipeline'; Write-Verbose 'not shown'; Write-Information 'info'" },
        { "handled-errors-exit-0", "File", "Get-Item /nonexistent -ErrorAction Ignore; Get-Item /nonexistent -ErrorAction SilentlyContinue; try { throw 'boom' } catch { 'caught' }; try { Get-Item /nonexistent -ErrorAction Stop } catch { 'caught again' }; 'done'" },
        { "non-terminating-error-then-more", "File", "Get-Item /nonexistent; 'after'" },
        { "exit-n", "File", "'before'; exit 7; 'never'" },
        { "unhandled-error-exits-1", "File", "'before'; throw 'boom'; 'never'" },
        { "unknown-command-does-not-stop-the-script", "File", "'first'; no-such-command-xyz | Out-Null; 'second'" },
        { "native-exit-code", "File", "sh -c 'exit 3'; \"code=$LASTEXITCODE\"" },
        { "command-last-statement-fails", "Command", "'x'; Get-Item /nonexistent" },
        { "command-error-then-success", "Command", "Get-Item /nonexistent; 'x'" },
        { "command-exit-n", "Command", "'x'; exit 5" },
        { "command-native-failure-last", "Command", "sh -c 'exit 3'" },
        { "command-handled", "Command", "try { throw 'no' } catch { 'handled' }" },
        { "file-arguments", "FileArgs", "param([string] $Name, [int] $Count, [switch] $Loud, [string] $Rest); \"name=$Name count=$Count loud=$Loud rest=$Rest\"; exit $Count" },
    };

    [Theory]
    [MemberData(nameof(Scripts))]
    public void TheHostAndPwsh_GiveTheSameExitCodeAndStdout(string name, string mode, string script)
    {
        using var dirA = new TempDir("matrix-pwsh");
        using var dirB = new TempDir("matrix-host");
        var pwsh = Run(RealPwsh.Path, ["-NoProfile", "-NonInteractive"], dirA, name, mode, script);
        var host = Run(RepoPaths.HostExecutable, ["-NoProfile", "-NonInteractive"], dirB, name, mode, script);
        // Each run has its own folder: the scripts may print it only through $PSScriptRoot, so compare with it replaced.
        string Norm(string s, TempDir d) => s.Replace(d.Path, "<dir>").Replace("\r", "");
        Assert.True(pwsh.ExitCode == host.ExitCode, $"exit codes differ (pwsh {pwsh.ExitCode}, host {host.ExitCode})\npwsh: {pwsh}\nhost: {host}");
        Assert.Equal(Norm(pwsh.StdOut, dirA), Norm(host.StdOut, dirB));
        Assert.False(string.IsNullOrWhiteSpace(pwsh.StdOut) && pwsh.ExitCode == 0 && mode == "File" && name != "exit-n", "the script printed nothing: " + pwsh);
    }

    static ProcessOutcome Run(string program, string[] options, TempDir dir, string name, string mode, string script)
    {
        var args = new List<string>(options);
        if (mode.StartsWith("File")) args.AddRange(["-File", dir.Write(name + ".ps1", script.Replace("; ", "\n") + "\n")]);
        else args.AddRange(["-Command", script]);
        if (mode == "FileArgs") args.AddRange(["-Name", "it's", "-Cou", "2", "-Loud", "tail"]);
        var env = new Dictionary<string, string?> { ["POWERSHELL_TELEMETRY_OPTOUT"] = "1", ["POWERSHELL_UPDATECHECK"] = "Off" };
        using var p = HostProcess.StartProgram(program, args, env, dir.Path);
        return p.Wait(TimeSpan.FromMinutes(2));
    }
}
