using System.Globalization;
using System.Management.Automation;
using System.Management.Automation.Host;
using System.Security;

namespace SafeDeploy.Host;

/// <summary>The host: output to stdout, everything else (errors, warnings, verbose, progress) to stderr, like pwsh.</summary>
sealed class ConsoleHost(ConsoleUi ui) : PSHost
{
    public int? ExitCode { get; private set; }
    public override CultureInfo CurrentCulture => CultureInfo.InvariantCulture;
    public override CultureInfo CurrentUICulture => CultureInfo.GetCultureInfo("en-US");
    public override Guid InstanceId { get; } = Guid.NewGuid();
    public override string Name => "SafeDeploy";
    public override PSHostUserInterface UI => ui;
    public override Version Version => typeof(ConsoleHost).Assembly.GetName().Version ?? new Version(0, 1);
    public override void EnterNestedPrompt() => throw new NotSupportedException("Nested prompts are not supported by safedeploy.");
    public override void ExitNestedPrompt() => throw new NotSupportedException();
    public override void NotifyBeginApplication() { }
    public override void NotifyEndApplication() { }
    public override void SetShouldExit(int exitCode) => ExitCode = exitCode;
}

sealed class ConsoleUi : PSHostUserInterface
{
    readonly TextWriter stdout = Console.Out;
    readonly TextWriter stderr = Console.Error;
    readonly bool stderrIsTerminal = !Console.IsErrorRedirected;
    readonly object gate = new();
    bool progressLineOpen;

    public ConsoleUi() => RawUI = new ConsoleRawUi();

    public override PSHostRawUserInterface RawUI { get; }
    static readonly System.Text.RegularExpressions.Regex ansi = new("\x1b\\[[0-9;?]*[ -/]*[@-~]", System.Text.RegularExpressions.RegexOptions.Compiled);

    /// <summary>Logs and cron mail get no escape sequences (set when stdout is redirected or NO_COLOR is set).</summary>
    public bool PlainText { get; set; }

    string Plain(string s) => PlainText && s.Contains('\x1b') ? ansi.Replace(s, "") : s;

    public override void Write(string value) { lock (gate) { EndProgressLine(); stdout.Write(Plain(value)); } }
    public override void Write(ConsoleColor foregroundColor, ConsoleColor backgroundColor, string value) => Write(value);
    public override void WriteLine(string value) { lock (gate) { EndProgressLine(); stdout.WriteLine(Plain(value)); } }
    public override void WriteErrorLine(string value) => Err(value);
    public override void WriteDebugLine(string message) => Err("DEBUG: " + message);
    public override void WriteVerboseLine(string message) => Err("VERBOSE: " + message);
    public override void WriteWarningLine(string message) => Err("WARNING: " + message);

    void Err(string line) { lock (gate) { EndProgressLine(); stderr.WriteLine(Plain(line)); stderr.Flush(); } }

    void EndProgressLine()
    {
        if (!progressLineOpen) return;
        stderr.Write("\r\x1b[K");
        progressLineOpen = false;
    }

    /// <summary>
    /// On a terminal one self-overwriting line on stderr; redirected (cron, a log) nothing at all, so a scheduled run that
    /// went well prints nothing and cron sends no mail. Warnings and verbose messages are not progress: they still show.
    /// </summary>
    public override void WriteProgress(long sourceId, ProgressRecord record)
    {
        if (!stderrIsTerminal) return;
        lock (gate)
        {
            if (record.RecordType == ProgressRecordType.Completed) { EndProgressLine(); return; }
            var pct = record.PercentComplete >= 0 ? $" {record.PercentComplete}%" : "";
            var text = $"{record.Activity}: {record.StatusDescription}{pct}";
            var width = Math.Max(20, RawUI.BufferSize.Width - 1);
            stderr.Write("\r\x1b[K" + (text.Length > width ? text[..width] : text));
            stderr.Flush();
            progressLineOpen = true;
        }
    }

    public override string ReadLine() => Console.In.ReadLine() ?? "";
    public override SecureString ReadLineAsSecureString()
    {
        var s = new SecureString();
        foreach (var c in ReadLine()) s.AppendChar(c);
        s.MakeReadOnly();
        return s;
    }

    public override Dictionary<string, PSObject> Prompt(string caption, string message, System.Collections.ObjectModel.Collection<FieldDescription> descriptions)
    {
        var result = new Dictionary<string, PSObject>();
        foreach (var d in descriptions)
        {
            Err($"{d.Name}: ");
            result[d.Name] = new PSObject(ReadLine());
        }
        return result;
    }

    public override int PromptForChoice(string caption, string message, System.Collections.ObjectModel.Collection<ChoiceDescription> choices, int defaultChoice)
    {
        if (Console.IsInputRedirected && Console.In.Peek() < 0)
            throw new PSInvalidOperationException($"{caption}: {message} — no one can answer (standard input is not a terminal). Use -Confirm:$false or -Force.");
        while (true)
        {
            Err($"{caption}\n{message}");
            for (int i = 0; i < choices.Count; i++) Err($"  [{i}] {choices[i].Label.Replace("&", "")}");
            var answer = ReadLine().Trim();
            if (answer.Length == 0) return defaultChoice;
            if (int.TryParse(answer, out var n) && n >= 0 && n < choices.Count) return n;
            for (int i = 0; i < choices.Count; i++)
            {
                var label = choices[i].Label;
                int amp = label.IndexOf('&');
                if (amp >= 0 && amp + 1 < label.Length && string.Equals(label[amp + 1].ToString(), answer, StringComparison.OrdinalIgnoreCase)) return i;
            }
        }
    }

    public override PSCredential PromptForCredential(string caption, string message, string userName, string targetName) =>
        throw new NotSupportedException("Credential prompts are not supported by safedeploy; pass a credential object.");
    public override PSCredential PromptForCredential(string caption, string message, string userName, string targetName, PSCredentialTypes allowedCredentialTypes, PSCredentialUIOptions options) =>
        PromptForCredential(caption, message, userName, targetName);
}

sealed class ConsoleRawUi : PSHostRawUserInterface
{
    static int Width()
    {
        if (Console.IsOutputRedirected) return 120;
        try { return Console.WindowWidth > 0 ? Console.WindowWidth : 120; } catch (IOException) { return 120; }
    }

    public override ConsoleColor BackgroundColor { get; set; } = ConsoleColor.Black;
    public override ConsoleColor ForegroundColor { get; set; } = ConsoleColor.Gray;
    public override Size BufferSize { get => new(Width(), 9999); set { } }
    public override Coordinates CursorPosition { get; set; }
    public override int CursorSize { get; set; } = 25;
    public override bool KeyAvailable => false;
    public override Size MaxPhysicalWindowSize => new(Width(), 100);
    public override Size MaxWindowSize => new(Width(), 100);
    public override Coordinates WindowPosition { get; set; }
    public override Size WindowSize { get => new(Width(), 50); set { } }
    public override string WindowTitle { get; set; } = "safedeploy";
    public override void FlushInputBuffer() { }
    public override BufferCell[,] GetBufferContents(Rectangle rectangle) => throw new NotSupportedException();
    public override KeyInfo ReadKey(ReadKeyOptions options) => throw new NotSupportedException("safedeploy does not read keys.");
    public override void ScrollBufferContents(Rectangle source, Coordinates destination, Rectangle clip, BufferCell fill) { }
    public override void SetBufferContents(Coordinates origin, BufferCell[,] contents) { }
    public override void SetBufferContents(Rectangle rectangle, BufferCell fill) { }
}
