using System.Globalization;
using System.Text;
using SafeDeploy.Engine.Deployment;

namespace SafeDeploy.Engine.Fleet;

/// <summary>The status on a host's SAFEDEPLOY-RESULT line (written as the name).</summary>
internal enum RemoteStatus
{
    /// <summary>The host's deployment (or confirmation) succeeded.</summary>
    Succeeded,
    /// <summary>The host's deployment failed with nothing to roll back.</summary>
    Failed,
    /// <summary>The host's deployment failed and its engine rolled it back.</summary>
    RolledBack,
    /// <summary>The host's deployment (or undo) failed and so did its rollback.</summary>
    RollbackFailed,
    /// <summary>The host's run was undone as asked.</summary>
    Undone,
    /// <summary>The step did not run: a cmdlet error (in the line's error), a bad manifest, a bad request.</summary>
    Error,
    /// <summary>A rollback found no successful run of this rollout on the host: nothing to undo.</summary>
    NotDeployed,
    /// <summary>The line has a status this version does not know (a host running another version).</summary>
    Unknown,
}

/// <summary>What a host's SafeDeploy reported on its result line.</summary>
/// <remarks>
/// <see cref="Via"/> is "remoting" when the script ran in a PowerShell remoting session ($PSSenderInfo set), "engine" when
/// the uploaded safedeploy host's engine ran it without PowerShell (<see cref="HostStep"/>), "native" when the uploaded
/// safedeploy-step did (the same engine compiled ahead of time), else "ssh".
/// </remarks>
internal sealed record RemoteOutcome(RemoteStatus Status, int Generation, string? Id, string? Error, DateTimeOffset? RollbackAt, TimeSpan EngineTime, string Via = "ssh")
{
    /// <summary>How the step reached the host, for verbose messages.</summary>
    public string Channel => Via switch
    {
        "remoting" => "PowerShell remoting session",
        "engine" => "ssh, the host's engine without PowerShell",
        "native" => "ssh, the host's native step: neither PowerShell nor .NET",
        _ => "ssh",
    };

    /// <summary>The result line's status for a run's result on the host.</summary>
    public static RemoteStatus StatusOf(DeployStatus status) => status switch
    {
        DeployStatus.Succeeded => RemoteStatus.Succeeded,
        DeployStatus.Failed => RemoteStatus.Failed,
        DeployStatus.RolledBack => RemoteStatus.RolledBack,
        DeployStatus.RollbackFailed => RemoteStatus.RollbackFailed,
        DeployStatus.Undone => RemoteStatus.Undone,
        _ => RemoteStatus.Unknown,
    };
}

/// <summary>
/// The text run on a host: POSIX shell for probing and unpacking, PowerShell for the engine itself (the same cmdlets,
/// Invoke-SafeDeploy and Undo-SafeDeploy, from the staged module). The PowerShell ends with one result line,
/// `SAFEDEPLOY-RESULT key=value ...` (the error text base64-encoded), which the controller parses.
/// </summary>
internal static class RemoteScripts
{
    public const string ResultPrefix = "SAFEDEPLOY-RESULT ";

    /// <summary>
    /// SafeDeploy's own folders on a host are private (umask 077 while they are made); the deployment then runs with the
    /// login's umask, as it would from that user's shell, so a `run` phase's `mkdir` makes the same modes as at home.
    /// </summary>
    const string Private = "[ -n \"${login_umask:-}\" ] || login_umask=$(umask); umask 077; ";
    const string Login = "umask \"$login_umask\" && ";

    /// <summary>The line a probe prints just before it runs its <c>then</c> command.</summary>
    public const string StepLine = "STEP";

