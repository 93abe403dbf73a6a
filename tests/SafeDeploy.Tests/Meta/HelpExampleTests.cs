using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using SafeDeploy.Tests.Infrastructure;
using SafeDeploy.Tests.NativeShim;
using Xunit;
using Xunit.Abstractions;

namespace SafeDeploy.Tests.Meta;

/// <summary>
/// Every example in docs/help runs as written, in the real pwsh with the built module imported, each in a fresh HOME
/// and working directory after the prerequisites a reader would already have (a dashboard clone, a manifest, a
/// library). An example runs unless it is listed in <see cref="Skips"/> with the reason it cannot run here (a program
/// or host that is absent, a real system path a test must not touch): a new example is run by default.
/// </summary>
public class HelpExampleTests(ITestOutputHelper output)
{
    /// <summary>Examples that cannot run on a test machine, and why.</summary>
    static readonly Dictionary<string, string> Skips = new()
    {
        ["Confirm-SafeDeploy 1"] = "needs ssh to a host named gpu-node-3",
        ["Confirm-SafeDeploy 2"] = "needs a model server answering on 127.0.0.1:11434",
        ["Edit-LockedFile 3"] = "edits the real /etc/environment and /etc/profile.d (a test never touches /etc)",
        ["Edit-LockedFile 4"] = "edits the real /etc/gpu-nodes (a test never touches /etc)",
        ["Get-LockHolder 2"] = "reads the real /var/lock/nvidia-driver.lock",
        ["Get-ModelCache 1"] = "reads the real /var/cache/models",
        ["Get-ModelLocked 1"] = "downloads from models.example.org (tests reach only 127.0.0.1)",
        ["Get-ModelLocked 2"] = "needs ./models.csv of real model URLs and the real /var/cache/models",
        ["Get-ModelLocked 3"] = "downloads from huggingface.co and reads /mnt/share (tests reach only 127.0.0.1)",
        ["Initialize-StateDirectory 2"] = "creates the real /var/lib/gpu-exporter for a user gpu-exporter that does not exist here",
        ["Invoke-WithLock 1"] = "runs the CUDA installer /opt/installers/cuda.run, absent here",
        ["Invoke-WithLock 2"] = "copies the real /data/in/ to /scratch/in/ with rsync",
        ["Invoke-WithLock 3"] = "needs nvidia-smi (no GPU here) and the real /var/lock",
        ["Invoke-WithLock 4"] = "reads and appends to the real /srv/models/index.txt",
        ["Remove-ModelCache 1"] = "evicts from the real /var/cache/models",
        ["Remove-ModelCache 3"] = "needs that model from models.example.org in the cache (tests reach only 127.0.0.1)",
        ["Test-LockSupport 1"] = "probes the real shared filesystem /scratch/shared, absent here",
        ["Test-LockSupport 2"] = "probes the real shared filesystem /shared/locks, absent here",
        ["Test-LockSupport 3"] = "probes the real /home, /scratch and /data",
        ["Test-SharedLibrary 1"] = "needs the CUDA shim /opt/cuda-shim/lib/libcudashim.so (and sudo, sshd), absent here",
        ["Write-StateLog 4"] = "creates directories under the real /scratch",
        ["Confirm-SafeDeploy 3"] = "reads the watchdog log of a real ollama-shim try-mode deployment",
        ["Edit-LockedFile 5"] = "writes the real /etc/gpu-agent for a user gpu-agent that does not exist here (a test never touches /etc)",
        ["Get-ModelLocked 5"] = "downloads from models.example.org (tests reach only 127.0.0.1)",
        ["Invoke-SafeDeploy 5"] = "rolls out to the hosts of a real fleet.yaml over ssh (Fleet/ tests run real sshd hosts on 127.0.0.x)",
        ["Invoke-SafeDeploy 6"] = "rolls out to the hosts of a real fleet.yaml over ssh (Fleet/ tests run real sshd hosts on 127.0.0.x)",
        ["Test-LockSupport 4"] = "probes two real mounts /mnt/models-a and /mnt/models-b of one shared filesystem",
        ["Confirm-SafeDeploy 4"] = "rolls out to and confirms on the hosts of a real fleet.yaml over ssh (Fleet/FleetRemotingTests run real sshd hosts)",
        ["Undo-SafeDeploy 3"] = "rolls out to and undoes on the hosts of a real fleet.yaml over ssh (Fleet/FleetRemotingTests run real sshd hosts)",
    };

