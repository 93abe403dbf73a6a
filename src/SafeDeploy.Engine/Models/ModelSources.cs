using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Models;

/// <summary>An opened source: the body, the offset it starts at and what validates a later resume.</summary>
internal sealed record SourceResponse(Stream Body, long Offset, long? TotalLength, string? Validator, string? ETag, string? LastModified) : IDisposable
{
    public void Dispose() => Body.Dispose();
}

/// <summary>A failure worth another attempt (a dropped connection, a 503); anything else is final.</summary>
internal sealed class TransientFetchException(string message, Exception? inner = null, bool restartFromZero = false) : Exception(message, inner)
{
    /// <summary>The kept bytes cannot be resumed (a mismatched range): the next attempt starts from byte 0.</summary>
    public bool RestartFromZero { get; } = restartFromZero;
}

/// <summary>Where model bytes come from: an HTTP server or a file (an NFS share).</summary>
internal interface IModelSource
{
    /// <summary>Opens the source at <paramref name="offset"/> when <paramref name="validator"/> still matches; otherwise from 0.</summary>
    Task<SourceResponse> OpenAsync(long offset, string? validator, CancellationToken token);
}

/// <summary>HTTP(S): a Range request guarded by If-Range; only a 200 or a 206 whose Content-Range matches is used.</summary>
internal sealed class HttpModelSource(HttpClient client, string uri, IReadOnlyDictionary<string, string> headers, string target) : IModelSource
{
    const int MaxRedirects = 10;

    public async Task<SourceResponse> OpenAsync(long offset, string? validator, CancellationToken token)
    {
        var response = await SendFollowingRedirectsAsync(offset, validator, token).ConfigureAwait(false);
        try
        {
            var display = ModelCache.DisplayUri(uri);
            int code = (int)response.StatusCode;
            var etag = response.Headers.ETag;
            string? etagText = etag?.ToString();
            string? lastModified = response.Content.Headers.LastModified?.ToString("R", CultureInfo.InvariantCulture);
            // If-Range needs a strong validator: a weak ETag is no promise that byte ranges match.
            string? newValidator = etag is { IsWeak: false } ? etagText : lastModified;
            if (code == 200)
            {
                var body = await response.Content.ReadAsStreamAsync(token).ConfigureAwait(false);
                return new SourceResponse(new ResponseStream(body, response), 0, response.Content.Headers.ContentLength, newValidator, etagText, lastModified);
            }
            if (code == 206)
            {
                var range = response.Content.Headers.ContentRange;
                if (range is null || range.From != offset || offset == 0)
                    throw new TransientFetchException($"the server answered a request for bytes {offset}- with {range?.ToString() ?? "no Content-Range"}; starting again from 0", null, true);
                var body = await response.Content.ReadAsStreamAsync(token).ConfigureAwait(false);
                return new SourceResponse(new ResponseStream(body, response), offset, range.Length, validator, etagText, lastModified);
            }
            if (code == 416)
                throw new TransientFetchException("the server refused the resume range (416); starting again from 0", null, true);
            if (code is 404 or 410)
                throw new SafeDeployException("ModelNotFound", ErrorKind.ObjectNotFound, target,
                    $"The server has no model at '{display}' (HTTP {code}). Nothing was written to the cache.", "Check the URI.");
            if (code is 401 or 403)
                throw new SafeDeployException("ModelAccessDenied", ErrorKind.PermissionDenied, target,
                    $"The server refused access to '{display}' (HTTP {code}). Nothing was written to the cache.",
                    "Pass the credentials it needs with -Headers @{ Authorization = 'Bearer ...' }.");
            if (code is 408 or 429 || code >= 500)
                throw new TransientFetchException($"HTTP {code} {response.ReasonPhrase}");
            throw new SafeDeployException("DownloadFailed", ErrorKind.InvalidOperation, target,
                $"The server answered '{display}' with HTTP {code} {response.ReasonPhrase}. Nothing was written to the cache.", "Check the URI.");
        }
        catch
        {
            response.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Sends the GET and follows redirects itself: the caller's headers (credentials) go only to the origin (scheme, host,
    /// port) they were given for, as curl does without --location-trusted, and once dropped stay dropped; a redirect
    /// from https to http is refused. Range and If-Range are this fetcher's own and follow the redirect.
    /// </summary>
    async Task<HttpResponseMessage> SendFollowingRedirectsAsync(long offset, string? validator, CancellationToken token)
    {
        var origin = new Uri(uri);
        var current = origin;
        bool sendHeaders = true;
        for (int hop = 0; ; hop++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, current);
            if (sendHeaders) foreach (var (k, v) in headers) request.Headers.TryAddWithoutValidation(k, v);
            // Without a validator a range could splice two versions of the file: ask for the whole file instead.
            if (offset > 0 && validator is not null)
            {
                request.Headers.Range = new RangeHeaderValue(offset, null);
                request.Headers.TryAddWithoutValidation("If-Range", validator);
            }
            HttpResponseMessage response;
            try { response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, token).ConfigureAwait(false); }
            catch (HttpRequestException e) { throw new TransientFetchException(e.Message, e); }
            catch (OperationCanceledException e) when (!token.IsCancellationRequested) { throw new TransientFetchException("the request timed out", e); }
            if ((int)response.StatusCode is not (301 or 302 or 303 or 307 or 308) || response.Headers.Location is not { } location) return response;
            response.Dispose();
            var next = location.IsAbsoluteUri ? location : new Uri(current, location);
            string from = ModelUris.Redact(current.AbsoluteUri), to = ModelUris.Redact(next.AbsoluteUri);
            if (hop >= MaxRedirects || next.Scheme is not ("http" or "https") || current.Scheme == "https" && next.Scheme == "http")
                throw new SafeDeployException("DownloadFailed", ErrorKind.InvalidOperation, target,
                    hop >= MaxRedirects ? $"'{ModelUris.Redact(uri)}' redirected more than {MaxRedirects} times. Nothing was written to the cache."
                        : $"'{from}' redirected to '{to}', which is refused (only http and https, never from https down to http). Nothing was written to the cache.",
                    "Fetch from the final location directly.");
            if (sendHeaders && !ModelUris.SameOrigin(origin, next)) sendHeaders = false;
            current = next;
        }
    }

