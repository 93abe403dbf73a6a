using System.Xml.Linq;
using SafeDeploy.HelpGen;
using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.Meta;

/// <summary>The help generator itself: the source format, commands without help, and the MAML it writes.</summary>
public class HelpGeneratorTests
{
    static readonly XNamespace Maml = "http://schemas.microsoft.com/maml/2004/10";
    static readonly XNamespace Command = "http://schemas.microsoft.com/maml/dev/command/2004/10";
    static readonly XNamespace Dev = "http://schemas.microsoft.com/maml/dev/2004/10";

    const string Source = """
        # Get-LockHolder

        ## SYNOPSIS
        Says who holds a lock.

        ## DESCRIPTION
        First paragraph
        on two lines.

        - a list item
        - another

        ## PARAMETERS

        ### -Name
        The lock name.

        ### -Path
        The lock file.

        ## EXAMPLES

        ### Example 1: A cron line
        ```powershell
        # crontab: */5 * * * * safedeploy -Command 'Get-LockHolder -Name x'
        ## not a heading either
        Get-LockHolder -Name x
        ```
        Shows the holder.

        Second remark.

        ### Example 2: A pipeline
        ```powershell
        'a', 'b' | Get-LockHolder
        ```
        One per name.

        ## INPUTS

        ### System.String
        Names.

        ## OUTPUTS

        ### SafeDeploy.Engine.Locking.LockHolder
        The holder.

        ## NOTES
        A note.

        ## RELATED LINKS
        - Invoke-WithLock
        - [flock(2)](https://man7.org/linux/man-pages/man2/flock.2.html)
        """;

    [Fact]
    public void HelpSource_HeadingsInsideCodeBlocks_StayCode_AndParagraphsAreJoined()
    {
        var s = HelpSource.Parse(Source, "/x/Get-LockHolder.md");
        Assert.Empty(s.Problems);
        Assert.Equal("Says who holds a lock.", s.Synopsis);
        Assert.Equal(new[] { "First paragraph on two lines.", "- a list item", "- another" }, s.Description);
        Assert.Equal(new[] { "Name", "Path" }, s.Parameters.Select(p => p.Key));
        Assert.Equal(2, s.Examples.Count);
        Assert.Equal("Example 1: A cron line", s.Examples[0].Title);
        Assert.Equal("# crontab: */5 * * * * safedeploy -Command 'Get-LockHolder -Name x'\n## not a heading either\nGet-LockHolder -Name x", s.Examples[0].Code);
        Assert.Equal(new[] { "Shows the holder.", "Second remark." }, s.Examples[0].Remarks);
        Assert.Equal("SafeDeploy.Engine.Locking.LockHolder", Assert.Single(s.Outputs).TypeName);
        Assert.Equal(new[] { new HelpLink("Invoke-WithLock", ""), new HelpLink("flock(2)", "https://man7.org/linux/man-pages/man2/flock.2.html") }, s.RelatedLinks);
    }

    [Fact]
    public void HelpSource_BadShape_IsReportedNotThrown()
    {
        var s = HelpSource.Parse("# Wrong-Name\n\n## SYNOPSIS\nx\n\n## WHATEVER\ny\n\n## PARAMETERS\nloose text\n### Name\nno dash\n\n## EXAMPLES\n### Example 1\nno code\n", "/x/Get-LockHolder.md");
        Assert.Contains(s.Problems, p => p.Contains("does not match the file name"));
        Assert.Contains(s.Problems, p => p.Contains("unknown section '## WHATEVER'"));
        Assert.Contains(s.Problems, p => p.Contains("text before its first '### ' heading"));
        Assert.Contains(s.Problems, p => p.Contains("must start with '-'"));
        Assert.Contains(s.Problems, p => p.Contains("no fenced code block"));
    }