    /// <summary>
    /// Prints FLEETDIR, PWSH and HAVE lines; creates the host's fleet folders (mode 0700). With <paramref name="then"/>, a
    /// host without pwsh that has every bundle already runs that command next, in its fleet folder, after a <see cref="StepLine"/>
    /// line: a rollout's step in the same round trip as its probe.
    /// </summary>
    public static string Probe(FleetHost host, IEnumerable<StagedBundle> bundles, string? then = null)
    {
        var all = bundles.ToList();
        var sb = new StringBuilder(Private + "have=0; ");
        sb.Append(host.StateDirectory is { } b
            ? $"d={SshTransport.Quote(b)}/state/fleet; "
            : "d=\"${XDG_STATE_HOME:-$HOME/.local/state}/safedeploy/fleet\"; ");
        sb.Append("mkdir -p \"$d/incoming\" \"$d/rollouts\" && cd \"$d\" && d=$(pwd -P) && echo \"FLEETDIR $d\" || exit 3; ");
        sb.Append("echo \"PWSH $(command -v pwsh || true)\"; ");
        foreach (var x in all)
        {
            var dir = SshTransport.Quote(x.RemoteDir);
            var have = $"{{ echo \"HAVE {x.Name}\"; have=$((have+1)); }}";
            // A runtime folder was checked in full when it was renamed into place; a payload is small enough to check each time.
            sb.Append(x.Kind == "runtime"
                ? $"[ -f {dir}/SHA256SUMS ] && cmp -s {dir}/SHA256SUMS - <<'EOS' && {have}\n{x.Sums}EOS\n"
                : $"( cd {dir} 2>/dev/null && sha256sum -c --quiet --strict SHA256SUMS >/dev/null 2>&1 ) && {have}; ");
        }
        if (then is not null) sb.Append($"\nif [ -z \"$(command -v pwsh)\" ] && [ \"$have\" -eq {all.Count} ]; then echo {StepLine}; {then}; fi");
        return sb.Append("\nexit 0").ToString();
    }

    /// <summary>Unpacks uploaded tars, checks every sum, then renames each into its versioned folder.</summary>
    public static string Unpack(string fleetDir, IEnumerable<(StagedBundle Bundle, string Tar)> uploads)
    {
        var sb = new StringBuilder($"set -e; umask 077; cd {SshTransport.Quote(fleetDir)}; ");
        foreach (var (x, tar) in uploads)
        {
            var t = SshTransport.Quote("incoming/" + Path.GetFileNameWithoutExtension(tar));
            var final = SshTransport.Quote(x.RemoteDir);
            sb.Append($"rm -rf {t}; mkdir -p {t} {SshTransport.Quote(x.Kind)}; tar -xf {t}.tar -C {t}; ");
            sb.Append($"( cd {t} && sha256sum -c --quiet --strict SHA256SUMS ) || {{ rm -rf {t} {t}.tar; echo 'hash check failed: {x.Name}' >&2; exit 4; }}; ");
            // A folder that failed its check at the probe (changed since) is replaced, never trusted.
            sb.Append($"rm -rf {t}.old; if [ -d {final} ]; then mv -T {final} {t}.old; fi; mv -T {t} {final}; rm -rf {t}.old {t}.tar; ");
        }
        return sb.ToString();
    }

    /// <summary>The shell line that runs <paramref name="script"/> in the host's PowerShell, under the rollout's per-host lock (none without a rollout).</summary>
    public static (string Command, string? Input) Runner(string fleetDir, string? rollout, string hostName, string? pwsh, StagedBundle module,
        StagedBundle? host, string script)
    {
        var lockFile = SshTransport.Quote($"{fleetDir}/rollouts/{rollout}/{hostName}.lock");
        var prep = rollout is null ? Private + Login + "exec "
            : Private + $"mkdir -p {SshTransport.Quote($"{fleetDir}/rollouts/{rollout}")} && {Login}exec flock {lockFile} ";
        if (pwsh is { Length: > 0 } && host is null)
        {
            var full = $"Import-Module {Ps($"{fleetDir}/{module.RemoteDir}/SafeDeploy.psd1")}\n" + script;
            var encoded = Convert.ToBase64String(Encoding.Unicode.GetBytes(full));
            return (prep + $"{SshTransport.Quote(pwsh)} -NoProfile -NonInteractive -EncodedCommand {encoded}", null);
        }
        var exe = SshTransport.Quote($"{fleetDir}/{host!.RemoteDir}/safedeploy");
        return (prep + $"env SAFEDEPLOY_MODULE={SshTransport.Quote($"{fleetDir}/{module.RemoteDir}/SafeDeploy.psd1")} POWERSHELL_TELEMETRY_OPTOUT=1 {exe} -NoProfile -Command -", script);
    }

    /// <summary>The native step's file name in the host bundle, beside the one-file safedeploy (build.ps1 -Task Package).</summary>
    public const string NativeStep = "safedeploy-step";

