using SafeDeploy.Engine.Manifest;
using SafeDeploy.Engine.Actions;
using SafeDeploy.Engine.Deployment;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Fleet;

/// <summary>What a host needs before it can change: its fleet folder, the runtime it runs, and its staged manifest.</summary>
/// <remarks><see cref="Payload"/> is null (and <see cref="ManifestPath"/> empty) when only the runtime was staged (Confirm, Undo).</remarks>
internal sealed record HostStage(string FleetDir, string? Pwsh, StagedBundle Module, StagedBundle? HostBundle, StagedBundle? Payload, string ManifestPath);

/// <summary>
/// Builds the bundles of a rollout (module, one-file host, per-host payload) and stages them to a host by hash:
/// one probe, one scp of whatever is missing, one unpack that checks every sum.
/// </summary>
internal sealed class HostStaging(ActionRegistry registry, SshTransport ssh, string workDir, StagedBundle module, StagedBundle? hostBundle, TimeSpan hostTimeout)
{
    public const string ModulePrefix = "module-";
    static readonly TimeSpan probeTimeout = TimeSpan.FromSeconds(60), copyTimeout = TimeSpan.FromMinutes(10);

    /// <summary>The controller's module (SafeDeploy.psd1, bin/ with the assemblies, module/ with the views, en-US/) as a bundle.</summary>
    public static StagedBundle ModuleBundle(string moduleDirectory, string version, FileSums? known = null)
    {
        if (!File.Exists(Path.Combine(moduleDirectory, "SafeDeploy.psd1")))
            throw new SafeDeployException("ModuleNotFound", ErrorKind.ObjectNotFound, moduleDirectory,
                $"'{moduleDirectory}' holds no SafeDeploy.psd1 to stage to the hosts.", "Import SafeDeploy from its module folder (Import-Module <dir>/SafeDeploy.psd1).");
        var files = new[] { "SafeDeploy.psd1" }.Concat(StagedBundle.FilesUnder(moduleDirectory, "bin"))
            .Concat(StagedBundle.FilesUnder(moduleDirectory, "module")).Concat(StagedBundle.FilesUnder(moduleDirectory, "en-US"));
        return StagedBundle.Create("runtime", $"{ModulePrefix}{version}-", moduleDirectory, files, known);
    }

    /// <summary>
    /// The safedeploy host for hosts without pwsh: a one-file executable (with the native safedeploy-step beside it when the
    /// package has one), or one beside its SafeDeploy.Host.dll (framework-dependent: the whole folder).
    /// </summary>
    public static StagedBundle HostBundle(string executable, string version, FileSums? known = null)
    {
        var full = Path.GetFullPath(executable);
        if (!File.Exists(full))
            throw new SafeDeployException("HostExecutableNotFound", ErrorKind.ObjectNotFound, full,
                $"The safedeploy host '{full}' does not exist.", "Give the one-file host from the package output (build.ps1 -Task Package) with -HostExecutable.");
        var dir = Path.GetDirectoryName(full)!;
        if (Path.GetFileName(full) != "safedeploy")
            throw new SafeDeployException("HostExecutableNotFound", ErrorKind.InvalidArgument, full,
                $"'{full}' is not named 'safedeploy'.", "Point -HostExecutable at the safedeploy executable itself.");
        // Beside the one file, the package's native step (safedeploy-step) travels with it: steps then need no runtime start.
        var files = File.Exists(Path.Combine(dir, "SafeDeploy.Host.dll")) ? StagedBundle.FilesUnder(dir, ".")
            : File.Exists(Path.Combine(dir, RemoteScripts.NativeStep)) ? ["safedeploy", RemoteScripts.NativeStep] : ["safedeploy"];
        return StagedBundle.Create("runtime", $"host-{version}-", dir, files.Select(f => f.StartsWith("./", StringComparison.Ordinal) ? f[2..] : f), known);
    }

    /// <summary>The host's payload: the manifest and every file its `install` phases read from beside it, as the host's variables expand them.</summary>
    public StagedBundle Payload(string manifestPath, FleetHost host, IReadOnlyDictionary<string, string> variables)
    {
        var manifestDir = Path.GetDirectoryName(manifestPath)!;
        var manifest = new ManifestParser(registry).ParseFile(manifestPath, variables, DeploymentRoot.From(host.Root)).GetOrThrow(manifestPath);
        var files = new List<string> { Path.GetFileName(manifestPath) };
        foreach (var item in manifest.Phases.Select(p => p.Action).OfType<InstallAction>().SelectMany(a => a.Items))
        {
            // Absolute sources are the host's own files; sources made by an earlier phase on the host do not exist here yet.
            if (Path.IsPathRooted(item.Source)) continue;
            var rel = Path.GetRelativePath(manifestDir, Path.GetFullPath(Path.Combine(manifestDir, item.Source)));
            if (!rel.StartsWith("..", StringComparison.Ordinal) && File.Exists(Path.Combine(manifestDir, rel))) files.Add(rel);
        }
        return StagedBundle.Create("payload", "", manifestDir, files);
    }

