using System.Management.Automation;
using SafeDeploy.Engine.Locking;
using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.Deployment;

public class DeploymentTests
{
    static readonly byte[] LibV0 = [0x7F, 0x45, 0x4C, 0x46, 0x00, 0xFF, 0x10, 0x0A, 0x00];
    static readonly byte[] LibV1 = [0x7F, 0x45, 0x4C, 0x46, 0x01, 0xFE, 0x20];

    /// <summary>An existing library and config in the sandbox, and sources beside the manifest.</summary>
    static void Arrange(Sandbox box)
    {
        var lib = box.InRoot("/opt/app/lib.so");
        Directory.CreateDirectory(Path.GetDirectoryName(lib)!);
        File.WriteAllBytes(lib, LibV0);
        File.SetUnixFileMode(lib, (UnixFileMode)Convert.ToInt32("644", 8));
        var conf = box.WriteInRoot("/etc/app.conf", "a=1\nkey=old\n");
        File.SetUnixFileMode(conf, (UnixFileMode)Convert.ToInt32("640", 8));
        Directory.CreateDirectory(box.InRoot("/var"));
        File.WriteAllBytes(box["lib-v1.so"], LibV1);
        box.Write("plugin.so", "plugin bytes\n");
    }

    const string FullManifest = """
        name: full
        variables:
          out: OUT
        phases:
          - name: precheck
            checks:
              - commandExists: sh
              - diskFree: { path: /opt, minimum: 1MB }
          - name: lib
            dependsOn: precheck
            install:
              - { source: lib-v1.so, target: /opt/app/lib.so, mode: "0755" }
              - { source: plugin.so, target: /opt/app/plugins/p.so }
          - name: conf
            dependsOn: precheck
            editFile: { path: /etc/app.conf, ensureLine: "key=new", key: "key=" }
          - name: json
            dependsOn: precheck
            editFile: { path: /etc/new.json, mergeJson: { gpu: { count: 2 } } }
          - name: marker
            dependsOn: [lib, conf]
            run:
              command: echo ran > "$SAFEDEPLOY_ROOT/var/marker"
              undo: rm -f "$SAFEDEPLOY_ROOT/var/marker"; echo run-undo >> "${out}/undo.log"
          - name: ps
            dependsOn: marker
            script:
              run: "[IO.File]::AppendAllText('${out}/script.log', 'do;'); 'script output'"
              undo: "[IO.File]::AppendAllText('${out}/script.log', 'undo;')"
        """;

    static string FailingManifest(Sandbox box) => FullManifest.Replace("OUT", box.Path) + """

          - name: boom
            dependsOn: [ps, json]
            run: echo failing on purpose >&2; exit 7
        """;

    [Fact]
    public void Rollback_RestoresEveryInstalledAndEditedFileByteForByte_AndRunsTheUndos()
    {
        using var box = new Sandbox();
        Arrange(box);
        var before = box.Snapshot();
        var manifest = box.Write("deploy.yaml", FailingManifest(box));
        using var ps = new PsSession();
        var r = ps.Run("Invoke-SafeDeploy -Manifest $m -Root $root -StateDirectory $state", ("m", manifest), ("root", box.Root), ("state", box.State));

        var result = Assert.Single(r.Output);
        Assert.Equal("RolledBack", result.Status());
        Assert.Equal(0, result.Properties["Generation"].Value);
        var err = Assert.Single(r.AllErrors);
        Assert.StartsWith("DeploymentRolledBack", err.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.InvalidResult, err.CategoryInfo.Category);
        Assert.Equal("full", err.TargetObject);
        Assert.Contains("exited with code 7", err.Exception.Message);

        Assert.Equal(Sandbox.Describe(before), Sandbox.Describe(box.Snapshot()));
        Assert.Equal("run-undo\n", File.ReadAllText(box["undo.log"]));
        Assert.Equal("do;undo;", File.ReadAllText(box["script.log"]));
        var phases = ((System.Collections.IEnumerable)result.Properties["Phases"].Value).Cast<object>().Select(PSObject.AsPSObject)
            .ToDictionary(p => (string)p.Properties["Name"].Value, p => p);
        Assert.Equal("Failed", phases["boom"].Status());
        Assert.Contains("failing on purpose", (string)phases["boom"].Properties["Output"].Value);
        foreach (var name in new[] { "lib", "conf", "json", "marker", "ps" })
            Assert.Equal("RolledBack", phases[name].Status());

        // -ErrorAction Stop makes it terminating, and the host's exit code tells a scheduled task.
        var stop = ps.Run("Invoke-SafeDeploy -Manifest $m -Root $root -StateDirectory $state -ErrorAction Stop", ("m", manifest), ("root", box.Root), ("state", box.State));
        Assert.NotNull(stop.Terminating);
        var host = HostProcess.Run($"Invoke-SafeDeploy -Manifest '{manifest}' -Root '{box.Root}' -StateDirectory '{box.State}'");
        Assert.True(host.ExitCode == 1, host.ToString());
        Assert.Contains("DeploymentRolledBack", host.StdErr);
        Assert.Equal(Sandbox.Describe(before), Sandbox.Describe(box.Snapshot()));
    }

