using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Platform;
using SafeDeploy.Engine.Services;
using SafeDeploy.Engine.SharedLibraries;

namespace SafeDeploy.Engine.Actions;

/// <summary>`loaded`: the running service maps the library (the very file on disk now), read from /proc/&lt;pid&gt;/maps.</summary>
internal sealed class LoadedAction : IDeployAction
{
    public required string Library { get; init; }
    public string? PidFile { get; init; }
    public string? Unit { get; init; }
    public string Systemctl { get; init; } = "systemctl";

    public string Kind => "loaded";
    public IReadOnlyList<string> Writes => Array.Empty<string>();
    public string Describe() => $"check that {(PidFile is not null ? $"the process of {PidFile}" : $"unit {Unit}")} maps {Library}";

    public async Task ExecuteAsync(ActionContext context)
    {
        int? pid;
        string source;
        if (PidFile is not null)
        {
            source = context.MapPath(PidFile);
            var text = System.IO.File.Exists(source) ? System.IO.File.ReadAllText(source).Trim() : null;
            pid = int.TryParse(text, out var p) && p > 0 ? p : null;
        }
        else
        {
            source = $"systemd unit {Unit}";
            pid = (await new SystemdServiceManager(new SystemdServiceOptions { Unit = Unit!, Systemctl = Systemctl }).GetStatusAsync(context.Cancellation).ConfigureAwait(false)).Pid;
        }
        if (pid is null || !ProcessLiveness.IsAlive(pid.Value))
            throw new SafeDeployException("ServiceNotRunning", ErrorKind.ObjectNotFound, source,
                $"Phase '{context.PhaseName}': no running process found through {source}.", "Start the service (a service phase before this one).");
        var library = context.MapPath(Library);
        var r = LoadedLibraries.Check(pid.Value, library);
        foreach (var line in r.MatchingLines) context.Log.WriteLine(line);
        if (!r.Loaded)
            throw new SafeDeployException("LibraryNotLoaded", ErrorKind.InvalidOperation, library,
                r.MapsDeletedCopy
                    ? $"Phase '{context.PhaseName}': pid {pid} maps an older, replaced copy of '{library}', not the installed one: it was not restarted after the install."
                    : $"Phase '{context.PhaseName}': pid {pid} does not map '{library}': the preload did not reach it.",
                "Restart the service after the preload phase, and check that the loader reads the preload file.");
        context.Log.WriteLine($"pid {pid} maps {library}");
    }

    public Task UndoAsync(ActionContext context, IReadOnlyList<UndoRecord> recorded) => Task.CompletedTask;
}
