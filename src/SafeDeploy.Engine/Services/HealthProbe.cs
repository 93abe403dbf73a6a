using System.Diagnostics;
using System.Text.RegularExpressions;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Services;

/// <summary>A health check: an HTTP GET (expected status, optional body pattern) or a command that must exit 0.</summary>
internal sealed record HealthProbeOptions
{
    public Uri? Url { get; init; }
    public int ExpectStatus { get; init; } = 200;
    /// <summary>A regular expression the response body must match.</summary>
    public string? BodyPattern { get; init; }
    public IReadOnlyList<string>? Command { get; init; }
    /// <summary>Keep trying until this long has passed.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(30);
    public TimeSpan Interval { get; init; } = TimeSpan.FromMilliseconds(250);
    /// <summary>How long one attempt may take.</summary>
    public TimeSpan AttemptTimeout { get; init; } = TimeSpan.FromSeconds(5);
}

/// <summary>The outcome of a health probe.</summary>
internal sealed record HealthResult(bool Healthy, int Attempts, TimeSpan Duration, int? LastStatus, string? LastBody, string? LastError)
{
    public string Describe() => Healthy ? $"healthy after {Attempts} attempt(s)" : $"unhealthy after {Attempts} attempt(s) in {Duration.TotalSeconds:0.#} s: {LastError}";
}

/// <summary>Runs a health probe, retried until it succeeds or its timeout passes.</summary>
internal static class HealthProbe
{
    public static async Task<HealthResult> RunAsync(HealthProbeOptions options, IOperationReporter? reporter = null, CancellationToken cancellationToken = default)
    {
        if (options.Url is null == options.Command is null)
            throw new SafeDeployException("InvalidHealthProbe", ErrorKind.InvalidArgument, options.Url?.ToString() ?? "health",
                "A health probe needs exactly one of a URL or a command.", "Give 'url' or 'command'.");
        reporter ??= NullReporter.Instance;
        var clock = Stopwatch.StartNew();
        int attempts = 0;
        int? status = null;
        string? body = null, error = null;
        using var http = new HttpClient(new SocketsHttpHandler { UseProxy = false, AllowAutoRedirect = false }) { Timeout = options.AttemptTimeout };
        Regex? pattern = options.BodyPattern is null ? null : new Regex(options.BodyPattern, RegexOptions.None, TimeSpan.FromSeconds(1));
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            attempts++;
            if (options.Url is not null)
            {
                try
                {
                    using var response = await http.GetAsync(options.Url, cancellationToken).ConfigureAwait(false);
                    status = (int)response.StatusCode;
                    body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
                    error = status != options.ExpectStatus ? $"GET {options.Url} returned {status}, expected {options.ExpectStatus}: {Short(body)}"
                        : pattern is not null && !pattern.IsMatch(body) ? $"GET {options.Url} returned {status} but the body does not match /{options.BodyPattern}/: {Short(body)}"
                        : null;
                }
                catch (HttpRequestException e) { error = $"GET {options.Url} failed: {e.Message}"; status = null; body = null; }
                catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested) { error = $"GET {options.Url} took longer than {options.AttemptTimeout.TotalSeconds:0.#} s"; }
            }
            else
            {
                var argv = options.Command!;
                var r = await new ExternalCommand { Program = argv[0], Arguments = argv.Skip(1).ToArray(), Timeout = options.AttemptTimeout }.RunAsync(cancellationToken).ConfigureAwait(false);
                body = r.StandardOutput;
                error = r.Succeeded ? null : $"'{ExternalCommand.Format(argv[0], argv.Skip(1))}' {(r.TimedOut ? "timed out" : $"exited with {r.ExitCode}")}: {Short(r.StandardError + r.StandardOutput)}";
            }
            if (error is null) return new HealthResult(true, attempts, clock.Elapsed, status, body, null);
            if (clock.Elapsed + options.Interval > options.Timeout) return new HealthResult(false, attempts, clock.Elapsed, status, body, error);
            reporter.Verbose($"Health attempt {attempts}: {error}; retrying.");
            await Task.Delay(options.Interval, cancellationToken).ConfigureAwait(false);
        }
    }

    static string Short(string? text)
    {
        var t = (text ?? "").Trim();
        return t.Length > 200 ? t[..200] + "..." : t;
    }
}
