using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace SafeDeploy.Tests.Models;

/// <summary>A generated, deterministic model file served by <see cref="ModelServer"/>, with fault switches and counters.</summary>
public sealed class ServedModel
{
    volatile byte[] content = [];
    int version;

    public ServedModel(int length, int seed) => SetContent(length, seed);

    public byte[] Content => content;
    public string ETag => $"\"v{version}-{content.Length}\"";
    public string Sha256 => Convert.ToHexString(SHA256.HashData(content)).ToLowerInvariant();

    public void SetContent(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        content = bytes;
        Interlocked.Increment(ref version);
    }

    /// <summary>Answer every Range request with the whole file (200).</summary>
    public volatile bool IgnoreRange;
    /// <summary>Serve bytes that differ from <see cref="Content"/> (one flipped byte in the middle).</summary>
    public volatile bool WrongBytes;
    /// <summary>Abort the next <see cref="DropCount"/> responses after this many body bytes.</summary>
    public long DropAfterBytes;
    public int DropCount;
    /// <summary>After a drop, switch to new content (a new ETag): a resume must not splice the two.</summary>
    public (int Length, int Seed)? ChangeAfterDrop;
    /// <summary>Limit the rate (bytes per second) so a kill can land mid-transfer; 0 for full speed.</summary>
    public long ThrottleBytesPerSec;

    public int Requests, FullTransfers, RangeTransfers;
    public long BytesSent;
    public readonly ConcurrentQueue<string> AuthorizationHeaders = new();
    /// <summary>Every request header as "Name: value", to check that a secret never reached this server.</summary>
    public readonly ConcurrentQueue<string> AllHeaders = new();
}

/// <summary>A real Kestrel server on 127.0.0.1 (port chosen by the kernel) serving generated files with Range, If-Range and ETag support.</summary>
public sealed class ModelServer : IDisposable
{
    readonly WebApplication app;
    readonly ConcurrentDictionary<string, ServedModel> files = new();
    readonly ConcurrentDictionary<string, string> redirects = new();

    /// <summary>Every request header of redirected requests as "Name: value".</summary>
    public readonly ConcurrentQueue<string> RedirectHeaders = new();

    /// <summary>Answers <paramref name="path"/> with a 302 to <paramref name="location"/> (absolute or relative).</summary>
    public void Redirect(string path, string location) => redirects[path.TrimStart('/')] = location;

    public ModelServer()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(o => o.Listen(IPAddress.Loopback, 0));
        app = builder.Build();
        app.Run(Handle);
        app.StartAsync().GetAwaiter().GetResult();
        BaseUrl = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First().TrimEnd('/');
    }

    public string BaseUrl { get; }

    public ServedModel Add(string path, int length, int seed = 1)
    {
        var m = new ServedModel(length, seed);
        files[path.TrimStart('/')] = m;
        return m;
    }

    public string Url(string path) => $"{BaseUrl}/{path.TrimStart('/')}";

    async Task Handle(HttpContext ctx)
    {
        var key = ctx.Request.Path.Value!.TrimStart('/');
        if (redirects.TryGetValue(key, out var location))
        {
            foreach (var h in ctx.Request.Headers) RedirectHeaders.Enqueue($"{h.Key}: {h.Value}");
            ctx.Response.StatusCode = 302;
            ctx.Response.Headers.Location = location;
            return;
        }
        if (!files.TryGetValue(key, out var m))
        {
            ctx.Response.StatusCode = 404;
            await ctx.Response.WriteAsync("<html>no such model</html>");
            return;
        }
        Interlocked.Increment(ref m.Requests);
        foreach (var h in ctx.Request.Headers) m.AllHeaders.Enqueue($"{h.Key}: {h.Value}");
        if (ctx.Request.Headers.Authorization.Count > 0) m.AuthorizationHeaders.Enqueue(ctx.Request.Headers.Authorization.ToString());
        var content = m.Content;
        var etag = m.ETag;
        long start = 0;
        var range = ctx.Request.Headers.Range.ToString();
        if (!m.IgnoreRange && range.StartsWith("bytes=", StringComparison.Ordinal) && range.EndsWith('-'))
        {
            var ifRange = ctx.Request.Headers.IfRange.ToString();
            if (ifRange.Length == 0 || ifRange == etag) start = long.Parse(range[6..^1]);
        }
        if (start >= content.Length && start > 0)
        {
            ctx.Response.StatusCode = 416;
            return;
        }
        ctx.Response.Headers.ETag = etag;
        ctx.Response.Headers.AcceptRanges = "bytes";
        ctx.Response.Headers.LastModified = "Mon, 02 Nov 2026 10:00:00 GMT";
        if (start > 0)
        {
            ctx.Response.StatusCode = 206;
            ctx.Response.Headers.ContentRange = $"bytes {start}-{content.Length - 1}/{content.Length}";
            Interlocked.Increment(ref m.RangeTransfers);
        }
        else
        {
            ctx.Response.StatusCode = 200;
            Interlocked.Increment(ref m.FullTransfers);
        }
        ctx.Response.ContentLength = content.Length - start;
        bool drop = m.DropCount > 0 && Interlocked.Decrement(ref m.DropCount) >= 0;
        long sent = 0;
        const int chunk = 64 * 1024;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            for (long off = start; off < content.Length; off += chunk)
            {
                int n = (int)Math.Min(chunk, content.Length - off);
                if (drop && sent + n > m.DropAfterBytes)
                {
                    int last = (int)Math.Max(0, m.DropAfterBytes - sent);
                    if (last > 0) await ctx.Response.Body.WriteAsync(content.AsMemory((int)off, last));
                    await ctx.Response.Body.FlushAsync();
                    if (m.ChangeAfterDrop is { } change) m.SetContent(change.Length, change.Seed);
                    ctx.Abort();
                    return;
                }
                var slice = content.AsMemory((int)off, n);
                long mid = content.Length / 2;
                if (m.WrongBytes && off <= mid && mid < off + n)
                {
                    var copy = slice.ToArray();
                    copy[mid - off] ^= 0xFF;
                    slice = copy;
                }
                await ctx.Response.Body.WriteAsync(slice, ctx.RequestAborted);
                sent += n;
                Interlocked.Add(ref m.BytesSent, n);
                if (m.ThrottleBytesPerSec > 0)
                {
                    var due = TimeSpan.FromSeconds(sent / (double)m.ThrottleBytesPerSec) - clock.Elapsed;
                    if (due > TimeSpan.Zero) await Task.Delay(due, ctx.RequestAborted);
                }
            }
        }
        catch (OperationCanceledException) { }
        catch (IOException) { }
    }

    public void Dispose()
    {
        using (var cts = new CancellationTokenSource(2000)) app.StopAsync(cts.Token).GetAwaiter().GetResult();
        ((IDisposable)app).Dispose();
    }
}
