using SafeDeploy.Engine.Services;

namespace SafeDeploy.Engine.Manifest;

/// <summary>Reads the service settings of a `service` phase (manager and its keys) into a <see cref="ServiceSpec"/>.</summary>
static class ServiceSpecParser
{
    public static ServiceSpec? Parse(ActionNode node)
    {
        var manager = node.String("manager", required: true);
        if (manager is null) return null;
        var spec = new ServiceSpec
        {
            Manager = manager,
            Unit = node.String("unit"),
            User = node.Bool("user") ?? false,
            Command = node.Child("command")?.Arguments("command"),
            PidFile = node.AbsolutePath("pidFile"),
            LogFile = node.AbsolutePath("logFile"),
            PreloadFile = node.AbsolutePath("preloadFile"),
            WorkingDirectory = node.String("workingDirectory"),
            EnvironmentSpec = node.EnvironmentSpec(),
            Start = node.Child("start")?.Arguments("start"),
            Stop = node.Child("stop")?.Arguments("stop"),
            Status = node.Child("status")?.Arguments("status"),
            Kill = node.Child("kill")?.Arguments("kill"),
            StopTimeout = node.Duration("stopTimeout"),
            StartTimeout = node.Duration("startTimeout"),
            Escalate = node.Bool("escalate") ?? true,
            Systemctl = node.String("systemctl") ?? "systemctl",
        };
        switch (manager)
        {
            case "systemd":
                if (spec.Unit is null) { node.Error("The systemd manager needs 'unit'.", "MissingKey"); return null; }
                foreach (var key in new[] { "environment", "inheritEnvironment" }.Where(node.Has))
                {
                    node.ErrorAt(key, $"'{key}' does not apply to the systemd manager: systemd starts the unit with the environment its unit file gives (Environment=, EnvironmentFile=).");
                    return null;
                }
                return spec;
            case "process":
                if (spec.Command is null || spec.PidFile is null) { node.Error("The process manager needs 'command' and 'pidFile'.", "MissingKey"); return null; }
                return spec;
            case "command":
                if (spec.Start is null || spec.Stop is null || spec.Status is null) { node.Error("The command manager needs 'start', 'stop' and 'status'.", "MissingKey"); return null; }
                return spec;
            default:
                node.ErrorAt("manager", $"'manager' must be systemd, command or process, not '{manager}'.");
                return null;
        }
    }
}
