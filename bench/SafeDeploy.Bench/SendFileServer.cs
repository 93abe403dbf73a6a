using System.Net;
using System.Net.Sockets;
using System.Text;

namespace SafeDeploy.Bench;

/// <summary>
/// A minimal HTTP/1.1 server on 127.0.0.1 that answers GET for whole files with sendfile(2) (Socket.SendFile), so the
/// kernel moves the bytes from the page cache and the server is not what a throughput comparison measures (an
/// in-process Kestrel writing from managed memory tops out near 0.5 GB/s on this 2-core machine). No ranges: the
/// throughput runs fetch whole files.
/// </summary>
public sealed class SendFileServer : IDisposable
{
    readonly Socket listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    readonly Dictionary<string, string> files;
    readonly CancellationTokenSource stop = new();

    public SendFileServer(Dictionary<string, string> files)
    {
        this.files = files;
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(64);
        BaseUrl = $"http://127.0.0.1:{((IPEndPoint)listener.LocalEndPoint!).Port}";
        _ = Task.Run(AcceptLoop);
    }

    public string BaseUrl { get; }

    async Task AcceptLoop()
    {
        while (!stop.IsCancellationRequested)
        {
            Socket client;
            try { client = await listener.AcceptAsync(stop.Token); }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { return; }
            _ = Task.Run(() => Serve(client));
        }
    }

    void Serve(Socket client)
    {
        using var _ = client;
        try
        {
            var request = ReadHead(client);
            var parts = request.Split(' ', 3);
            string status, path = "";
            long length = 0;
            if (parts.Length >= 2 && parts[0] == "GET" && files.TryGetValue(parts[1].TrimStart('/'), out var file))
            {
                path = file;
                length = new FileInfo(file).Length;
                status = "200 OK";
            }
            else status = "404 Not Found";
            var head = $"HTTP/1.1 {status}\r\nContent-Length: {length}\r\nETag: \"{length}\"\r\nAccept-Ranges: none\r\nConnection: close\r\n\r\n";
            if (length > 0) client.SendFile(path, Encoding.ASCII.GetBytes(head), null, TransmitFileOptions.UseDefaultWorkerThread);
            else client.Send(Encoding.ASCII.GetBytes(head));
            client.Shutdown(SocketShutdown.Send);
        }
        catch (SocketException) { } // the client went away
    }

    static string ReadHead(Socket client)
    {
        var buffer = new byte[8192];
        int used = 0;
        while (used < buffer.Length)
        {
            int n = client.Receive(buffer, used, buffer.Length - used, SocketFlags.None);
            if (n == 0) break;
            used += n;
            if (Encoding.ASCII.GetString(buffer, 0, used).Contains("\r\n\r\n")) break;
        }
        return Encoding.ASCII.GetString(buffer, 0, used).Split("\r\n")[0];
    }

    public void Dispose()
    {
        stop.Cancel();
        listener.Dispose();
    }
}
