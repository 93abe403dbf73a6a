using System.Text.Json.Nodes;
using SafeDeploy.Engine.Deployment;
using SafeDeploy.Engine.Fleet;
using SafeDeploy.Engine.StateDirectories;
using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.Deployment;

/// <summary>Statuses are enums in memory and names on disk: files written when they were strings still read.</summary>
public class StatusNameTests
{
    static StateDirectory State(Sandbox box) => StateDirectoryManager.Initialize(StateDirectoryManager.DefaultName, basePath: box.State);

    /// <summary>A run's journal as the string-status engine wrote it (Journal.Write: seq, type, time, then the fields).</summary>
    static void WriteOldJournal(DeploymentStore store, string id, int generation, string? endStatus, string? phaseStatus = "Succeeded")
    {
        var path = store.JournalPath("app", id);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var lines = new List<string>
        {
            $$"""{"seq":1,"type":"start","time":"2026-11-02T10:00:00.0000000+00:00","id":"{{id}}","name":"app","lock":"app","generation":{{generation}},"previousGeneration":{{generation - 1}},"pid":999999,"host":"old-host","bootId":"b","manifestFile":"/m/app.yaml","manifestText":"name: app","root":null,"variables":{},"phases":["mark"]}""",
            """{"seq":2,"type":"phase-start","time":"2026-11-02T10:00:01.0000000+00:00","phase":"mark","pid":999999}""",
        };
        if (phaseStatus is not null)
            lines.Add($$"""{"seq":3,"type":"phase-end","time":"2026-11-02T10:00:02.0000000+00:00","phase":"mark","status":"{{phaseStatus}}","error":null}""");
        if (endStatus is not null)
            lines.Add($$"""{"seq":4,"type":"end","time":"2026-11-02T10:00:03.0000000+00:00","status":"{{endStatus}}","generation":{{generation}},"error":null}""");
        File.WriteAllText(path, string.Join("\n", lines) + "\n");
    }

    [Fact]
    public void History_OfJournalsWrittenWithStringStatuses_ReadsEachAsItsEnum_AndAnUnknownNameAsUnknown()
    {
        using var box = new Sandbox();
        var store = new DeploymentStore(State(box));
        WriteOldJournal(store, "20261102T100000000Z-0001", 1, "Succeeded");
        WriteOldJournal(store, "20261102T100000000Z-0002", 2, "RolledBack", "RolledBack");
        WriteOldJournal(store, "20261102T100000000Z-0003", 2, "RollbackFailed", "RollbackFailed");
        WriteOldJournal(store, "20261102T100000000Z-0004", 2, "Undone");
        WriteOldJournal(store, "20261102T100000000Z-0005", 2, "Failed", "Failed");
        WriteOldJournal(store, "20261102T100000000Z-0006", 2, "succeeded");      // case-sensitive, as string comparisons were
        WriteOldJournal(store, "20261102T100000000Z-0007", 2, "3");              // a number is not a name
        WriteOldJournal(store, "20261102T100000000Z-0008", 2, endStatus: null);  // its process (pid 999999) died

        var history = store.History("app");
        Assert.Equal(
            [DeployStatus.Succeeded, DeployStatus.RolledBack, DeployStatus.RollbackFailed, DeployStatus.Undone, DeployStatus.Failed,
             DeployStatus.Unknown, DeployStatus.Unknown, DeployStatus.Incomplete],
            history.Select(h => h.Status));
        Assert.Equal([1, 0, 0, 2, 0, 2, 2, 2], history.Select(h => h.Generation)); // runs that never stood have none
        Assert.Equal(1, DeploymentEngine.CurrentGeneration(history));
    }

    [Fact]
    public void ARun_WritesItsStatusesAsNames_InItsJournal()
    {
        using var box = new Sandbox();
        var manifest = box.Write("app.yaml", "name: app\nphases:\n  - name: mark\n    run: { command: 'true', undo: 'true' }\n  - name: boom\n    dependsOn: mark\n    run: exit 3\n");
        var engine = new DeploymentEngine(State(box));
        var r = engine.Invoke(new DeployOptions { ManifestPath = manifest, Root = box.Root });
        Assert.Equal(DeployStatus.RolledBack, r.Status);
        Assert.Equal([PhaseStatus.RolledBack, PhaseStatus.Failed], r.Phases.Select(p => p.Status));

        var records = Journal.Read(r.JournalPath!);
        Assert.Equal(["Succeeded", "Failed"], records.Where(x => (string?)x["type"] == "phase-end").Select(x => x["status"]!.GetValue<string>()));
        Assert.Equal("RolledBack", records.Single(x => (string?)x["type"] == "end")["status"]!.GetValue<string>());
        Assert.Equal(DeployStatus.RolledBack, engine.Store.History("app").Single().Status);
    }

