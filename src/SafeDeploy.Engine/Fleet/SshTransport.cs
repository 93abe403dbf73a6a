using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Fleet;

/// <summary>
/// Reaches hosts through the user's own OpenSSH client (`ssh`, `scp`): their ~/.ssh/config, agent, known hosts and
/// ProxyJump apply, plus the inventory's options. Never an interactive prompt (BatchMode=yes). The connections of one
/// rollout share a master per host (ControlMaster), so staging and deploying cost one TCP and key exchange.
/// </summary>
internal sealed class SshTransport : IDisposable
{
    readonly string controlDir;
    readonly CancellationTokenSource warming = new();
    readonly Dictionary<string, Task<CommandResult>> warm = new(StringComparer.Ordinal);

    public SshTransport(string ssh = "ssh", string scp = "scp")
    {
        Ssh = ssh;
        Scp = scp;
        // A unix socket path must stay under 108 bytes: a short private directory under /tmp, not the state directory.
        controlDir = Directory.CreateTempSubdirectory("sdf-").FullName;
    }

    public string Ssh { get; }
    public string Scp { get; }

    /// <summary>The `-o` options every connection of a host gets, before the host's own.</summary>
    IEnumerable<(string Key, string Value)> Own() =>
    [
        ("BatchMode", "yes"), ("ConnectTimeout", "10"), ("ControlMaster", "auto"),
        ("ControlPath", Path.Combine(controlDir, "%C")), ("ControlPersist", "10"),
    ];

    /// <summary>The options every ssh and scp call of a host gets, before the host's own.</summary>
    IEnumerable<string> Options(FleetHost host, bool scp)
    {
        foreach (var (k, v) in Own()) { yield return "-o"; yield return k + "=" + v; }
        if (host.Port is { } p) { yield return scp ? "-P" : "-p"; yield return p.ToString(System.Globalization.CultureInfo.InvariantCulture); }
        if (host.IdentityFile is { } i) { yield return "-i"; yield return i; }
        foreach (var o in host.SshOptions) { yield return "-o"; yield return o; }
    }

    /// <summary>
    /// The same options as `-o key=value` pairs for a PowerShell remoting session over SSH (New-PSSession -Options), so that the
    /// session joins this rollout's master connection to the host. Ours win over the host's, as they come first on ssh's command line.
    /// </summary>
    public IReadOnlyDictionary<string, string> SessionOptions(FleetHost host)
    {
        var o = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var kv in host.SshOptions)
        {
            var at = kv.IndexOfAny(['=', ' ', '\t']);
            if (at > 0) o[kv[..at]] = kv[(at + 1)..].Trim();
        }
        foreach (var (k, v) in Own()) o[k] = v;
        return o;
    }

    string Destination(FleetHost host) => (host.User is null ? "" : host.User + "@") + host.Address;

    /// <summary>Runs a POSIX shell command on the host (`ssh host -- command`), with <paramref name="input"/> on its stdin.</summary>
    public CommandResult Run(FleetHost host, string shellCommand, string? input, TimeSpan timeout, CancellationToken token, Action<string>? onLine = null)
    {
        return AwaitWarm(host, token) ?? Command(host, shellCommand, input, timeout, onLine).Run(token);
    }

    ExternalCommand Command(FleetHost host, string shellCommand, string? input, TimeSpan timeout, Action<string>? onLine) => new()
    {
        Program = Ssh, Arguments = Options(host, false).Concat(["-T", "--", Destination(host), shellCommand]).ToList(),
        StandardInput = input ?? "", Timeout = timeout, OnLine = onLine,
    };

    /// <summary>Copies a local file to an absolute path on the host.</summary>
    public CommandResult Copy(FleetHost host, string localFile, string remotePath, TimeSpan timeout, CancellationToken token) =>
        new ExternalCommand
        {
            Program = Scp, Arguments = Options(host, true).Concat(["-q", "-B", "--", localFile, Destination(host) + ":" + remotePath]).ToList(),
            Timeout = timeout,
        }.Run(token);

    /// <summary>
    /// Opens the master connections of hosts that come next (the following wave), in the background, so that their staging
    /// finds the TCP connection and key exchange done. Nothing runs on the hosts (`true`), and a failure is left to the
    /// host's own staging to report.
    /// </summary>
    public void Warm(IEnumerable<FleetHost> hosts)
    {
        lock (warm)
            foreach (var h in hosts)
                if (!warm.ContainsKey(h.Name))
                    warm[h.Name] = Task.Run(() => Command(h, "true", null, TimeSpan.FromSeconds(15), null).Run(warming.Token));
    }

    /// <summary>
    /// A host's first command waits for the master connection <see cref="Warm"/> is opening, instead of racing it; when that
    /// could not connect, its failure is the command's (the host is not tried, and waited for, twice).
    /// </summary>
    CommandResult? AwaitWarm(FleetHost host, CancellationToken token)
    {
        Task<CommandResult>? opening;
        lock (warm) warm.Remove(host.Name, out opening);
        if (opening is null) return null;
        try { return opening.Wait(TimeSpan.FromSeconds(30), token) && IsConnectionFailure(opening.Result) ? opening.Result : null; }
        catch (AggregateException) { return null; } // it could not even start: the command tries by itself
    }

    /// <summary>ssh's own failure (it could not connect or lost the connection), not the remote command's exit code.</summary>
    public static bool IsConnectionFailure(CommandResult r) => r.ExitCode == 255 || r.TimedOut;

    /// <summary>A single-quoted word for the remote POSIX shell.</summary>
    public static string Quote(string s) => "'" + s.Replace("'", "'\\''") + "'";

    public void Dispose()
    {
        warming.Cancel();
        lock (warm)
            try { Task.WaitAll(warm.Values.ToArray(), TimeSpan.FromSeconds(15)); }
            catch (AggregateException) { } // cancelled or failed: nothing was changed on any host
        warming.Dispose();
        // Masters exit on their own after ControlPersist; the sockets' directory goes now.
        try { Directory.Delete(controlDir, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
