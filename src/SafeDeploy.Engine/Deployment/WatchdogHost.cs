using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Deployment;

/// <summary>Finds the PowerShell host a try-mode watchdog runs in.</summary>
internal static class WatchdogHost
{
    /// <summary>
    /// SAFEDEPLOY_HOST, else this process when it is safedeploy or pwsh, else one on PATH (as an absolute path).
    /// <paramref name="moduleBase"/> is the module's folder (its SafeDeploy.psd1 is imported), or null to import by name.
    /// </summary>
    public static WatchdogLaunch Locate(string? moduleBase, string? modulePath, string? stateDirectoryBase)
    {
        var host = Environment.GetEnvironmentVariable("SAFEDEPLOY_HOST") is { Length: > 0 } h ? h
            : Environment.ProcessPath is { } self && Path.GetFileName(self) is "safedeploy" or "pwsh" ? self
            : ExternalCommand.Which("safedeploy") ?? ExternalCommand.Which("pwsh")
              ?? throw new SafeDeployException("TryModeUnavailable", ErrorKind.NotInstalled, "safedeploy",
                  "Try mode needs a PowerShell host for its watchdog (the safedeploy host or pwsh), and none was found.",
                  "Put safedeploy or pwsh on PATH, or set SAFEDEPLOY_HOST to one.");
        var psd1 = moduleBase is null ? null : Path.Combine(moduleBase, "SafeDeploy.psd1");
        var module = psd1 is not null && File.Exists(psd1) ? psd1 : modulePath ?? "SafeDeploy";
        return new WatchdogLaunch(host, module, stateDirectoryBase);
    }
}