    /// <summary>Probes the host and uploads the runtime it lacks (no manifest: for Confirm and Undo across hosts).</summary>
    public HostStage StageRuntime(FleetHost host, CancellationToken token) => Stage(host, null, "", token);

    /// <summary>Probes the host and uploads what it lacks; throws (the host counts as Unreachable) when it cannot.</summary>
    public HostStage Stage(FleetHost host, StagedBundle? payload, string manifestName, CancellationToken token) =>
        Stage(host, payload, manifestName, null, token, out _);

    /// <summary>
    /// The same, and on a host that runs the uploaded safedeploy host and has every bundle already, runs <paramref name="then"/>
    /// (a shell command for its fleet folder, with its standard input) in the same round trip: <paramref name="ran"/> is then
    /// that call's result, whatever its exit code; null when the step is still to run.
    /// </summary>
    public HostStage Stage(FleetHost host, StagedBundle? payload, string manifestName, Func<HostStage, (string Command, string Input)>? then,
        CancellationToken token, out CommandResult? ran)
    {
        ran = null;
        var own = payload is null ? new[] { module } : [module, payload];
        var bundles = own.Concat(hostBundle is null ? [] : [hostBundle]).ToList();
        // The step's paths are relative to the fleet folder, where the probe stands when it runs it.
        var quick = then is not null && hostBundle is not null ? then(new HostStage(".", null, module, hostBundle, payload, ManifestIn(".", payload, manifestName))) : ((string, string)?)null;
        var probe = ssh.Run(host, RemoteScripts.Probe(host, bundles, quick?.Item1), quick?.Item2, quick is null ? probeTimeout : hostTimeout, token);
        var lines = probe.StandardOutput.Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        if (quick is not null && lines.Contains(RemoteScripts.StepLine)) ran = probe;
        else if (!probe.Succeeded) throw Unreachable(host, "probing it", probe);
        var fleetDir = lines.FirstOrDefault(l => l.StartsWith("FLEETDIR ", StringComparison.Ordinal))?[9..]
            ?? throw Unreachable(host, "reading its state directory", probe);
        var pwsh = lines.FirstOrDefault(l => l.StartsWith("PWSH ", StringComparison.Ordinal))?[5..].Trim();
        var have = lines.Where(l => l.StartsWith("HAVE ", StringComparison.Ordinal)).Select(l => l[5..].Trim()).ToHashSet(StringComparer.Ordinal);
        bool usePwsh = !string.IsNullOrEmpty(pwsh);
        if (!usePwsh && hostBundle is null)
            throw new SafeDeployException("HostHasNoPowerShell", ErrorKind.NotInstalled, host.Name,
                $"Host '{host.Name}' has no pwsh on its PATH and no safedeploy host was given to upload.",
                "Install pwsh there, or pass -HostExecutable with the one-file safedeploy (build.ps1 -Task Package).");
        var needed = own.Concat(usePwsh ? [] : [hostBundle!]).Where(b => !have.Contains(b.Name)).ToList();
        if (needed.Count > 0 && ran is null)
        {
            var tars = needed.Select(b => (Bundle: b, Tar: b.Tar(workDir, token))).ToList();
            foreach (var (b, tar) in tars)
            {
                var copy = ssh.Copy(host, tar, $"{fleetDir}/incoming/{Path.GetFileName(tar)}", copyTimeout, token);
                if (!copy.Succeeded) throw Unreachable(host, $"copying {b.Name} ({b.Bytes} bytes)", copy);
            }
            var unpack = ssh.Run(host, RemoteScripts.Unpack(fleetDir, tars), null, copyTimeout, token);
            if (!unpack.Succeeded) throw Unreachable(host, "unpacking and hash-checking " + string.Join(", ", needed.Select(b => b.Name)), unpack);
        }
        return new HostStage(fleetDir, usePwsh ? pwsh : null, module, usePwsh ? null : hostBundle, payload, ManifestIn(fleetDir, payload, manifestName));
    }

    static string ManifestIn(string fleetDir, StagedBundle? payload, string manifestFile) =>
        payload is null ? "" : $"{fleetDir}/{payload.RemoteDir}/{payload.Files[Math.Max(0, payload.Files.ToList().IndexOf(manifestFile))]}";

    internal static SafeDeployException Unreachable(FleetHost host, string doing, CommandResult r) =>
        new("HostUnreachable", ErrorKind.ConnectionError, host.Name,
            $"Host '{host.Name}' ({host.Address}) failed while {doing}: " +
            (r.TimedOut ? "timed out." : $"{(SshTransport.IsConnectionFailure(r) ? "ssh" : "the remote command")} exited with {r.ExitCode}: {Last(r.StandardError)}"),
            "Check that `ssh` reaches it non-interactively (BatchMode) with the inventory's options, and that its state directory is writable.");

    static string Last(string text)
    {
        var t = text.Trim();
        return t.Length > 600 ? "…" + t[^600..] : t;
    }
}
