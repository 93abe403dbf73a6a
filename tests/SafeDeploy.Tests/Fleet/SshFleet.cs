using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using SafeDeploy.Tests.Infrastructure;

namespace SafeDeploy.Tests.Fleet;

/// <summary>One loopback host of a test fleet: its sshd, its -Root and its state directory.</summary>
public sealed record TestHost(string Name, string Address, int Port, string Root, string State, bool Pwsh, bool Running);

/// <summary>
/// A fleet on this machine: one real sshd per host on 127.0.0.2, 127.0.0.3, … (a host key and a client key made per run,
/// a known_hosts file per run), each host with its own root and state directory and HOME, stopped on Dispose.
/// </summary>
public sealed class SshFleet : IDisposable
{
    readonly List<Process> daemons = new();
    readonly ConcurrentDictionary<string, ConcurrentQueue<string>> logs = new();
    public TempDir Dir { get; } = new("fleet");
    public List<TestHost> Hosts { get; } = new();
    public string ClientKey => Dir["client_ed25519"];
    public string KnownHosts => Dir["known_hosts"];

    /// <param name="pwsh">Per host: whether pwsh is on its PATH (else it gets the safedeploy host uploaded).</param>
    /// <param name="down">Hosts listed in the inventory but with no sshd (unreachable).</param>
    /// <param name="subsystem">Per host with pwsh: whether its sshd offers the `powershell` subsystem (default: every host with pwsh does).</param>
    /// <param name="bare">Per host: a bare VM, with no .NET at all: its sshd (and so every session) runs in a mount namespace
    /// where empty tmpfs mounts hide /usr/share/dotnet, /usr/lib/dotnet and ~/.dotnet.</param>
    public SshFleet(int count, Func<int, bool>? pwsh = null, ISet<int>? down = null, int firstAddress = 2, Func<int, bool>? subsystem = null,
        Func<int, bool>? bare = null)
    {
        Directory.CreateDirectory("/run/sshd"); // sshd's privilege-separation directory (systemd normally makes it)
        Keygen(Dir["host_ed25519"]);
        Keygen(ClientKey);
        File.Copy(ClientKey + ".pub", Dir["authorized_keys"]);
        var hostKey = File.ReadAllText(Dir["host_ed25519.pub"]).Trim().Split(' ');
        var known = new StringBuilder();
        for (int i = 0; i < count; i++)
        {
            var address = $"127.0.0.{firstAddress + i}";
            var port = FreePort(address);
            var hostDir = Dir[$"h{i + 1}"];
            var (root, state, home) = (Path.Combine(hostDir, "root"), Path.Combine(hostDir, "state"), Path.Combine(hostDir, "home"));
            foreach (var d in new[] { root, state, home }) Directory.CreateDirectory(d);
            bool hasPwsh = pwsh?.Invoke(i) ?? false;
            bool up = down is null || !down.Contains(i);
            Hosts.Add(new TestHost($"h{i + 1}", address, port, root, state, hasPwsh, up));
            known.Append($"[{address}]:{port} {hostKey[0]} {hostKey[1]}\n");
            if (!up) continue;
            var path = (hasPwsh ? PwshDir + ":" : "") + "/usr/local/bin:/usr/bin:/bin";
            // PowerShell remoting over SSH: New-PSSession -HostName asks for this subsystem.
            var remoting = hasPwsh && (subsystem?.Invoke(i) ?? true) ? $"Subsystem powershell {Path.Combine(PwshDir, "pwsh")} -sshs -NoLogo -NoProfile" : "";
            File.WriteAllText(Path.Combine(hostDir, "sshd_config"), $"""
                HostKey {Dir["host_ed25519"]}
                PidFile {Path.Combine(hostDir, "sshd.pid")}
                AuthorizedKeysFile {Dir["authorized_keys"]}
                StrictModes no
                UsePAM no
                PasswordAuthentication no
                KbdInteractiveAuthentication no
                PermitRootLogin prohibit-password
                PermitUserEnvironment no
                SetEnv PATH={path} HOME={home} DOTNET_CLI_TELEMETRY_OPTOUT=1 POWERSHELL_TELEMETRY_OPTOUT=1
                Subsystem sftp internal-sftp
                {remoting}
                MaxStartups 100
                MaxSessions 100
                LogLevel VERBOSE

                """);
            string[] sshd = ["/usr/sbin/sshd", "-D", "-e", "-f", Path.Combine(hostDir, "sshd_config"), "-p", port.ToString(), "-o", $"ListenAddress={address}"];
            if (bare?.Invoke(i) == true)
            {
                var hide = string.Join(" && ", DotnetDirectories.Select(d => $"mount -t tmpfs -o size=64k,mode=0755 none '{d}'"));
                sshd = ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", hide + " && exec \"$0\" \"$@\"", .. sshd];
            }
            var p = Process.Start(new ProcessStartInfo(sshd[0], sshd[1..]) { RedirectStandardError = true, RedirectStandardOutput = true })!;
            var log = new ConcurrentQueue<string>();
            logs[$"h{i + 1}"] = log;
            p.ErrorDataReceived += (_, e) => { if (e.Data is { } line) log.Enqueue(line); };
            p.BeginErrorReadLine();
            daemons.Add(p);
        }
        File.WriteAllText(KnownHosts, known.ToString());
        foreach (var h in Hosts.Where(h => h.Running)) WaitListening(h);
    }

    /// <summary>What a host's sshd logged so far (LogLevel VERBOSE: connections, sessions and the subsystem each asked for).</summary>
    public IReadOnlyList<string> SshdLog(string host) => logs.TryGetValue(host, out var q) ? q.ToArray() : [];

    /// <summary>Where this machine's .NET lives (what a bare host must not see).</summary>
    static IEnumerable<string> DotnetDirectories =>
        new[] { "/usr/share/dotnet", "/usr/lib/dotnet", Path.Combine(Environment.GetEnvironmentVariable("HOME") ?? "/root", ".dotnet") }.Where(Directory.Exists);

    /// <summary>Where the pwsh of this machine lives (the dotnet tool), for hosts that have pwsh.</summary>
    public static string PwshDir => Path.Combine(Environment.GetEnvironmentVariable("HOME") ?? "/root", ".dotnet", "tools");

    public static bool PwshAvailable => File.Exists(Path.Combine(PwshDir, "pwsh"));

    /// <summary>Writes an inventory of every host (per host: root, state directory, extra variables) and returns its path.</summary>
    public string Inventory(Func<TestHost, string>? extra = null, string? groups = null)
    {
        var sb = new StringBuilder($"""
            defaults:
              user: {Environment.UserName}
              identityFile: {ClientKey}
              sshOptions:
                - UserKnownHostsFile={KnownHosts}
                - GlobalKnownHostsFile=/dev/null
                - StrictHostKeyChecking=yes
                - IdentitiesOnly=yes
            hosts:

            """);
        foreach (var h in Hosts)
        {
            sb.Append($"  {h.Name}:\n    address: {h.Address}\n    port: {h.Port}\n    root: {h.Root}\n    stateDirectory: {h.State}\n");
            if (extra?.Invoke(h) is { Length: > 0 } x) sb.Append(x);
        }
        if (groups is not null) sb.Append("groups:\n").Append(groups);
        return Dir.Write("inventory.yaml", sb.ToString());
    }

    /// <summary>Every file under a host's root with its bytes (for "byte-identical to before").</summary>
    public static SortedDictionary<string, string> Snapshot(string root)
    {
        var map = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var f in Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories))
            map[Path.GetRelativePath(root, f)] = Convert.ToBase64String(File.ReadAllBytes(f));
        foreach (var d in Directory.EnumerateDirectories(root, "*", SearchOption.AllDirectories))
            map[Path.GetRelativePath(root, d) + "/"] = "";
        return map;
    }

    static void Keygen(string path)
    {
        var p = Process.Start(new ProcessStartInfo("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "safedeploy-test", "-f", path]) { RedirectStandardOutput = true })!;
        if (!p.WaitForExit(20_000) || p.ExitCode != 0) throw new InvalidOperationException("ssh-keygen failed for " + path);
    }

    static int FreePort(string address)
    {
        using var l = new TcpListener(IPAddress.Parse(address), 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    static void WaitListening(TestHost h)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (DateTime.UtcNow < deadline)
        {
            try { using var c = new TcpClient(); c.Connect(h.Address, h.Port); return; }
            catch (SocketException) { Thread.Sleep(50); }
        }
        throw new TimeoutException($"sshd for {h.Name} did not listen on {h.Address}:{h.Port} within 20 s");
    }

    public void Dispose()
    {
        foreach (var p in daemons)
        {
            try { if (!p.HasExited) { p.Kill(entireProcessTree: true); p.WaitForExit(5000); } } catch (InvalidOperationException) { }
            p.Dispose();
        }
        Dir.Dispose();
    }
}
