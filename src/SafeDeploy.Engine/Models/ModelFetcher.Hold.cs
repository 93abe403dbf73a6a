using SafeDeploy.Engine.Locking;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Models;

// Holding a model in use beyond the fetch: a shared flock on the entry's lock file, the same one flock -s takes.
internal sealed partial class ModelFetcher
{
    /// <summary>
    /// Fetches <paramref name="request"/> like <see cref="GetAsync"/> and returns it held: a shared lock on its entry
    /// that keeps eviction and removal away until the hold is disposed. Between the fetch and the hold an evictor may
    /// slip in; the entry is then checked again under the shared lock and fetched anew if it went.
    /// </summary>
    public async Task<ModelHold> HoldAsync(ModelRequest request, IOperationReporter? reporter = null, CancellationToken token = default)
    {
        reporter ??= NullReporter.Instance;
        for (int round = 1; ; round++)
        {
            var file = await GetAsync(request, reporter, token).ConfigureAwait(false);
            var entry = cache.PathsFor(request.Uri, request.Name);
            var held = Lock(entry, new LockOptions { Shared = true, Reporter = reporter, Timeout = request.LockTimeout, CreateMode = cache.PrivateMode },
                ModelCache.DisplayUri(request.Uri), entry.Uri, token);
            if (CheckCached(entry, file.Sha256, verify: false, reporter, token) is not null)
            {
                reporter.Verbose($"Holding '{entry.Uri}' in use (shared lock on '{entry.LockPath}').");
                return new ModelHold(file, held);
            }
            held.Dispose();
            if (round == 3)
                throw new Errors.SafeDeployException("ModelEvicted", Errors.ErrorKind.ResourceBusy, ModelCache.DisplayUri(request.Uri),
                    $"'{entry.Uri}' was removed from the cache three times between its fetch and its hold.", "Stop whatever keeps evicting it (Remove-ModelCache -MaxSizeGB with too small a size?), then run again.");
            reporter.Verbose($"'{entry.Uri}' left the cache before it could be held; fetching it again.");
        }
    }
}
