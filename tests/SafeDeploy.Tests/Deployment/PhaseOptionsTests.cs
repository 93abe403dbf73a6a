using System.Management.Automation;
using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.Deployment;

public class PhaseOptionsTests
{
    static Dictionary<string, PSObject> Phases(PsResult r) =>
        ((System.Collections.IEnumerable)r.Prop(0, "Phases")!).Cast<object>().Select(PSObject.AsPSObject)
            .ToDictionary(p => (string)p.Properties["Name"].Value, p => p);

    [Fact]
    public void OptionalPhaseFailure_SkipsItsDependents_ButTheDeploymentSucceeds()
    {
        using var box = new Sandbox();
        var m = box.Write("deploy.yaml", """
            name: optional
            phases:
              - name: gpu-tuning
                continueOnError: true
                run: exit 1
              - name: after-tuning
                dependsOn: gpu-tuning
                run: "true"
              - name: main
                editFile: { path: /etc/main.conf, ensureLine: "on=1" }
            """);
        using var ps = new PsSession();
        var r = ps.Run($"Invoke-SafeDeploy '{m}' -Root '{box.Root}' -StateDirectory '{box.State}'");
        Assert.True(r.AllErrors.Count() == 0, r.Describe());
        Assert.Equal("Succeeded", r.Status(0));
        var phases = Phases(r);
        Assert.Equal("Failed", phases["gpu-tuning"].Status());
        Assert.Equal("Skipped", phases["after-tuning"].Status());
        Assert.Equal("Succeeded", phases["main"].Status());
        Assert.Contains(r.Warnings, w => w.Contains("gpu-tuning"));
    }

    [Fact]
    public void PhaseTimeout_CancelsThePhase_AndTheRunIsRolledBack()
    {
        using var box = new Sandbox();
        var m = box.Write("deploy.yaml", """
            name: slow
            phases:
              - name: conf
                editFile: { path: /etc/slow.conf, ensureLine: "on=1" }
              - name: hang
                dependsOn: conf
                timeout: 1s
                run: sleep 60
            """);
        using var ps = new PsSession();
        var r = ps.Run($"Invoke-SafeDeploy '{m}' -Root '{box.Root}' -StateDirectory '{box.State}'");
        Assert.Equal("RolledBack", r.Status(0));
        Assert.Equal("TimedOut", Phases(r)["hang"].Status());
        Assert.False(File.Exists(box.InRoot("/etc/slow.conf")));
        Assert.False(Directory.Exists(box.InRoot("/etc")));
    }

    [Fact]
    public void AFailure_LetsRunningPhasesFinish_StartsNoNewOnes_ThenUndoesWhatRan()
    {
        using var box = new Sandbox();
        var m = box.Write("deploy.yaml", $$"""
            name: siblings
            phases:
              - name: slow
                run:
                  command: sleep 2; echo done >> '{{box["slow.log"]}}'
                  undo: echo undone >> '{{box["slow.log"]}}'
              - name: fails
                run: exit 2
              - name: never
                dependsOn: fails
                run: echo started >> '{{box["never.log"]}}'
              - name: later
                dependsOn: slow
                run: echo started >> '{{box["later.log"]}}'
            """);
        using var ps = new PsSession();
        var r = ps.Run($"Invoke-SafeDeploy '{m}' -Root '{box.Root}' -StateDirectory '{box.State}'");
        Assert.Equal("RolledBack", r.Status(0));
        var phases = Phases(r);
        Assert.Equal("RolledBack", phases["slow"].Status());   // finished, then undone
        Assert.Equal("Failed", phases["fails"].Status());
        Assert.Equal("Skipped", phases["never"].Status());
        Assert.Equal("Skipped", phases["later"].Status());    // its dependency succeeded, but no new phase starts
        Assert.Equal("done\nundone\n", File.ReadAllText(box["slow.log"]));
        Assert.False(File.Exists(box["never.log"]));
        Assert.False(File.Exists(box["later.log"]));
    }
}