    /// <summary>What a reader has before an example: PowerShell run in the example's fresh HOME and working directory.</summary>
    static readonly Dictionary<string, string> Prerequisites = new()
    {
        ["Get-JobStatus 1"] = "New-Dashboard",
        ["Get-LockHolder 1"] = "Invoke-WithLock -Name cuda-toolkit { } | Out-Null",
        ["Get-LockHolder 3"] = "Invoke-WithLock -Name dataset-sync { } | Out-Null",
        ["Get-LockHolder 4"] = "'cuda-toolkit', 'dataset-sync', 'model-index' | ForEach-Object { Invoke-WithLock -Name $_ { } | Out-Null }",
        ["Get-JobStatus 2"] = "New-Dashboard; $env:SLURM_JOB_ID = '123456'; Sync-JobStatus -Repository ~/dashboard -JobName train-123456 -Status running -NoPush | Out-Null",
        ["Get-SafeDeployHistory 1"] = "New-Manifest ./deploy.yaml; Invoke-SafeDeploy ./deploy.yaml | Out-Null",
        ["Invoke-SafeDeploy 1"] = "New-Manifest ./deploy.yaml",
        ["Invoke-SafeDeploy 2"] = "New-Manifest ./deploy.yaml",
        ["Invoke-SafeDeploy 3"] = "New-Dashboard; New-Manifest ~/deploy/shim.yaml",
        ["Invoke-SafeDeploy 4"] = "New-Manifest ./shim.yaml",
        ["Invoke-SafeDeploy 7"] = "New-Manifest ./shim.yaml",
        ["Sync-JobStatus 1"] = "New-Dashboard; $env:SLURM_JOB_ID = '123456'; $env:SLURMD_NODENAME = 'gpu-node-3'",
        ["Sync-JobStatus 2"] = "New-Dashboard; Sync-JobStatus -Repository ~/dashboard -JobName queued-1 -Status queued -NoPush | Out-Null",
        ["Sync-JobStatus 3"] = "New-Dashboard; New-Manifest ./gpu-node.yaml",
        ["Sync-JobStatus 4"] = "New-Dashboard",
        ["Sync-JobStatus 5"] = "New-Dashboard",
        ["Test-SafeDeployManifest 1"] = "New-Manifest ./deploy.yaml",
        ["Test-SafeDeployManifest 2"] = "New-Manifest ./deploy/a.yaml; New-Manifest ./deploy/b.yaml",
        ["Test-SharedLibrary 2"] = "$null = New-Item -ItemType Directory build; Copy-Item $Fixture ./build/libshim.so",
        ["Test-SharedLibrary 3"] = "Copy-Item $Fixture ./libshim.so",
        ["Undo-SafeDeploy 1"] = "New-Manifest ./deploy.yaml; Invoke-SafeDeploy ./deploy.yaml | Out-Null",
        ["Undo-SafeDeploy 2"] = "New-Manifest ./deploy.yaml",
        ["Undo-SafeDeploy 4"] = "New-Manifest ./deploy.yaml; $null = New-Item -ItemType Directory ./sandbox",
    };

    // Helpers the prerequisites use: a dashboard clone at ~/dashboard of a bare remote, a manifest whose phases run `true`.
    const string Helpers = """
        function New-Dashboard {
            $remote = Join-Path $Box 'dashboard.git'
            git init -q --bare -b main $remote
            git clone -q $remote ~/dashboard 2>$null
            $null = New-Item -ItemType Directory -Force ~/dashboard/data/status
            Set-Content ~/dashboard/data/status/other-team.json '{"job_name":"other-team","status":"running"}'
            git -C ~/dashboard add -A; git -C ~/dashboard commit -q -m init; git -C ~/dashboard push -q origin HEAD:main 2>$null
            Sync-JobStatus -Repository ~/dashboard -JobName seed -Status running | Out-Null
        }
        function New-Manifest([string]$Path) {
            $null = New-Item -ItemType Directory -Force (Split-Path $Path)
            Set-Content $Path "name: ollama-shim`nvariables:`n  version: '1.0'`nphases:`n  - name: build`n    run: { args: ['true', '`${version}'] }`n  - name: install`n    dependsOn: build`n    run: { args: ['true'] }`n"
        }
        """;

    const string Runner = """
        param([string]$Module, [string]$Examples, [string]$Fixture)
        $ErrorActionPreference = 'Stop'
        Import-Module $Module
        foreach ($e in (Get-Content -Raw $Examples | ConvertFrom-Json)) {
            $Box = $e.Box
            $null = New-Item -ItemType Directory -Force "$Box/home", "$Box/work"
            $env:HOME = "$Box/home"; (Get-PSProvider FileSystem).Home = "$Box/home"; Set-Location "$Box/work"
            [Console]::Out.WriteLine("START $($e.Id)"); [Console]::Out.Flush()
            try {
                . ([scriptblock]::Create($e.Prerequisite))
                $null = & ([scriptblock]::Create($e.Code)) 2>&1 | Out-String
                [Console]::Out.WriteLine("PASS $($e.Id)")
            }
            catch { [Console]::Out.WriteLine("FAIL $($e.Id): $($_.FullyQualifiedErrorId): $($_ | Out-String)".Replace("`n", ' ')) }
            [Console]::Out.Flush()
        }
        Remove-Item -Recurse -Force -ErrorAction Ignore "/tmp/sandbox-$PID"
        """;