    /// <summary>
    /// The shell line that runs a <see cref="HostStep"/> request on the host, without PowerShell, under the rollout's per-host
    /// lock; the request goes on its standard input. The uploaded native step runs it when the host bundle carries one, else
    /// the uploaded safedeploy host (`safedeploy -FleetStep`).
    /// </summary>
    public static string StepRunner(string fleetDir, string rollout, string hostName, StagedBundle module, StagedBundle host)
    {
        var dir = SshTransport.Quote($"{fleetDir}/rollouts/{rollout}");
        var runner = host.Files.Contains(NativeStep, StringComparer.Ordinal)
            ? SshTransport.Quote($"{fleetDir}/{host.RemoteDir}/{NativeStep}")
            : SshTransport.Quote($"{fleetDir}/{host.RemoteDir}/safedeploy") + " -FleetStep";
        return Private + $"mkdir -p {dir} && {Login}exec flock {SshTransport.Quote($"{fleetDir}/rollouts/{rollout}/{hostName}.lock")} " +
            $"env SAFEDEPLOY_MODULE={SshTransport.Quote($"{fleetDir}/{module.RemoteDir}/SafeDeploy.psd1")} {runner}";
    }

    /// <summary>The <see cref="HostStep"/> request of <see cref="Deploy"/>: the same deployment, run by the host's engine directly.</summary>
    public static string DeployRequest(string fleetDir, string rollout, FleetHost host, string manifest, IReadOnlyDictionary<string, string> variables, int? trySeconds)
    {
        var vars = new System.Text.Json.Nodes.JsonObject();
        foreach (var (k, v) in variables) vars[k] = v;
        return new System.Text.Json.Nodes.JsonObject
        {
            ["op"] = "deploy", ["done"] = Done(fleetDir, rollout, host), ["manifest"] = manifest, ["variables"] = vars,
            ["root"] = host.Root, ["stateDirectory"] = host.StateDirectory, ["trySeconds"] = trySeconds,
        }.ToJsonString();
    }

    /// <summary>The <see cref="HostStep"/> request of <see cref="RollBack"/>.</summary>
    public static string RollBackRequest(string fleetDir, string rollout, FleetHost host, string name) => new System.Text.Json.Nodes.JsonObject
    {
        ["op"] = "rollback", ["done"] = Done(fleetDir, rollout, host), ["name"] = name, ["stateDirectory"] = host.StateDirectory,
    }.ToJsonString();

    static string Done(string fleetDir, string rollout, FleetHost host) => $"{fleetDir}/rollouts/{rollout}/{host.Name}.result";

    /// <summary>
    /// The same for a PowerShell remoting session: import the staged module, then run <paramref name="script"/> holding the
    /// rollout's per-host lock (the file flock(1) takes on the ssh path; Invoke-WithLock is flock(2) too, so both exclude each other).
    /// </summary>
    public static string SessionScript(string fleetDir, string? rollout, string hostName, StagedBundle module, string script, TimeSpan lockTimeout)
    {
        var sb = new StringBuilder($"Import-Module {Ps($"{fleetDir}/{module.RemoteDir}/SafeDeploy.psd1")} -ErrorAction Stop\n");
        if (rollout is null) return sb.Append(script).ToString();
        var dir = $"{fleetDir}/rollouts/{rollout}";
        sb.Append($"$null = [IO.Directory]::CreateDirectory({Ps(dir)}, [IO.UnixFileMode]'UserRead, UserWrite, UserExecute')\n");
        sb.Append($"Invoke-WithLock -Path {Ps($"{dir}/{hostName}.lock")} -TimeoutSec {(long)lockTimeout.TotalSeconds} -ScriptBlock {{\n{script}\n}}\n");
        return sb.ToString();
    }

    /// <summary>Deploys the staged manifest once for this rollout: a second call (after a controller died) reports the first one's result.</summary>
    public static string Deploy(string fleetDir, string rollout, FleetHost host, string manifest, IReadOnlyDictionary<string, string> variables, int? trySeconds)
    {
        var sb = new StringBuilder(Prelude(fleetDir, rollout, host));
        sb.Append("if ([IO.File]::Exists($done)) { [IO.File]::ReadAllText($done); return }\n");
        sb.Append("$vars = @{}\n");
        foreach (var (k, v) in variables) sb.Append($"$vars[{Ps(k)}] = {Ps(v)}\n");
        sb.Append($"$p = @{{ Manifest = {Ps(manifest)}; Variables = $vars; Confirm = $false; ErrorAction = 'SilentlyContinue'; ErrorVariable = 'failed' }}\n");
        if (host.Root is { } root) sb.Append($"$p.Root = {Ps(root)}\n");
        if (host.StateDirectory is { } s) sb.Append($"$p.StateDirectory = {Ps(s)}\n");
        if (trySeconds is { } t) sb.Append($"$p.TrySeconds = {t.ToString(CultureInfo.InvariantCulture)}\n");
        sb.Append("try { $r = Invoke-SafeDeploy @p } catch { Result 'Error' 0 '' ($_.FullyQualifiedErrorId + ': ' + $_) $null; return }\n");
        sb.Append("if ($null -eq $r) { Result 'Error' 0 '' (($failed | ForEach-Object { $_.FullyQualifiedErrorId + ': ' + $_ }) -join '; ') $null; return }\n");
        sb.Append("$line = Result $r.Status $r.Generation $r.Id $r.Error $r.RollbackAt $r.Duration\n");
        sb.Append("[IO.File]::WriteAllText($done + '.tmp', $line); [IO.File]::Move($done + '.tmp', $done, $true)\n$line\n");
        return sb.ToString();
    }