    [Fact]
    public void RolloutHistory_OfAJournalWrittenWithStringStatuses_ReadsItsEnums_AndANewRolloutWritesNames()
    {
        using var box = new Sandbox();
        var state = State(box);
        var dir = Directory.CreateDirectory(Path.Combine(RolloutJournal.Folder(state), "0123456789abcdef0123")).FullName;
        // As the controller wrote it: start, a host-start and host record per host, a rollback record, the end.
        File.WriteAllText(Path.Combine(dir, "20261102T100000000Z-00aa.jsonl"), string.Join("\n",
            """{"seq":1,"type":"start","time":"2026-11-02T10:00:00.0000000+00:00","name":"app","manifest":"/m/app.yaml","inventory":"/m/fleet.yaml","hosts":["h1","h2","h3","h4"],"id":"20261102T100000000Z-00aa"}""",
            """{"seq":2,"type":"host","time":"2026-11-02T10:00:01.0000000+00:00","host":"h1","status":"Succeeded","batch":1,"generation":3,"runId":"r1","error":null,"durationMs":1200,"rollbackAt":null}""",
            """{"seq":3,"type":"host","time":"2026-11-02T10:00:02.0000000+00:00","host":"h2","status":"Failed","batch":2,"generation":2,"runId":"r2","error":"boom","durationMs":900,"rollbackAt":null}""",
            """{"seq":4,"type":"host","time":"2026-11-02T10:00:02.5000000+00:00","host":"h3","status":"Unreachable","batch":2,"generation":0,"runId":null,"error":"ssh: no route","durationMs":50,"rollbackAt":null}""",
            """{"seq":5,"type":"rollback","time":"2026-11-02T10:00:03.0000000+00:00","host":"h1","status":"RolledBack","batch":1,"generation":2,"runId":"r1","error":null,"durationMs":700,"rollbackAt":null}""",
            """{"seq":6,"type":"end","time":"2026-11-02T10:00:04.0000000+00:00","status":"RolledBack"}""") + "\n");

        var entry = Assert.Single(RolloutJournal.History(state));
        Assert.Equal(RolloutStatus.RolledBack, entry.Status);
        Assert.Equal([("h1", HostStatus.RolledBack), ("h2", HostStatus.Failed), ("h3", HostStatus.Unreachable), ("h4", HostStatus.NotStarted)],
            entry.Hosts.Select(h => (h.HostName, h.Status)));

        using (var journal = RolloutJournal.OpenOrCreate(state, "fedcba9876543210fedc", id => new JsonObject { ["name"] = "app", ["hosts"] = new JsonArray("h1") }))
        {
            journal.HostResult("host", new HostDeployResult { HostName = "h1", Status = HostStatus.RollbackFailed, Name = "app", Rollout = journal.Id });
            journal.Write("end", new JsonObject { ["status"] = StatusName.Of(RolloutStatus.Stopped) });
        }
        var written = Directory.GetFiles(Path.Combine(RolloutJournal.Folder(state), "fedcba9876543210fedc"), "*.jsonl").Single();
        var records = Journal.Read(written);
        Assert.Equal("RollbackFailed", records.Single(x => (string?)x["type"] == "host")["status"]!.GetValue<string>());
        var again = RolloutJournal.History(state).Single(e => e.JournalPath == written);
        Assert.Equal((RolloutStatus.Stopped, HostStatus.RollbackFailed), (again.Status, again.Hosts.Single().Status));
    }

    [Fact]
    public void ResultLine_WritesTheName_AndALineOfAnEarlierVersionParses()
    {
        var line = RemoteScripts.ResultLine(RemoteOutcome.StatusOf(DeployStatus.Undone), 4, "r1", null, null, TimeSpan.FromMilliseconds(20), "engine");
        Assert.StartsWith("SAFEDEPLOY-RESULT status=Undone generation=4 id=r1 ", line);
        Assert.Equal(RemoteStatus.Undone, RemoteScripts.Parse(line)!.Status);

        // As the PowerShell `Result` function prints it, with string and with enum statuses alike.
        Assert.Equal((RemoteStatus.RolledBack, 2), Pair(RemoteScripts.Parse("noise\nSAFEDEPLOY-RESULT status=RolledBack generation=2 id=r2 rollbackAt= ms=15 via=ssh error=\n")!));
        Assert.Equal(RemoteStatus.NotDeployed, RemoteScripts.Parse("SAFEDEPLOY-RESULT status=NotDeployed generation=0 id= rollbackAt= ms=0 via=ssh error=")!.Status);
        Assert.Equal(RemoteStatus.Error, RemoteScripts.Parse("SAFEDEPLOY-RESULT status= generation=0 id= rollbackAt= ms=0 via=ssh error=")!.Status);
        Assert.Equal(RemoteStatus.Unknown, RemoteScripts.Parse("SAFEDEPLOY-RESULT status=Exploded generation=0 id= rollbackAt= ms=0 via=ssh error=")!.Status);
        static (RemoteStatus, int) Pair(RemoteOutcome o) => (o.Status, o.Generation);
    }
}
