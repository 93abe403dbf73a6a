using System.Net;
using System.Net.Sockets;
using SafeDeploy.Engine.Platform;
using SafeDeploy.Engine.Services;
using SafeDeploy.Tests.Infrastructure;

namespace SafeDeploy.Tests.NativeShim;

/// <summary>
/// A -Root sandbox for the shim: /opt/shim/libshim.so, /etc/ld.so.preload, /run/sample.pid and /var/log/sample.log under
/// a temporary root, and the sample service on a free 127.0.0.1 port. Dispose kills every service process it saw.
/// </summary>
public sealed class ShimSandbox : IDisposable
{
    readonly TempDir dir = new("shim");
    readonly HashSet<int> pids = new();

    public ShimSandbox()
    {
        Directory.CreateDirectory(Root);
        Port = FreePort();
    }

    public string Root => dir["root"];
    public string Path => dir.Path;
    public int Port { get; }
    public string this[string rooted] => System.IO.Path.Join(Root, rooted);
    public const string LibraryEntry = "/opt/shim/libshim.so";
    public string Library => this[LibraryEntry];
    public string PreloadFile => this["/etc/ld.so.preload"];
    public string PidFile => this["/run/sample.pid"];
    public string LogFile => this["/var/log/sample.log"];
    public Uri HealthUrl => new($"http://127.0.0.1:{Port}/health");

    /// <summary>Puts a library at /opt/shim/libshim.so (0644) and, when asked, its line into /etc/ld.so.preload.</summary>
    public void InstallLibrary(string source, bool preload = true)
    {
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(Library)!);
        File.Copy(source, Library, overwrite: true);
        File.SetUnixFileMode(Library, (UnixFileMode)0x1A4);
        if (preload)
        {
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(PreloadFile)!);
            File.WriteAllText(PreloadFile, LibraryEntry + "\n");
        }
    }

    internal ProcessServiceManager Manager(bool ignoreTerm = false, TimeSpan? stopTimeout = null, bool usePreload = true) => new(new ProcessServiceOptions
    {
        Command = [ShimFixtures.Service, Port.ToString()],
        PidFile = PidFile, LogFile = LogFile, PreloadFile = usePreload ? PreloadFile : null, Root = Root,
        Environment = ignoreTerm ? new Dictionary<string, string> { ["SAMPLE_IGNORE_TERM"] = "1" } : new Dictionary<string, string>(),
        StopTimeout = stopTimeout ?? TimeSpan.FromSeconds(5),
    });

    /// <summary>Remembers a pid so that Dispose kills it.</summary>
    public int Track(int? pid)
    {
        if (pid is { } p) lock (pids) pids.Add(p);
        return pid ?? 0;
    }

    /// <summary>The pid the pid file names now (tracked for cleanup).</summary>
    public int? CurrentPid()
    {
        // Only a regular file: a test plants a FIFO there, which a plain read would wait on forever.
        try { return Native.Stat(PidFile, followSymlinks: false) is { IsRegularFile: true } && int.TryParse(File.ReadAllText(PidFile).Trim(), out var p) ? Track(p) : null; }
        catch (IOException) { return null; }
    }

    public static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    public static string Get(Uri url)
    {
        using var http = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(5) };
        var r = http.GetAsync(url).GetAwaiter().GetResult();
        return $"{(int)r.StatusCode} {r.Content.ReadAsStringAsync().GetAwaiter().GetResult()}";
    }

    /// <summary>Every sample-service process serving this sandbox's port, whoever started it (a deployment, a rollback, a test).</summary>
    IEnumerable<int> ServiceProcesses()
    {
        foreach (var d in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(System.IO.Path.GetFileName(d), out var pid)) continue;
            string[] argv;
            try { argv = File.ReadAllText(System.IO.Path.Combine(d, "cmdline")).Split('\0'); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { continue; }
            if (argv.Length >= 2 && argv[0] == ShimFixtures.Service && argv[1] == Port.ToString()) yield return pid;
        }
    }

    public void Dispose()
    {
        CurrentPid();
        foreach (var pid in ServiceProcesses()) Track(pid);
        lock (pids)
            foreach (var pid in pids)
                if (ProcessLiveness.IsAlive(pid) && File.Exists($"/proc/{pid}/cmdline") && File.ReadAllText($"/proc/{pid}/cmdline").Contains(ShimFixtures.Dir))
                    Native.Kill(pid, 9);
        lock (pids) foreach (var pid in pids) ProcessLiveness.WaitGoneAsync(pid, TimeSpan.FromSeconds(5), default).GetAwaiter().GetResult();
        dir.Dispose();
    }
}