    /// <summary>Undoes the run this rollout made on the host (found in its result file), once.</summary>
    public static string RollBack(string fleetDir, string rollout, FleetHost host, string name)
    {
        var sb = new StringBuilder(Prelude(fleetDir, rollout, host));
        sb.Append("$undone = $done + '.undone'\n");
        sb.Append("if ([IO.File]::Exists($undone)) { [IO.File]::ReadAllText($undone); return }\n");
        sb.Append("if (-not [IO.File]::Exists($done)) { Result 'NotDeployed' 0 '' '' $null; return }\n");
        sb.Append("$was = @{}; foreach ($kv in ([IO.File]::ReadAllText($done).Trim() -split ' ')) { $i = $kv.IndexOf('='); if ($i -gt 0) { $was[$kv.Substring(0, $i)] = $kv.Substring($i + 1) } }\n");
        sb.Append("if ($was.status -ne 'Succeeded') { Result 'NotDeployed' ([int]$was.generation) $was.id '' $null; return }\n");
        sb.Append($"$p = @{{ Name = {Ps(name)}; Id = $was.id; Confirm = $false; ErrorAction = 'SilentlyContinue'; ErrorVariable = 'failed' }}\n");
        if (host.StateDirectory is { } s) sb.Append($"$p.StateDirectory = {Ps(s)}\n");
        sb.Append("try { $r = Undo-SafeDeploy @p } catch { $r = $null; $failed = @($_) }\n");
        // An undo that finished before its process was killed is in the host's history: report it, do not undo twice.
        sb.Append("if ($null -eq $r) { $hp = @{ Name = $p.Name; ErrorAction = 'SilentlyContinue' }; if ($p.StateDirectory) { $hp.StateDirectory = $p.StateDirectory }\n");
        sb.Append("  foreach ($h in @(Get-SafeDeployHistory @hp)) { if ($h.Id -eq $was.id -and $h.Status -eq 'Undone') { $r = $h } } }\n");
        sb.Append("if ($null -eq $r) { Result 'Error' 0 $was.id (($failed | ForEach-Object { $_.FullyQualifiedErrorId + ': ' + $_ }) -join '; ') $null; return }\n");
        sb.Append("$line = Result $r.Status $r.Generation $was.id $r.Error $null $r.Duration\n");
        sb.Append("if ($r.Status -eq 'Undone') { [IO.File]::WriteAllText($undone + '.tmp', $line); [IO.File]::Move($undone + '.tmp', $undone, $true) }\n$line\n");
        return sb.ToString();
    }

    /// <summary>Confirms the latest try-mode run of <paramref name="name"/> on the host (Confirm-SafeDeploy there).</summary>
    public static string Confirm(FleetHost host, string name) => Maintenance(host, name, "Confirm-SafeDeploy", false);

    /// <summary>Undoes the latest run of <paramref name="name"/> standing on the host, under the host's -Root (Undo-SafeDeploy there).</summary>
    public static string Undo(FleetHost host, string name) => Maintenance(host, name, "Undo-SafeDeploy", true);

