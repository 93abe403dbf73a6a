using SafeDeploy.HelpGen;
using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.Meta;

/// <summary>Every exported cmdlet has real help, the committed MAML is what the generator makes now, and Get-Help finds it.</summary>
public class HelpTests
{
    static string MamlPath => MamlGenerator.PathsFor(RepoPaths.Root).Output;

    [Fact]
    public void Help_EveryExportedCmdlet_HasSynopsisDescriptionParameterTextAndTwoExamples()
    {
        using var ps = new PsSession();
        // Read through Get-Help, as a user sees it: MAML help, not the syntax-only help PowerShell makes up when there is none.
        var r = ps.Run("""
            foreach ($c in @((Get-Module SafeDeploy).ExportedCmdlets.Values)) {
                $h = Get-Help -Name $c.Name -Full
                if ($h.PSObject.TypeNames -notcontains 'MamlCommandHelpInfo') { "$($c.Name): no help (write docs/help/$($c.Name).md)"; continue }
                if (-not "$($h.Synopsis)".Trim()) { "$($c.Name): no synopsis" }
                if (-not ((@($h.description) | ForEach-Object { "$($_.Text)" }) -join '').Trim()) { "$($c.Name): no description" }
                $text = @{}
                foreach ($p in @($h.parameters.parameter)) { $text["$($p.name)"] = (@($p.description) | ForEach-Object { "$($_.Text)" }) -join '' }
                foreach ($name in $c.Parameters.Keys) {
                    if ([System.Management.Automation.Cmdlet]::CommonParameters.Contains($name)) { continue }
                    if (-not "$($text[$name])".Trim()) { "$($c.Name): parameter -$name has no text" }
                }
                $examples = @(@($h.examples.example) | Where-Object { "$($_.code)".Trim() })
                if ($examples.Count -lt 2) { "$($c.Name): $($examples.Count) example(s), at least two are needed" }
            }
            """);
        Assert.True(r.AllErrors.Count() == 0, r.Describe());
        var problems = r.Output.Select(o => o.ToString()).ToList();
        Assert.True(problems.Count == 0,
            $"Help is missing or incomplete (edit docs/help/<Verb-Noun>.md, then run {MamlGenerator.RegenerateCommand}):\n" + string.Join("\n", problems));
    }

    [Fact]
    public void Help_CommittedMaml_EqualsWhatTheGeneratorProducesNow()
    {
        var generated = MamlGenerator.GenerateForRepository(RepoPaths.Root);
        Assert.True(File.Exists(MamlPath), $"{MamlPath} is missing: run {MamlGenerator.RegenerateCommand}");
        var committed = File.ReadAllText(MamlPath);
        if (committed == generated.Xml) return;
        var a = committed.Split('\n');
        var b = generated.Xml.Split('\n');
        int line = Enumerable.Range(0, Math.Min(a.Length, b.Length)).FirstOrDefault(i => a[i] != b[i], Math.Min(a.Length, b.Length));
        Assert.Fail($"en-US/{MamlGenerator.HelpFileName} is stale (docs/help or a cmdlet changed since it was generated): " +
            $"run {MamlGenerator.RegenerateCommand} and commit the result.\nFirst difference at line {line + 1}:\n" +
            $"  committed: {(line < a.Length ? a[line].Trim() : "(end)")}\n  generated: {(line < b.Length ? b[line].Trim() : "(end)")}");
    }

    [Fact]
    public void Help_SourcesMatchTheCmdlets_ParametersOutputsAndShape()
    {
        var generated = MamlGenerator.GenerateForRepository(RepoPaths.Root);
        Assert.True(generated.Problems.Count == 0,
            $"docs/help does not match the cmdlets (fix the .md files, then run {MamlGenerator.RegenerateCommand}):\n" + string.Join("\n", generated.Problems));
    }

