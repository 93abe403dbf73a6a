using SafeDeploy.Engine.Manifest;
using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.Deployment;

public class ManifestTests
{
    const string EveryError = """
        name: errs
        variables:
          dir: /opt/x
        colour: blue
        phases:
          - name: a
            run: echo ${nope}
          - name: b
            dependsOn: a
          - name: c
            run: "true"
            install: { source: x, target: /y }
          - name: d
            dependsOn: [ghost]
            run: "true"
            colour: red
          - name: e
            dependsOn: f
            run: "true"
          - name: f
            dependsOn: e
            run: "true"
        """;

    static IReadOnlyList<ManifestProblem> Problems(string text) => new ManifestParser().Parse(text, "/m/deploy.yaml").Problems;

    [Fact]
    public void Manifest_ReportsEveryErrorAtOnce_WithLineAndColumn()
    {
        var problems = Problems(EveryError);
        var found = problems.Select(p => (p.Code, p.Line, p.Column)).ToList();
        var expected = new[]
        {
            ("UnknownKey", 4, 1),          // colour: at the top
            ("UndefinedVariable", 7, 15),  // the '$' of ${nope}
            ("MissingAction", 8, 5),       // phase b
            ("TwoActions", 12, 5),         // install: beside run:
            ("UnknownKey", 16, 5),         // colour: in phase d
            ("UnknownDependency", 14, 17), // ghost
            ("DependencyCycle", 17, 5),    // e -> f -> e
        };
        foreach (var e in expected) Assert.True(found.Contains(e), $"missing {e} in:\n{string.Join("\n", problems)}");
        Assert.Equal(expected.Length, problems.Count);
        Assert.All(problems, p => Assert.Equal("/m/deploy.yaml", p.File));
        Assert.False(new ManifestParser().Parse(EveryError, "/m/deploy.yaml").IsValid);
    }

    [Fact]
    public void Manifest_CycleNamesEveryPhaseInIt()
    {
        var problems = Problems("""
            name: cyc
            phases:
              - { name: one, dependsOn: three, run: "true" }
              - { name: two, dependsOn: one, run: "true" }
              - { name: three, dependsOn: two, run: "true" }
              - { name: free, run: "true" }
            """);
        var cycle = Assert.Single(problems);
        Assert.Equal("DependencyCycle", cycle.Code);
        foreach (var name in new[] { "one", "two", "three" }) Assert.Contains(name, cycle.Message);
        Assert.DoesNotContain("free", cycle.Message);
        Assert.Contains("one -> three -> two -> one", cycle.Message);
    }

    [Fact]
    public void Manifest_BadYaml_IsOneSyntaxErrorAtItsPosition()
    {
        var p = Assert.Single(Problems("name: x\nphases:\n  - name: a\n    run: [unclosed\n"));
        Assert.Equal("YamlSyntax", p.Code);
        Assert.True(p.Line >= 4, p.ToString());
        Assert.True(p.Column >= 1, p.ToString());
    }

    [Fact]
    public void Manifest_MissingNameAndPhases_AreReported()
    {
        var codes = Problems("variables: { a: b }\n").Select(p => (p.Code, p.Line)).ToList();
        Assert.Contains(("MissingKey", 1), codes);
        Assert.Equal(2, codes.Count(c => c.Code == "MissingKey"));
    }

    [Fact]
    public void Manifest_UnknownActionKeys_AndBadValues_AreReportedWithPositions()
    {
        var problems = Problems("""
            name: vals
            phases:
              - name: a
                timeout: soon
                run: { command: "true", shell: bash }
              - name: b
                install: { source: x, target: relative/path, mode: "999" }
              - name: c
                checks:
                  - diskFree: { path: /, minimum: lots }
                  - teleport: now
            """);
        var found = problems.Select(p => (p.Code, p.Line, p.Column)).ToList();
        Assert.Contains(("InvalidValue", 4, 14), found); // timeout: soon
        Assert.Contains(("UnknownKey", 5, 29), found);   // shell
        Assert.Contains(("InvalidValue", 7, 56), found); // mode "999"
        Assert.Contains(("InvalidValue", 7, 35), found); // relative target
        Assert.Contains(("InvalidValue", 10, 39), found); // minimum: lots
        Assert.Contains(problems, p => p.Code == "UnknownKey" && p.Line == 11); // teleport
    }

