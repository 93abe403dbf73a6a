using System.Globalization;
using System.Security.Cryptography;
using SafeDeploy.Engine.Actions;
using SafeDeploy.Engine.Locking;
using SafeDeploy.Engine.StateDirectories;

namespace SafeDeploy.Engine.Deployment;

/// <summary>
/// Where deployments keep their journals, logs and backups: &lt;state&gt;/deployments/&lt;name&gt;/&lt;run id&gt;.journal and
/// &lt;run id&gt;/ (0700; logs and journals 0600). Runs with a -Root keep their own history and generation numbers, apart
/// from the real runs and from other roots (each entry records its root). Old runs are pruned by <see cref="Retention"/>.
/// </summary>
internal sealed class DeploymentStore(StateDirectory state)
{
    public StateDirectory State { get; } = state;

    public string DeploymentDirectory(string name) => Path.Combine(State.StateDir, "deployments", StateDirectoryManager.ValidateName(name, "deployment name"));
    public string JournalPath(string name, string runId) => Path.Combine(DeploymentDirectory(name), runId + ".journal");
    public string RunDirectory(string name, string runId) => Path.Combine(DeploymentDirectory(name), runId);

    /// <summary>A sortable, unique run id: 20261123T091500123Z-a1b2.</summary>
    public static string NewRunId() =>
        DateTimeOffset.UtcNow.ToString("yyyyMMdd'T'HHmmssfff'Z'", CultureInfo.InvariantCulture) + "-" + Convert.ToHexString(RandomNumberGenerator.GetBytes(2)).ToLowerInvariant();

    /// <summary>Journals of one deployment (or all), oldest first.</summary>
    public IEnumerable<string> Journals(string? name = null)
    {
        var root = Path.Combine(State.StateDir, "deployments");
        if (!Directory.Exists(root)) return [];
        var dirs = name is null ? Directory.GetDirectories(root) : [DeploymentDirectory(name)];
        return dirs.Where(Directory.Exists).SelectMany(d => Directory.GetFiles(d, "*.journal"))
            .OrderBy(f => Path.GetFileName(f), StringComparer.Ordinal);
    }

    /// <summary>Summarizes one journal.</summary>
    public DeployHistoryEntry Summarize(string journalPath) => Summarize(JournalView.Load(journalPath));

    DeployHistoryEntry Summarize(JournalView view)
    {
        DeployStatus status;
        if (view.EndStatus is { } ended) status = ended;
        else
        {
            var lockPath = State.LockPath(view.LockName);
            bool running = File.Exists(lockPath) && LockInspector.Inspect(lockPath) is { IsHeld: true } h && h.Pids.Contains(view.Pid);
            status = running ? DeployStatus.Running : DeployStatus.Incomplete;
        }
        return new DeployHistoryEntry
        {
            Name = view.Name,
            Id = view.Id,
            Status = status,
            // A run that was rolled back (or failed) never stood: it has no generation of its own.
            Generation = status is DeployStatus.RolledBack or DeployStatus.Failed or DeployStatus.RollbackFailed ? 0 : view.Generation,
            Started = view.Started ?? File.GetCreationTimeUtc(view.Path),
            Ended = view.Ended,
            Pid = view.Pid,
            Phases = view.PhasesEnded,
            ManifestFile = view.ManifestFile,
            Root = view.Root,
            JournalPath = view.Path,
            Error = view.EndError,
            RollbackAt = view.RollbackAt,
            Confirmed = view.Confirmed,
        };
    }

    /// <summary>The file whose existence confirms a try-mode run (written by Confirm-SafeDeploy, watched by the watchdog).</summary>
    public string ConfirmMarker(string name, string runId) => Path.Combine(RunDirectory(name, runId), "confirmed");

    /// <summary>Every run of one deployment (or all), oldest first.</summary>
    public IReadOnlyList<DeployHistoryEntry> History(string? name = null) => Journals(name).Select(Summarize).ToList();

    /// <summary>
    /// The retention policy for old runs: every run's journal (its summary in Get-SafeDeployHistory) and logs are kept;
    /// the backups — the bulk, copies of every file a run replaced — are kept only for the newest
    /// <paramref name="keepGenerations"/> standing (Succeeded) runs of each root, which Undo-SafeDeploy can take back one
    /// by one. Runs rolled back, failed or undone need theirs no more. Runs not finished (Running, Incomplete) are never
    /// touched. Call under the deployment lock. Returns the run ids whose backups were removed.
    /// </summary>
    public IReadOnlyList<string> Prune(string name, int keepGenerations = DefaultKeepGenerations)
    {
        var history = History(name);
        var keep = history.Where(h => h.Status == DeployStatus.Succeeded).GroupBy(h => h.Root)
            .SelectMany(g => g.OrderByDescending(h => h.Generation).Take(keepGenerations)).Select(h => h.Id).ToHashSet();
        var pruned = new List<string>();
        foreach (var h in history)
        {
            if (keep.Contains(h.Id) || h.Status is DeployStatus.Running or DeployStatus.Incomplete) continue;
            var backups = Path.Combine(RunDirectory(name, h.Id), "backups");
            if (!Directory.Exists(backups)) continue;
            Directory.Delete(backups, recursive: true);
            pruned.Add(h.Id);
        }
        return pruned;
    }

    /// <summary>How many standing generations keep their backups (see <see cref="Prune"/>).</summary>
    public const int DefaultKeepGenerations = 5;

    /// <summary>The runs of one deployment under one root (<see cref="DeploymentRoot.Real"/>: the real runs), oldest first.</summary>
    public IReadOnlyList<DeployHistoryEntry> History(string name, DeploymentRoot root) => History(name).Where(h => h.Root == root.Path).ToList();
}
