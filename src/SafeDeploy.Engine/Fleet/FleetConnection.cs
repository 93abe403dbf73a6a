using SafeDeploy.Engine.Manifest;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Fleet;

/// <summary>What the controller stages to hosts and how it reaches them: the same for a rollout and for Confirm or Undo across hosts.</summary>
internal sealed record FleetRuntime
{
    /// <summary>The controller's module folder (SafeDeploy.psd1), uploaded to hosts that lack this version.</summary>
    public required string ModuleDirectory { get; init; }
    public string ModuleVersion { get; init; } = "0";
    /// <summary>The safedeploy executable for hosts without pwsh (null: such hosts are Unreachable).</summary>
    public string? HostExecutable { get; init; }
    /// <summary>The longest one host's step (a deployment, a rollback, a confirm) may take.</summary>
    public TimeSpan HostTimeout { get; init; } = TimeSpan.FromMinutes(30);
    /// <summary>Opens PowerShell remoting sessions over SSH for hosts with pwsh (null: they are driven through ssh + pwsh).</summary>
    public RemoteSessionInvoker? Sessions { get; init; }
    /// <summary>Where the sums of the staged runtime files are remembered between runs (<see cref="FileSums"/>; null: read them all each time).</summary>
    public string? SumsCache { get; init; }
}

/// <summary>
/// One controller run's way to its hosts: the ssh transport (one master connection per host), a private work folder for
/// the tars, the runtime bundles hashed once, their staging, and the runner of host steps. Disposed at the end of the run.
/// </summary>
sealed class FleetConnection : IDisposable
{
    readonly DirectoryInfo work = Directory.CreateTempSubdirectory("safedeploy-fleet-");

    public FleetConnection(FleetRuntime runtime, ActionRegistry registry, IOperationReporter reporter, IEnumerable<FleetHost> first)
    {
        Ssh = new SshTransport();
        try
        {
            // The first hosts' connections open while the bundles are hashed (and the caller goes on).
            Ssh.Warm(first);
            var known = new FileSums(runtime.SumsCache);
            var module = HostStaging.ModuleBundle(runtime.ModuleDirectory, runtime.ModuleVersion, known);
            var host = runtime.HostExecutable is null ? null : HostStaging.HostBundle(runtime.HostExecutable, runtime.ModuleVersion, known);
            known.Save();
            Staging = new HostStaging(registry, Ssh, work.FullName, module, host, runtime.HostTimeout);
            Runner = new RemoteRunner(Ssh, runtime.Sessions, reporter, runtime.HostTimeout);
        }
        catch { Dispose(); throw; }
    }

    public SshTransport Ssh { get; }
    public HostStaging Staging { get; } = null!;
    public RemoteRunner Runner { get; } = null!;

    public void Dispose()
    {
        Ssh.Dispose();
        try { work.Delete(true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