    [Fact]
    public void Deploy_ThenUndo_BringsBackThePreviousGeneration_AndHistoryShowsIt()
    {
        using var box = new Sandbox();
        Arrange(box);
        var initial = box.Snapshot();
        var manifest = box.Write("deploy.yaml", FullManifest.Replace("OUT", box.Path));
        using var ps = new PsSession();
        var vars = new (string, object?)[] { ("m", manifest), ("root", box.Root), ("state", box.State) };
        var first = ps.Run("Invoke-SafeDeploy $m -Root $root -StateDirectory $state -Verbose", vars);
        Assert.True(first.AllErrors.Count() == 0, first.Describe());
        // Each phase's output as verbose lines; one progress bar for the deployment with a child bar per phase.
        Assert.Contains(first.Verbose, v => v.StartsWith("[marker] $ /bin/sh -c"));
        Assert.Contains(first.Verbose, v => v == "[ps] script output");
        var parent = first.Progress.First(p => p.Activity == "Deploying full").ActivityId;
        Assert.Contains(first.Progress, p => p.ParentActivityId == parent && p.Activity == "Phase lib");
        Assert.Equal("Succeeded", first.Status(0));
        Assert.Equal(1, first.Prop(0, "Generation"));
        Assert.Equal(LibV1, File.ReadAllBytes(box.InRoot("/opt/app/lib.so")));
        Assert.Equal("a=1\nkey=new\n", File.ReadAllText(box.InRoot("/etc/app.conf")));
        Assert.Equal(2, (int)System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(box.InRoot("/etc/new.json")))!["gpu"]!["count"]!);
        Assert.Equal("ran\n", File.ReadAllText(box.InRoot("/var/marker")));
        var afterFirst = box.Snapshot();

        File.WriteAllBytes(box["lib-v1.so"], [1, 2, 3]);
        var second = ps.Run("Invoke-SafeDeploy $m -Root $root -StateDirectory $state", vars);
        Assert.Equal(2, second.Prop(0, "Generation"));
        Assert.Equal([1, 2, 3], File.ReadAllBytes(box.InRoot("/opt/app/lib.so")));

        var undo = ps.Run("Undo-SafeDeploy -Name full -StateDirectory $state", vars);
        Assert.True(undo.AllErrors.Count() == 0, undo.Describe());
        Assert.Equal("Undone", undo.Status(0));
        Assert.Equal(1, undo.Prop(0, "Generation"));
        // Every file back as generation 1 left it; the marker's undo command (rm) removed what the run re-created.
        var now = box.Snapshot();
        afterFirst.Remove("var/marker");
        Assert.Equal(Sandbox.Describe(afterFirst), Sandbox.Describe(now));

        var undo2 = ps.Run("Undo-SafeDeploy full -StateDirectory $state", vars);
        Assert.Equal("Undone", undo2.Status(0));
        Assert.Equal(Sandbox.Describe(initial), Sandbox.Describe(box.Snapshot()));

        var nothing = ps.Run("Undo-SafeDeploy full -StateDirectory $state", vars);
        var err = Assert.Single(nothing.AllErrors);
        Assert.StartsWith("NothingToUndo", err.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.ObjectNotFound, err.CategoryInfo.Category);
        Assert.Equal("full", err.TargetObject);