    static string? Pwsh()
    {
        var env = Environment.GetEnvironmentVariable("SAFEDEPLOY_PWSH");
        if (!string.IsNullOrEmpty(env) && File.Exists(env)) return env;
        var onPath = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, "pwsh")).FirstOrDefault(File.Exists);
        var tool = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".dotnet", "tools", "pwsh");
        return onPath ?? (File.Exists(tool) ? tool : null);
    }

    /// <summary>("Cmdlet N", code) for every example of every help file.</summary>
    static List<(string Id, string Code)> Examples()
    {
        var list = new List<(string, string)>();
        foreach (var file in Directory.GetFiles(Path.Combine(RepoPaths.Root, "docs", "help"), "*-*.md").Order(StringComparer.Ordinal))
        {
            var text = File.ReadAllText(file).Replace("\r\n", "\n");
            var cmdlet = Path.GetFileNameWithoutExtension(file);
            foreach (Match m in Regex.Matches(text, @"^### Example (\d+):[^\n]*\n```powershell\n(.*?)\n```", RegexOptions.Multiline | RegexOptions.Singleline))
                list.Add(($"{cmdlet} {m.Groups[1].Value}", m.Groups[2].Value));
        }
        return list;
    }

    [Fact]
    public void EveryHelpExample_RunsAsWritten_WhereItsProgramsExist()
    {
        var examples = Examples();
        Assert.True(examples.Count >= 30, $"only {examples.Count} examples found: the extraction is broken");
        Assert.All(Skips.Keys.Concat(Prerequisites.Keys), k => Assert.Contains(k, examples.Select(e => e.Id))); // no stale entries
        var pwsh = Pwsh();
        Assert.True(pwsh is not null, "the real pwsh is needed to run the help examples: dotnet tool install --global PowerShell --version 7.6.9 (or set SAFEDEPLOY_PWSH)");

        using var dir = new TempDir("examples");
        var toRun = examples.Where(e => !Skips.ContainsKey(e.Id)).ToList();
        foreach (var (id, reason) in Skips) output.WriteLine($"skipped {id}: {reason}");
        var json = dir.Write("examples.json", JsonSerializer.Serialize(toRun.Select((e, i) => new Dictionary<string, string>
        {
            ["Id"] = e.Id, ["Code"] = e.Code, ["Box"] = dir[$"e{i}"],
            ["Prerequisite"] = Helpers + "\n" + Prerequisites.GetValueOrDefault(e.Id, ""),
        })));
        var runner = dir.Write("run.ps1", Runner);

        var psi = new ProcessStartInfo(pwsh!, ["-NoProfile", "-NonInteractive", "-File", runner, RepoPaths.ModuleManifest, json, ShimFixtures.Good])
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true,
        };
        psi.Environment["PATH"] = Path.GetDirectoryName(RepoPaths.HostExecutable) + ":" + Environment.GetEnvironmentVariable("PATH");
        psi.Environment["POWERSHELL_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["POWERSHELL_UPDATECHECK"] = "Off";
        foreach (var (k, v) in new[] { ("GIT_AUTHOR_NAME", "Reader"), ("GIT_AUTHOR_EMAIL", "reader@safedeploy.invalid"), ("GIT_COMMITTER_NAME", "Reader"), ("GIT_COMMITTER_EMAIL", "reader@safedeploy.invalid"), ("GIT_CONFIG_NOSYSTEM", "1") })
            psi.Environment[k] = v;
        foreach (var k in new[] { "XDG_STATE_HOME", "XDG_CACHE_HOME", "XDG_RUNTIME_DIR" }) psi.Environment.Remove(k);
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        var stderr = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEndAsync();
        bool finished = p.WaitForExit((int)TimeSpan.FromMinutes(10).TotalMilliseconds);
        if (!finished) p.Kill(entireProcessTree: true);
        p.WaitForExit();
        var lines = stdout.Result.Split('\n').Select(l => l.TrimEnd()).ToList();
        output.WriteLine(string.Join("\n", lines));
        Assert.True(finished, $"the examples did not finish within 10 minutes; last started: {lines.LastOrDefault(l => l.StartsWith("START "))}");

        var failed = lines.Where(l => l.StartsWith("FAIL ")).ToList();
        var passed = lines.Where(l => l.StartsWith("PASS ")).Select(l => l[5..]).ToHashSet();
        var notRun = toRun.Select(e => e.Id).Where(id => !passed.Contains(id) && !failed.Any(f => f.StartsWith("FAIL " + id + ":"))).ToList();
        Assert.True(failed.Count == 0 && notRun.Count == 0,
            $"help examples that do not run as written (fix docs/help/*.md, then run dotnet run --project tools/HelpGen):\n{string.Join("\n", failed)}" +
            (notRun.Count > 0 ? $"\nnot run: {string.Join(", ", notRun)}\nstderr: {stderr.Result}" : ""));
    }
}
