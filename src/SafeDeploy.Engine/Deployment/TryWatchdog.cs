using System.Globalization;
using System.Text.Json.Nodes;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Deployment;

/// <summary>What a try-mode watchdog did: still watching, saw the confirmation, rolled back, failed to, or died without saying.</summary>
internal enum WatchdogState { Watching, Confirmed, RolledBack, RollbackFailed, Lost }

/// <summary>The watchdog's last word, from its outcome file (written by the watchdog itself) and its liveness.</summary>
internal sealed record WatchdogOutcome(WatchdogState State, DateTimeOffset? At, int? Pid, string? ErrorId, string? Message)
{
    /// <summary>The journal record (type "watchdog") that keeps it with the run.</summary>
    public JsonObject ToJson() => new()
    {
        ["outcome"] = State.ToString(), ["at"] = At?.ToString("o", CultureInfo.InvariantCulture), ["watchdogPid"] = Pid, ["errorId"] = ErrorId, ["message"] = Message,
    };
}

/// <summary>
/// The detached watchdog process of a try-mode run: the absolute host program it was armed with, run without profiles and
/// non-interactive, with a fixed script; every value (names, paths, seconds) reaches it through its environment, never
/// through the script text, so a quote in a path cannot change what it runs.
/// </summary>
internal static class TryWatchdog
{
    internal const string OutcomeFileName = "watchdog.outcome";

    // Fixed text: nothing is spliced in. The embedded host has Core cmdlets only, hence .NET calls for files.
    internal const string Script = """
        $ErrorActionPreference = 'Stop'
        function V([string]$n) { [Environment]::GetEnvironmentVariable('SAFEDEPLOY_TRY_' + $n) }
        function J([string]$s) { '"' + ($s -replace '[\\"\x00-\x1f]', { '\u{0:x4}' -f [int][char]$_.Value }) + '"' }
        function Outcome([string]$state, [string]$errorId, [string]$message) {
            $f = V 'OUTCOME'
            $text = '{"outcome":' + (J $state) + ',"at":' + (J ([DateTimeOffset]::UtcNow.ToString('o'))) + ',"pid":' + $PID +
                ',"errorId":' + (J $errorId) + ',"message":' + (J $message) + '}'
            [IO.File]::WriteAllText($f + '.tmp', $text)
            [IO.File]::Move($f + '.tmp', $f, $true)
        }
        Outcome 'Watching' '' ''
        $marker = V 'MARKER'
        $deadline = [DateTime]::UtcNow.AddSeconds([int](V 'SECONDS'))
        while ([DateTime]::UtcNow -lt $deadline -and -not [IO.File]::Exists($marker)) { [Threading.Thread]::Sleep(200) }
        if ([IO.File]::Exists($marker)) { 'confirmed: nothing to roll back'; Outcome 'Confirmed' '' ''; exit 0 }
        'not confirmed within ' + (V 'SECONDS') + ' s: rolling back'
        try {
            if (-not (Get-Module SafeDeploy)) { Import-Module (V 'MODULE') }
            $undo = @{ Name = (V 'NAME'); Id = (V 'ID'); UnlessConfirmed = $true; Confirm = $false; ErrorAction = 'Stop' }
            if (V 'STATE') { $undo.StateDirectory = (V 'STATE') }
            $r = Undo-SafeDeploy @undo
            if ($r.Status -eq 'Succeeded') { 'confirmed at the deadline: nothing rolled back'; Outcome 'Confirmed' '' ''; exit 0 }
            'rolled back: ' + $r.Status
            Outcome 'RolledBack' '' ''
        } catch {
            $id = [string]$_.FullyQualifiedErrorId
            'could not roll back: ' + $id + ': ' + $_.Exception.Message
            Outcome 'RollbackFailed' $id $_.Exception.Message
            exit 1
        }
        """;

    /// <summary>The host program, checked: an absolute path to a regular file (no PATH look-up happens later).</summary>
    internal static string CheckHost(string hostProgram)
    {
        if (!Path.IsPathRooted(hostProgram) || Native.Stat(hostProgram) is not { IsRegularFile: true })
            throw new SafeDeployException("TryModeUnavailable", ErrorKind.InvalidArgument, hostProgram,
                $"The try-mode watchdog must be started by the absolute path of a PowerShell host program; '{hostProgram}' is not one.",
                "Set SAFEDEPLOY_HOST to the absolute path of safedeploy or pwsh, e.g. /usr/local/bin/safedeploy.");
        return Path.GetFullPath(hostProgram);
    }

    /// <summary>The watchdog's environment: the documented default (safe PATH, no secrets) and its parameters.</summary>
    internal static ProcessEnvironment Environment(IReadOnlyDictionary<string, string> parameters) =>
        ProcessEnvironment.Default().With(parameters.Select(p => new KeyValuePair<string, string?>("SAFEDEPLOY_TRY_" + p.Key, p.Value)));

    internal static WatchdogOutcome? Read(string outcomeFile)
    {
        JsonObject? o;
        try { o = File.Exists(outcomeFile) ? JsonNode.Parse(File.ReadAllText(outcomeFile)) as JsonObject : null; }
        catch (Exception e) when (e is IOException or System.Text.Json.JsonException) { return null; }
        if (o is null || !Enum.TryParse<WatchdogState>((string?)o["outcome"], out var state)) return null;
        var at = DateTimeOffset.TryParse((string?)o["at"], CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out var t) ? t : (DateTimeOffset?)null;
        int? pid = o["pid"] is JsonValue v && v.TryGetValue<int>(out var p) ? p : null;
        static string? S(JsonNode? n) => (string?)n is { Length: > 0 } s ? s : null;
        return new WatchdogOutcome(state, at, pid, S(o["errorId"]), S(o["message"]));
    }
}
