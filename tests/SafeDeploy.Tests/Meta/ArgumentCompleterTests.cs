using SafeDeploy.Tests.Infrastructure;
using SafeDeploy.Tests.JobStatus;
using Xunit;

namespace SafeDeploy.Tests.Meta;

/// <summary>Each argument completer through TabExpansion2 in the hosted PowerShell, as a user pressing Tab gets it.</summary>
public class ArgumentCompleterTests
{
    static List<string> Complete(PsSession ps, string line)
    {
        var r = ps.Run("(TabExpansion2 -inputScript $line -cursorColumn $line.Length).CompletionMatches | ForEach-Object { $_.CompletionText }", ("line", line));
        Assert.True(!r.AllErrors.Any(), r.Describe());
        return r.Output.Select(o => o.ToString()).ToList();
    }

    [Fact]
    public void LockNames_ComeFromTheLockDirectory_AndCompletingCreatesNothing()
    {
        using var home = new TempDir("home");
        using var env = EnvScope.FreshHome(home.Path);
        using var ps = new PsSession();
        Assert.Empty(Complete(ps, "Invoke-WithLock -Name "));
        Assert.False(Directory.Exists(Path.Combine(home.Path, ".local", "state")), "completion created the state directory");

        var made = ps.Run("Invoke-WithLock -Name cuda-toolkit { 1 } | Out-Null; Invoke-WithLock -Name dataset-sync { 1 } | Out-Null");
        Assert.True(!made.AllErrors.Any(), made.Describe());
        Assert.Equal(["cuda-toolkit"], Complete(ps, "Invoke-WithLock -Name cu"));
        Assert.Equal(["cuda-toolkit", "dataset-sync"], Complete(ps, "Get-LockHolder -Name "));
    }

    [Fact]
    public void DeploymentNamesRunIdsAndPhases_ComeFromTheStateDirectoryAndTheManifest()
    {
        using var dir = new TempDir("compl");
        var state = dir["state"];
        var manifest = dir.Write("my deploy.yaml", """
            name: demo-app
            phases:
              - name: build
                run: { args: ['true'] }
              - name: bake-image
                dependsOn: build
                run: { args: ['true'] }
            """);
        using var ps = new PsSession();
        Assert.Equal(["bake-image", "build"], Complete(ps, $"Invoke-SafeDeploy '{manifest}' -Phase "));
        Assert.Equal(["bake-image"], Complete(ps, $"Invoke-SafeDeploy -Manifest '{manifest}' -Phase ba"));

        var run = ps.Run("Invoke-SafeDeploy -Manifest $m -StateDirectory $s -Root $r | ForEach-Object { $_.Id }", ("m", manifest), ("s", state), ("r", dir.Path));
        Assert.True(!run.AllErrors.Any(), run.Describe());
        var id = run.Output.Single().ToString();
        Assert.Equal(["demo-app"], Complete(ps, $"Undo-SafeDeploy -StateDirectory '{state}' -Name "));
        Assert.Equal(["demo-app"], Complete(ps, $"Confirm-SafeDeploy -StateDirectory '{state}' -Name de"));
        Assert.Equal(["demo-app"], Complete(ps, $"Get-SafeDeployHistory -StateDirectory '{state}' -Name "));
        Assert.Equal([id], Complete(ps, $"Undo-SafeDeploy -StateDirectory '{state}' -Name demo-app -Id "));
        Assert.Empty(Complete(ps, $"Undo-SafeDeploy -StateDirectory '{state}' -Name other -Id "));
    }

    [Fact]
    public void JobNames_ComeFromTheCloneGivenWithRepository_PushedAndQueued()
    {
        using var remote = new GitRemote();
        var clone = remote.Clone("c1");
        using var ps = new PsSession();
        var made = ps.Run("""
            Sync-JobStatus -Repository $repo -JobName train-7 -Status running | Out-Null
            Sync-JobStatus -Repository $repo -JobName '--queued' -Status queued -NoPush | Out-Null
            """, ("repo", clone));
        Assert.True(!made.AllErrors.Any(), made.Describe());
        Assert.Equal(["'--queued'", "other-team", "train-7"], Complete(ps, $"Get-JobStatus -Repository '{clone}' -JobName "));
        Assert.Equal(["train-7"], Complete(ps, $"Sync-JobStatus -Repository '{clone}' -JobName tr"));
        Assert.Empty(Complete(ps, "Get-JobStatus -Repository /nonexistent/clone -JobName "));
    }
}