    [Fact]
    public void Help_GeneratorIsDeterministic_SameInputsSameBytes()
    {
        var commands = CommandMetadata.LoadFromModule(RepoPaths.ModuleManifest);
        var sources = HelpSource.LoadDirectory(Path.Combine(RepoPaths.Root, "docs", "help"));
        var first = MamlGenerator.Generate(commands, sources).Xml;
        var second = MamlGenerator.Generate(commands.Reverse().ToList(), sources.Reverse().ToList()).Xml;
        Assert.Equal(first, second);
        Assert.DoesNotContain("\r", first);
    }

    [Fact]
    public void Help_GetHelpFull_InTheHost_ShowsSynopsisParametersAndAnExample()
    {
        using var home = new TempDir("home");
        var run = HostProcess.Run("Get-Help Initialize-StateDirectory -Full", new Dictionary<string, string?> { ["HOME"] = home.Path });
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("SYNOPSIS", run.StdOut);
        Assert.Contains("Creates a tool's state, log, cache and lock directories", run.StdOut);
        Assert.Contains("-Scope <StateScope>", run.StdOut);
        Assert.Contains("Accept pipeline input?       True (ByValue, ByPropertyName)", run.StdOut);
        Assert.Contains("Example 1: Prepare a tool's directories at the top of a setup script", run.StdOut);
        Assert.Contains("$state = Initialize-StateDirectory -Name ollama-shim", run.StdOut);
        Assert.Contains("about_SafeDeploy", run.StdOut); // related links
    }

    [Fact]
    public void Help_GetHelpReadsTheModulesHelp_FromEnUSBesideTheManifest()
    {
        using var ps = new PsSession();
        var r = ps.Run("""
            $h = Get-Help Invoke-WithLock -Full
            $h.Synopsis
            @($h.syntax.syntaxItem).Count
            @($h.examples.example)[0].code
            @($h.relatedLinks.navigationLink | ForEach-Object { $_.linkText }) -join ','
            (Get-Command Invoke-WithLock).HelpFile
            """);
        Assert.True(!r.AllErrors.Any(), r.Describe());
        Assert.Contains("flock(2)", r.Output[0].ToString());
        Assert.Equal(2, Convert.ToInt32(r.Output[1].BaseObject)); // ByName and ByPath
        Assert.Contains("Invoke-WithLock -Name cuda-toolkit", r.Output[2].ToString());
        Assert.Contains("Get-LockHolder", r.Output[3].ToString());
        Assert.Equal(MamlGenerator.HelpFileName, Path.GetFileName(r.Output[4].ToString()));
    }

    [Fact]
    public void Help_AboutSafeDeploy_IsFoundWithTheModuleImported()
    {
        using var ps = new PsSession();
        var r = ps.Run("Get-Help about_SafeDeploy");
        Assert.True(!r.AllErrors.Any(), r.Describe());
        var text = string.Join("\n", r.Output.Select(o => o.ToString()));
        Assert.Contains("about_SafeDeploy", text);
        foreach (var heading in new[] { "KERNEL LOCKS, NOT LOCK FILES", "ATOMIC WRITES", "STATE DIRECTORIES", "THE JOURNAL", "GENERATIONS AND ROLLBACK", "TRY MODE", "THE HOST", "THREAT MODEL" })
            Assert.Contains(heading, text);
    }

    [Fact]
    public void Help_AboutTopics_AreInTheAboutTextFormat()
    {
        foreach (var file in Directory.GetFiles(Path.Combine(RepoPaths.Root, "en-US"), "about_*.help.txt"))
        {
            var lines = File.ReadAllText(file).Replace("\r\n", "\n").Split('\n');
            var topic = Path.GetFileName(file)[..^".help.txt".Length];
            Assert.Equal("TOPIC", lines[0].Trim());
            Assert.Equal(topic, lines[1].Trim());
            Assert.Contains("SHORT DESCRIPTION", lines);
            Assert.Contains("LONG DESCRIPTION", lines);
            var tooLong = lines.Select((l, i) => (l, i)).Where(x => x.l.Length > 80).Select(x => $"{Path.GetFileName(file)}:{x.i + 1}").ToList();
            Assert.True(tooLong.Count == 0, "lines longer than 80 characters: " + string.Join(", ", tooLong));
        }
    }
}