    static string Maintenance(FleetHost host, string name, string cmdlet, bool withRoot)
    {
        var sb = new StringBuilder(Functions);
        sb.Append($"$p = @{{ Name = {Ps(name)}; Confirm = $false; ErrorAction = 'SilentlyContinue'; ErrorVariable = 'failed' }}\n");
        if (host.StateDirectory is { } s) sb.Append($"$p.StateDirectory = {Ps(s)}\n");
        if (withRoot && host.Root is { } root) sb.Append($"$p.Root = {Ps(root)}\n");
        sb.Append($"try {{ $r = @({cmdlet} @p)[-1] }} catch {{ $r = $null; $failed = @($_) }}\n");
        sb.Append("$why = ($failed | ForEach-Object { $_.FullyQualifiedErrorId + ': ' + $_ }) -join '; '\n");
        sb.Append("if ($null -eq $r) { Result 'Error' 0 '' $why $null; return }\n");
        sb.Append("Result $r.Status $r.Generation $r.Id ($(if ($r.Error) { $r.Error } else { $why })) $r.RollbackAt $r.Duration\n");
        return sb.ToString();
    }

    static string Prelude(string fleetDir, string rollout, FleetHost host) =>
        Functions + $"$done = {Ps(Done(fleetDir, rollout, host))}\n";

    /// <summary>The result line in C#, as the PowerShell `Result` function below writes it (<see cref="HostStep"/>).</summary>
    public static string ResultLine(RemoteStatus status, int generation, string? id, string? error, DateTimeOffset? rollbackAt, TimeSpan? took, string via) =>
        $"{ResultPrefix}status={StatusName.Of(status)} generation={generation.ToString(CultureInfo.InvariantCulture)} id={id} " +
        $"rollbackAt={rollbackAt?.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture)} ms={((long)(took?.TotalMilliseconds ?? 0)).ToString(CultureInfo.InvariantCulture)} " +
        $"via={via} error={(string.IsNullOrEmpty(error) ? "" : Convert.ToBase64String(Encoding.UTF8.GetBytes(error)))}";

    const string Functions =
        "$ErrorActionPreference = 'Stop'; $ProgressPreference = 'SilentlyContinue'\n" +
        "function Result($status, $generation, $id, $err, $at, $took) {\n" +
        "  $e = if ($err) { [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes([string]$err)) } else { '' }\n" +
        "  $a = if ($at) { ([DateTimeOffset]$at).ToUnixTimeSeconds() } else { '' }\n" +
        // An error result has no duration: [TimeSpan]$null would throw and lose the error it reports.
        "  $ms = if ($took) { [long]([TimeSpan]$took).TotalMilliseconds } else { 0 }\n" +
        "  $via = if ($PSSenderInfo) { 'remoting' } else { 'ssh' }\n" +
        "  'SAFEDEPLOY-RESULT status=' + $status + ' generation=' + [int]$generation + ' id=' + $id + ' rollbackAt=' + $a + ' ms=' + $ms + ' via=' + $via + ' error=' + $e }\n";

    /// <summary>Parses the result line out of a host's output (null when there is none: the host never finished).</summary>
    public static RemoteOutcome? Parse(string output)
    {
        var line = output.Split('\n').Select(l => l.Trim()).LastOrDefault(l => l.StartsWith(ResultPrefix, StringComparison.Ordinal));
        if (line is null) return null;
        var f = line[ResultPrefix.Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(kv => kv.Split('=', 2))
            .Where(kv => kv.Length == 2).ToDictionary(kv => kv[0], kv => kv[1], StringComparer.Ordinal);
        string? Get(string k) => f.TryGetValue(k, out var v) && v.Length > 0 ? v : null;
        var error = Get("error") is { } e ? Encoding.UTF8.GetString(Convert.FromBase64String(e)) : null;
        var at = Get("rollbackAt") is { } a ? DateTimeOffset.FromUnixTimeSeconds(long.Parse(a, CultureInfo.InvariantCulture)) : (DateTimeOffset?)null;
        // No status at all is an error line; a name this version does not know is Unknown (never a success).
        var status = Get("status") is { } s ? StatusName.Parse(s, RemoteStatus.Unknown) : RemoteStatus.Error;
        return new RemoteOutcome(status, int.TryParse(Get("generation"), CultureInfo.InvariantCulture, out var g) ? g : 0, Get("id"), error, at,
            TimeSpan.FromMilliseconds(long.TryParse(Get("ms"), CultureInfo.InvariantCulture, out var ms) ? ms : 0), Get("via") ?? "ssh");
    }

    /// <summary>A PowerShell single-quoted string (PowerShell also ends such strings at typographic quotes: double them too).</summary>
    public static string Ps(string s)
    {
        var sb = new StringBuilder("'");
        foreach (var c in s) { if (c is '\'' or '\u2018' or '\u2019' or '\u201A' or '\u201B') sb.Append(c); sb.Append(c); }
        return sb.Append('\'').ToString();
    }
}
