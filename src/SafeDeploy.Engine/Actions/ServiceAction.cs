using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Platform;
using SafeDeploy.Engine.Services;
using SafeDeploy.Engine.SharedLibraries;

namespace SafeDeploy.Engine.Actions;

/// <summary>`service`: stop, start or restart a service through systemd, commands, or a process SafeDeploy supervises; undo brings back the state before.</summary>
internal sealed class ServiceAction : IDeployAction
{
    public required string Operation { get; init; }
    public required ServiceSpec Service { get; init; }

    public string Kind => "service";
    public IReadOnlyList<string> Writes => Service.Writes;
    public string Describe() => $"{Operation} {Service.Describe()}";

    public async Task ExecuteAsync(ActionContext context)
    {
        var manager = Service.Create(context);
        var reporter = new LogReporter(context);
        var before = await manager.GetStatusAsync(context.Cancellation).ConfigureAwait(false);
        context.Log.WriteLine($"{manager.Describe()}: {before.Detail}");
        // Journaled before anything changes: undo needs only whether the service ran before this phase.
        context.RecordUndo("service", new Dictionary<string, string?> { ["operation"] = Operation, ["wasRunning"] = before.Running ? "true" : "false" });
        if (Operation is "stop" or "restart")
        {
            var stop = await manager.StopAsync(reporter, context.Cancellation).ConfigureAwait(false);
            context.Log.WriteLine(!stop.WasRunning ? "was not running" : $"stopped{(stop.Pid is { } p ? $" pid {p}" : "")} in {stop.Duration.TotalMilliseconds:0} ms{(stop.Escalated ? " (escalated: killed after the stop timeout)" : "")}");
        }
        if (Operation is "start" or "restart")
        {
            var start = await manager.StartAsync(reporter, context.Cancellation).ConfigureAwait(false);
            context.Log.WriteLine(start.WasRunning ? $"already running{(start.Pid is { } p ? $" as pid {p}" : "")}" : $"started{(start.Pid is { } q ? $" as pid {q}" : "")}");
        }
    }

    public async Task UndoAsync(ActionContext context, IReadOnlyList<UndoRecord> recorded)
    {
        var record = recorded.FirstOrDefault(r => r.Step == "service");
        if (record is null) return; // the phase never got as far as changing anything
        bool wasRunning = record.Data.TryGetValue("wasRunning", out var w) && w == "true";
        var manager = Service.Create(context);
        var reporter = new LogReporter(context);
        if (Operation == "restart" && wasRunning)
        {
            // Runs before the undo of earlier phases (reverse order): deploy with stop ... start phases around the file
            // changes when the restored service must load the restored files.
            await manager.StopAsync(reporter, context.Cancellation).ConfigureAwait(false);
            await manager.StartAsync(reporter, context.Cancellation).ConfigureAwait(false);
            context.Log.WriteLine("restarted again (it ran before)");
        }
        else if (wasRunning)
        {
            var s = await manager.StartAsync(reporter, context.Cancellation).ConfigureAwait(false);
            context.Log.WriteLine(s.WasRunning ? "running (as before)" : $"started again{(s.Pid is { } p ? $" as pid {p}" : "")} (it ran before)");
        }
        else
        {
            var s = await manager.StopAsync(reporter, context.Cancellation).ConfigureAwait(false);
            context.Log.WriteLine(s.WasRunning ? $"stopped again (it did not run before){(s.Escalated ? ", escalated" : "")}" : "stopped (as before)");
        }
    }
}