    [Fact]
    public void Manifest_VariablesExpand_AndOverridesWin_AndRootIsAVariable()
    {
        var r = new ManifestParser().Parse("""
            name: vars
            variables:
              base: /opt/app
              lib: ${base}/lib.so
            phases:
              - name: a
                install: { source: build/lib.so, target: "${lib}" }
              - name: b
                run: echo ${root} $${literal}
            """, "/m/deploy.yaml", new Dictionary<string, string> { ["base"] = "/srv/app" }, SafeDeploy.Engine.Actions.DeploymentRoot.From("/sandbox"));
        Assert.True(r.IsValid, string.Join("\n", r.Problems));
        Assert.Equal(["/srv/app/lib.so"], r.Manifest!.Phase("a").Writes);
        Assert.Equal("run: echo /sandbox ${literal}", r.Manifest.Phase("b").Action.Describe());
    }

    [Fact]
    public void Manifest_RaceWarning_ForParallelPhasesWritingOnePathWithoutASharedResource()
    {
        var r = new ManifestParser().Parse("""
            name: race
            phases:
              - name: a
                editFile: { path: /home/u/.npmrc, ensureLine: "a=1" }
              - name: b
                writes: [/home/u/.npmrc]
                run: "true"
              - name: c
                resources: [npmrc]
                editFile: { path: /etc/x, ensureLine: "c=1" }
              - name: d
                resources: [npmrc]
                editFile: { path: /etc/x, ensureLine: "d=1" }
              - name: e
                dependsOn: a
                editFile: { path: /home/u/.npmrc, ensureLine: "e=1" }
            """, "/m/deploy.yaml");
        Assert.True(r.IsValid);
        var warnings = r.Problems.Where(p => p.Severity == ProblemSeverity.Warning).ToList();
        // a and b race; b and e race (e only follows a); c and d share a resource; a and e are ordered.
        Assert.Equal(2, warnings.Count);
        Assert.All(warnings, w => Assert.Equal("RaceWarning", w.Code));
        Assert.Contains(warnings, w => w.Message.Contains("'a' and 'b'"));
        Assert.Contains(warnings, w => w.Message.Contains("'b' and 'e'"));
    }

    [Fact]
    public void Manifest_WavesFollowDependencies()
    {
        var r = new ManifestParser().Parse("""
            name: waves
            phases:
              - { name: a1, run: "true" }
              - { name: b1, run: "true" }
              - { name: a2, dependsOn: a1, run: "true" }
              - { name: join, dependsOn: [a2, b1], run: "true" }
            """, "/m/deploy.yaml");
        var waves = r.Manifest!.Waves().Select(w => string.Join(",", w.Select(p => p.Name))).ToList();
        Assert.Equal(["a1,b1", "a2", "join"], waves);
    }

    [Fact]
    public void TestSafeDeployManifest_EmitsEveryProblemAsAnObject()
    {
        using var box = new Sandbox();
        var path = box.Write("deploy.yaml", EveryError);
        using var ps = new PsSession();
        var r = ps.Run("Test-SafeDeployManifest -Path $p", ("p", path));
        Assert.Empty(r.AllErrors);
        Assert.Equal(7, r.Output.Count);
        Assert.Contains(r.Output, o => (string)o.Properties["Code"].Value == "DependencyCycle" && (int)o.Properties["Line"].Value == 17);
        Assert.All(r.Output, o => Assert.Equal(path, o.Properties["File"].Value));

        var missing = ps.Run("Test-SafeDeployManifest -Path $p", ("p", box["nope.yaml"]));
        var err = Assert.Single(missing.AllErrors);
        Assert.StartsWith("ManifestNotFound", err.FullyQualifiedErrorId);
        Assert.Equal(System.Management.Automation.ErrorCategory.ObjectNotFound, err.CategoryInfo.Category);
        Assert.Equal(box["nope.yaml"], err.TargetObject);
    }
}

public class ManifestLockTests
{
    [Fact]
    public void Manifest_AResourceNamedLikeTheDeploymentLock_IsAnError()
    {
        var r = new ManifestParser().Parse("name: app\nphases:\n  - name: a\n    resources: [app]\n    run: \"true\"\n", "/m/d.yaml");
        var p = Assert.Single(r.Problems);
        Assert.Equal(("InvalidValue", 4, 16), (p.Code, p.Line, p.Column));
    }
}