        var history = ps.Run("Get-SafeDeployHistory -Name full -StateDirectory $state", vars);
        Assert.Equal(["Undone", "Undone"], history.Output.Select(o => o.Status()));
        Assert.Equal([1, 2], history.Output.Select(o => (int)o.Properties["Generation"].Value));

        var unknown = ps.Run("Get-SafeDeployHistory -Name ghost -StateDirectory $state", vars);
        Assert.StartsWith("DeploymentNotFound", Assert.Single(unknown.AllErrors).FullyQualifiedErrorId);
    }

    [Fact]
    public void InvalidManifest_StopsBeforeAnythingRuns_WithEveryErrorInOneRecord()
    {
        using var box = new Sandbox();
        Arrange(box);
        var before = box.Snapshot();
        var manifest = box.Write("deploy.yaml", """
            name: bad
            phases:
              - name: a
                install: { source: lib-v1.so, target: /opt/app/lib.so }
              - name: b
                dependsOn: nowhere
                run: echo ${undefined}
            """);
        using var ps = new PsSession();
        var r = ps.Run("Invoke-SafeDeploy $m -Root $root -StateDirectory $state", ("m", manifest), ("root", box.Root), ("state", box.State));
        Assert.Empty(r.Output);
        var err = Assert.Single(r.AllErrors);
        Assert.StartsWith("ManifestInvalid", err.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.InvalidData, err.CategoryInfo.Category);
        Assert.Equal(manifest, err.TargetObject);
        Assert.Contains($"{manifest}:6:16: error UnknownDependency", err.Exception.Message);
        Assert.Contains($"{manifest}:7:15: error UndefinedVariable", err.Exception.Message);
        Assert.Equal(Sandbox.Describe(before), Sandbox.Describe(box.Snapshot()));
        Assert.False(Directory.Exists(Path.Combine(box.State, "state", "deployments")));
    }

    [Fact]
    public void WhatIf_PrintsThePlanInWaves_AndChangesNothing()
    {
        using var box = new Sandbox();
        Arrange(box);
        var before = box.Snapshot();
        var manifest = box.Write("deploy.yaml", FullManifest.Replace("OUT", box.Path));
        var host = HostProcess.Run($"Invoke-SafeDeploy '{manifest}' -Root '{box.Root}' -StateDirectory '{box.State}' -WhatIf");
        Assert.True(host.ExitCode == 0, host.ToString());
        Assert.Contains("wave 1:", host.StdOut);
        Assert.Contains("wave 4:", host.StdOut);
        Assert.Contains($"writes: {box.InRoot("/opt/app/lib.so")}", host.StdOut);
        Assert.Contains("edit /etc/app.conf: ensure line 'key=new'", host.StdOut);
        Assert.Equal(Sandbox.Describe(before), Sandbox.Describe(box.Snapshot()));
        Assert.False(Directory.Exists(Path.Combine(box.State, "state", "deployments")));
    }

    [Fact]
    public void CtrlC_IsAFailure_EverythingThatRanIsRolledBack()
    {
        using var box = new Sandbox();
        Arrange(box);
        var before = box.Snapshot();
        var manifest = box.Write("deploy.yaml", """
            name: interrupted
            phases:
              - name: lib
                install: { source: lib-v1.so, target: /opt/app/lib.so }
              - name: slow
                dependsOn: lib
                run: echo started > "$SAFEDEPLOY_ROOT/../slow-started"; sleep 60
            """);
        var result = StopWhenStarted(manifest, box);
        Assert.NotNull(result.Terminating);
        Assert.IsType<PipelineStoppedException>(result.Terminating);
        Assert.Equal(Sandbox.Describe(before), Sandbox.Describe(box.Snapshot()));
        using var ps = new PsSession();
        var history = ps.Run("Get-SafeDeployHistory interrupted -StateDirectory $state", ("state", box.State));
        Assert.Equal("RolledBack", history.Status(0));
    }

    /// <summary>Starts the deployment and stops it (Ctrl+C) once its slow phase is running.</summary>
    static PsResult StopWhenStarted(string manifest, Sandbox box)
    {
        var marker = Path.Combine(box.Path, "slow-started");
        var iss = System.Management.Automation.Runspaces.InitialSessionState.CreateDefault2();
        iss.ImportPSModule(new[] { RepoPaths.ModuleManifest });
        using var runspace = System.Management.Automation.Runspaces.RunspaceFactory.CreateRunspace(iss);
        runspace.Open();
        using var ps = System.Management.Automation.PowerShell.Create();
        ps.Runspace = runspace;
        ps.AddScript("Invoke-SafeDeploy $args[0] -Root $args[1] -StateDirectory $args[2]").AddArgument(manifest).AddArgument(box.Root).AddArgument(box.State);
        var async = ps.BeginInvoke();
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!File.Exists(marker) && DateTime.UtcNow < deadline) Thread.Sleep(20);
        ps.Stop();
        var result = new PsResult();
        try { result.Output.AddRange(ps.EndInvoke(async)); }
        catch (RuntimeException e) { result.Terminating = e; }
        return result;
    }

    [Fact]
    public void SecondRunOfTheSameDeployment_WaitsAndSaysForWhom()
    {
        using var box = new Sandbox();
        var release = box["release"];
        var manifest = box.Write("deploy.yaml", $$"""
            name: waiter
            phases:
              - name: hold
                run: while [ ! -e '{{release}}' ]; do sleep 0.05; done
            """);
        var args = $"Invoke-SafeDeploy '{manifest}' -Root '{box.Root}' -StateDirectory '{box.State}'";
        using var first = HostProcess.Start(args);
        var lockPath = Path.Combine(box.State, "locks", "waiter.lock");
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!(File.Exists(lockPath) && LockInspector.Inspect(lockPath).IsHeld) && DateTime.UtcNow < deadline) Thread.Sleep(20);
        using var second = HostProcess.Start(args);
        Assert.True(second.WaitForOutput($"being run by pid {first.Pid}", TimeSpan.FromSeconds(60)), second.StdOutSoFar + second.StdErrSoFar);
        Assert.False(second.HasExited);
        File.WriteAllText(release, "");
        var a = first.Wait(TimeSpan.FromSeconds(60));
        var b = second.Wait(TimeSpan.FromSeconds(60));
        Assert.True(a.ExitCode == 0, a.ToString());
        Assert.True(b.ExitCode == 0, b.ToString());
    }

    [Fact]
    public void PhasesSharingAResource_NeverOverlap_AcrossPhasesAndProcesses()
    {
        using var box = new Sandbox();
        var log = box["intervals"];
        // Each phase is a real process that writes its own start and end time.
        box.Write("interval.sh", "s=$(date +%s%N); sleep 0.3; echo \"$s $(date +%s%N) $2\" >> \"$1\"\n");
        string Manifest(int i) => box.Write($"deploy{i}.yaml", $$"""
            name: shared{{i}}
            phases:
              - name: a
                resources: [npmrc]
                run: { args: [sh, interval.sh, "{{log}}", "{{i}}a"] }
              - name: b
                resources: [npmrc]
                run: { args: [sh, interval.sh, "{{log}}", "{{i}}b"] }
              - name: c
                resources: [other, npmrc]
                run: { args: [sh, interval.sh, "{{log}}", "{{i}}c"] }
            """);
        var manifests = new[] { Manifest(0), Manifest(1) };
        var outcomes = ProcessSwarm.RunAtOnce(2, i => $"Invoke-SafeDeploy '{manifests[i]}' -Root '{box.Root}' -StateDirectory '{box.State}' -ThrottleLimit 3");
        Assert.All(outcomes, o => Assert.True(o.ExitCode == 0, o.ToString()));
        var intervals = File.ReadAllLines(log).Select(l => l.Split(' ')).Select(f => (Start: long.Parse(f[0]), End: long.Parse(f[1]), Who: f[2]))
            .OrderBy(x => x.Start).ToList();
        Assert.Equal(6, intervals.Count);
        for (int i = 1; i < intervals.Count; i++)
            Assert.True(intervals[i].Start >= intervals[i - 1].End, $"{intervals[i - 1].Who} and {intervals[i].Who} overlapped:\n{File.ReadAllText(log)}");
    }
}
