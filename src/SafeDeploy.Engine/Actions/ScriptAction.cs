using SafeDeploy.Engine.Errors;

namespace SafeDeploy.Engine.Actions;

/// <summary>`script`: PowerShell run in the caller's session (on its pipeline thread), with an optional undo script.</summary>
internal sealed class ScriptAction : IDeployAction
{
    public required string Script { get; init; }
    public string? Undo { get; init; }

    public string Kind => "script";
    public IReadOnlyList<string> Writes => Array.Empty<string>();
    public string Describe() => $"PowerShell: {FirstLine(Script)}" + (Undo is null ? "" : $" (undo: {FirstLine(Undo)})");

    static string FirstLine(string s)
    {
        var l = s.Trim().Split('\n')[0].Trim();
        return l.Length > 60 ? l[..57] + "..." : l;
    }

    public async Task ExecuteAsync(ActionContext context)
    {
        if (Undo is not null) context.RecordUndo("script");
        context.Log.WriteLine($"PS> {FirstLine(Script)}");
        var output = await context.RunScriptAsync(Script).ConfigureAwait(false);
        if (output.Length > 0) context.Log.WriteLine(output);
    }

    public async Task UndoAsync(ActionContext context, IReadOnlyList<UndoRecord> recorded)
    {
        if (Undo is null || !recorded.Any(r => r.Step == "script")) return;
        context.Log.WriteLine($"PS (undo)> {FirstLine(Undo)}");
        var output = await context.RunScriptAsync(Undo).ConfigureAwait(false);
        if (output.Length > 0) context.Log.WriteLine(output);
    }
}