    [Fact]
    public void Generator_SkipsACmdletWithoutHelp_AndNamesIt_AndWritesValidMaml()
    {
        var commands = CommandMetadata.LoadFromModule(RepoPaths.ModuleManifest);
        var holder = commands.Single(c => c.Name == "Get-LockHolder");
        var sources = new[] { HelpSource.Parse(Source, "/x/Get-LockHolder.md") };

        var result = MamlGenerator.Generate(commands, sources);

        Assert.Equal(commands.Select(c => c.Name).Where(n => n != "Get-LockHolder").OrderBy(n => n, StringComparer.Ordinal), result.Undocumented);
        Assert.Contains(result.Problems, p => p.Contains("Edit-LockedFile: no help source docs/help/Edit-LockedFile.md (skipped)"));
        Assert.DoesNotContain(result.Problems, p => p.StartsWith("Get-LockHolder.md", StringComparison.Ordinal));

        var doc = XDocument.Parse(result.Xml);
        Assert.Equal("helpItems", doc.Root!.Name.LocalName);
        Assert.Equal("maml", doc.Root.Attribute("schema")!.Value);
        var command = Assert.Single(doc.Root.Elements(Command + "command"));
        var details = command.Element(Command + "details")!;
        Assert.Equal("Get-LockHolder", details.Element(Command + "name")!.Value);
        Assert.Equal("Get", details.Element(Command + "verb")!.Value);
        Assert.Equal("Says who holds a lock.", details.Element(Maml + "description")!.Element(Maml + "para")!.Value);
        Assert.Equal(3, command.Element(Maml + "description")!.Elements(Maml + "para").Count());

        // One syntax item per parameter set, default set first, with the real positions and pipeline input.
        var syntax = command.Element(Command + "syntax")!.Elements(Command + "syntaxItem").ToList();
        Assert.Equal(holder.ParameterSets.Count, syntax.Count);
        var byName = syntax[0].Elements(Command + "parameter").Single();
        Assert.Equal("Name", byName.Element(Maml + "name")!.Value);
        Assert.Equal("true", byName.Attribute("required")!.Value);
        Assert.Equal("0", byName.Attribute("position")!.Value);
        Assert.Equal("True (ByValue)", byName.Attribute("pipelineInput")!.Value);
        Assert.Equal("String[]", byName.Element(Command + "parameterValue")!.Value);

        var parameters = command.Element(Command + "parameters")!.Elements(Command + "parameter").ToList();
        var path = parameters.Single(p => p.Element(Maml + "name")!.Value == "Path");
        Assert.Equal("FullName, LockPath", path.Attribute("aliases")!.Value);
        Assert.Equal("True (ByPropertyName)", path.Attribute("pipelineInput")!.Value);
        Assert.Equal("named", path.Attribute("position")!.Value);
        Assert.Equal("System.String[]", path.Element(Dev + "type")!.Element(Maml + "name")!.Value);
        Assert.Equal("The lock file.", path.Element(Maml + "description")!.Element(Maml + "para")!.Value);

        Assert.Equal("System.String", command.Element(Command + "inputTypes")!.Element(Command + "inputType")!.Element(Dev + "type")!.Element(Maml + "name")!.Value);
        Assert.Equal("SafeDeploy.Engine.Locking.LockHolder", command.Element(Command + "returnValues")!.Element(Command + "returnValue")!.Element(Dev + "type")!.Element(Maml + "name")!.Value);
        Assert.Equal("A note.", command.Element(Maml + "alertSet")!.Element(Maml + "alert")!.Element(Maml + "para")!.Value);

        var examples = command.Element(Command + "examples")!.Elements(Command + "example").ToList();
        Assert.Equal(2, examples.Count);
        Assert.Contains("Example 1: A cron line", examples[0].Element(Maml + "title")!.Value);
        Assert.EndsWith("Get-LockHolder -Name x", examples[0].Element(Dev + "code")!.Value);
        Assert.Equal(2, examples[0].Element(Dev + "remarks")!.Elements(Maml + "para").Count());

        var links = command.Element(Maml + "relatedLinks")!.Elements(Maml + "navigationLink").ToList();
        Assert.Equal("https://man7.org/linux/man-pages/man2/flock.2.html", links[1].Element(Maml + "uri")!.Value);
    }

    [Fact]
    public void Generator_ReportsUndocumentedAndUnknownParameters_AndOutputsThatDisagreeWithOutputType()
    {
        var commands = CommandMetadata.LoadFromModule(RepoPaths.ModuleManifest).Where(c => c.Name == "Get-LockHolder").ToList();
        var broken = Source.Replace("### -Path\nThe lock file.\n", "### -Nonsense\nNo such parameter.\n")
            .Replace("SafeDeploy.Engine.Locking.LockHolder", "System.String");
        var result = MamlGenerator.Generate(commands, [HelpSource.Parse(broken, "/x/Get-LockHolder.md")]);
        Assert.Contains("Get-LockHolder.md: parameter -Path has no text", result.Problems);
        Assert.Contains("Get-LockHolder.md: documents -Nonsense, which Get-LockHolder does not have", result.Problems);
        Assert.Contains("Get-LockHolder.md: OUTPUTS does not list SafeDeploy.Engine.Locking.LockHolder, which [OutputType] declares", result.Problems);
        Assert.Contains("Get-LockHolder.md: OUTPUTS lists System.String, which [OutputType] does not declare", result.Problems);
    }

    [Fact]
    public void Generator_DocumentsWhatIfAndConfirm_AndDefaultsFromTheCmdlet()
    {
        var commands = CommandMetadata.LoadFromModule(RepoPaths.ModuleManifest);
        var init = commands.Single(c => c.Name == "Initialize-StateDirectory");
        Assert.Equal("User", init.Parameters.Single(p => p.Name == "Scope").DefaultValue);
        Assert.Equal(new[] { "User", "System" }, init.Parameters.Single(p => p.Name == "Scope").AllowedValues);
        Assert.Equal("0700", init.Parameters.Single(p => p.Name == "Mode").DefaultValue);
        Assert.Equal("False", init.Parameters.Single(p => p.Name == "Repair").DefaultValue);
        Assert.Contains(init.Parameters, p => p.Name == "WhatIf" && p.IsRiskMitigation);
        Assert.DoesNotContain(init.Parameters, p => p.Name is "Verbose" or "ErrorAction" or "ProgressAction");
        var timeout = commands.Single(c => c.Name == "Invoke-WithLock").Parameters.Single(p => p.Name == "TimeoutSec");
        Assert.Equal(("System.Int32", "Int32"), (timeout.TypeName, timeout.ShortTypeName)); // int? shown as Int32
    }
}