    /// <summary>The body stream, which also disposes the response that owns it.</summary>
    sealed class ResponseStream(Stream inner, HttpResponseMessage response) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => inner.ReadAsync(buffer, cancellationToken);
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        protected override void Dispose(bool disposing)
        {
            if (disposing) { inner.Dispose(); response.Dispose(); }
            base.Dispose(disposing);
        }
    }
}

/// <summary>A local or network file: copied through the same partial, hash and rename as a download.</summary>
internal sealed class FileModelSource(string path, string target) : IModelSource
{
    public Task<SourceResponse> OpenAsync(long offset, string? validator, CancellationToken token)
    {
        var st = Native.Stat(path);
        if (st is null || st.IsDirectory)
            throw new SafeDeployException("ModelNotFound", ErrorKind.ObjectNotFound, target,
                $"There is no model file '{path}'. Nothing was written to the cache.", "Check the path (is the share mounted?).");
        // Size and modification time stand in for an ETag: a file rewritten since the partial was made is copied afresh.
        string current = $"{st.Size}:{st.LastWrite.ToUnixTimeMilliseconds()}";
        Microsoft.Win32.SafeHandles.SafeFileHandle fd;
        try { fd = Native.Open(path, Native.O_RDONLY | Native.O_NOCTTY); }
        catch (IOException e) when (e.HResult is Native.EACCES or Native.EPERM)
        {
            throw new SafeDeployException("ModelAccessDenied", ErrorKind.PermissionDenied, target,
                $"Cannot read the model file '{path}': permission denied.", "Run as a user who may read it.", e);
        }
        var stream = new FileStream(fd, FileAccess.Read, 0);
        long start = offset > 0 && validator == current ? offset : 0;
        if (start > 0) stream.Seek(start, SeekOrigin.Begin);
        return Task.FromResult(new SourceResponse(stream, start, st.Size, current, null, null));
    }
}
