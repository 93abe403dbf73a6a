using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Language;
using System.Reflection;
using System.Xml.Linq;
using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.Meta;

/// <summary>The module as a package: a valid manifest, explicit exports, approved verbs, a quiet import, a view per output type.</summary>
public class ModuleManifestTests
{
    static Hashtable ReadManifest()
    {
        var ast = Parser.ParseFile(RepoPaths.ModuleManifest, out _, out var errors);
        Assert.Empty(errors);
        var table = (HashtableAst)ast.Find(a => a is HashtableAst, searchNestedScriptBlocks: false)!;
        return (Hashtable)table.SafeGetValue();
    }

    static string[] Strings(object? value) => value switch
    {
        null => Array.Empty<string>(),
        string s => new[] { s },
        IEnumerable e => e.Cast<object>().Select(o => o.ToString()!).ToArray(),
        _ => new[] { value.ToString()! },
    };

    static List<string> ExportedCmdlets()
    {
        using var ps = new PsSession();
        var r = ps.Run("@((Get-Module SafeDeploy).ExportedCmdlets.Keys)");
        Assert.True(!r.AllErrors.Any(), r.Describe());
        return r.Output.Select(o => o.ToString()).ToList();
    }

    /// <summary>The approved verbs, from System.Management.Automation's own Verbs* classes (the hosted engine has no Get-Verb).</summary>
    public static HashSet<string> ApprovedVerbs() =>
        typeof(VerbsCommon).Assembly.GetExportedTypes()
            .Where(t => t.Namespace == "System.Management.Automation" && t.Name.StartsWith("Verbs", StringComparison.Ordinal) && t.IsAbstract && t.IsSealed)
            .SelectMany(t => t.GetFields(BindingFlags.Public | BindingFlags.Static).Where(f => f.IsLiteral && f.FieldType == typeof(string)))
            .Select(f => (string)f.GetRawConstantValue()!)
            .ToHashSet(StringComparer.OrdinalIgnoreCase);

    [Fact]
    public void Manifest_PassesTestModuleManifest()
    {
        using var ps = new PsSession(importModule: false);
        var r = ps.Run("$m = Test-ModuleManifest -Path $manifest -ErrorAction Stop; $m.Name; $m.Version.ToString(); $m.RootModule",
            ("manifest", RepoPaths.ModuleManifest));
        Assert.True(!r.AllErrors.Any(), r.Describe());
        Assert.Equal("SafeDeploy", r.Output[0].ToString());
        Assert.Equal(ReadManifest()["ModuleVersion"], r.Output[1].ToString());
        Assert.Equal("bin/SafeDeploy.dll", r.Output[2].ToString());
    }

    [Fact]
    public void Manifest_ExportsAreExplicit_NoWildcards_AndEveryExportedCmdletIsListed()
    {
        var manifest = ReadManifest();
        var listed = Strings(manifest["CmdletsToExport"]);
        Assert.NotEmpty(listed);
        foreach (var key in new[] { "CmdletsToExport", "FunctionsToExport", "VariablesToExport", "AliasesToExport" })
        {
            Assert.True(manifest.ContainsKey(key), $"{key} must be given explicitly (a missing key exports everything)");
            var wild = Strings(manifest[key]).Where(WildcardPattern.ContainsWildcardCharacters).ToList();
            Assert.True(wild.Count == 0, $"{key} has wildcards: {string.Join(", ", wild)}");
        }
        Assert.Equal(listed.Length, listed.Distinct(StringComparer.OrdinalIgnoreCase).Count());

        var exported = ExportedCmdlets();
        Assert.NotEmpty(exported);
        var unlisted = exported.Where(c => !listed.Contains(c, StringComparer.OrdinalIgnoreCase)).ToList();
        Assert.True(unlisted.Count == 0, "exported but not in CmdletsToExport: " + string.Join(", ", unlisted));
    }

    [Fact]
    public void Cmdlets_EveryVerbIsApproved_InCodeAndInTheManifest()
    {
        var approved = ApprovedVerbs();
        Assert.Contains("Get", approved);
        Assert.Contains("Initialize", approved);
        Assert.DoesNotContain("Fetch", approved);
        var names = ExportedCmdlets().Concat(Strings(ReadManifest()["CmdletsToExport"])).Distinct().ToList();
        var bad = names.Where(n => n.Split('-') is not [var verb, { Length: > 0 }] || !approved.Contains(verb)).ToList();
        Assert.True(bad.Count == 0, "not Verb-Noun with an approved verb: " + string.Join(", ", bad));
    }

    [Fact]
    public void Module_ImportEmitsNoWarnings()
    {
        using var ps = new PsSession(importModule: false);
        var r = ps.Run("Import-Module -Name $manifest -Verbose:$false; @((Get-Module SafeDeploy).ExportedCmdlets.Keys).Count",
            ("manifest", RepoPaths.ModuleManifest));
        Assert.True(!r.AllErrors.Any(), r.Describe());
        Assert.True(r.Warnings.Count == 0, "Import-Module warned: " + string.Join("\n", r.Warnings));
        Assert.True(Convert.ToInt32(r.Output[0].BaseObject) > 0);
    }

    [Fact]
    public void Cmdlets_EveryOutputTypeHasAFormatView()
    {
        var views = Directory.GetFiles(Path.Combine(RepoPaths.Root, "module"), "*.format.ps1xml")
            .SelectMany(f => XDocument.Load(f).Descendants("ViewSelectedBy").Elements("TypeName").Select(t => t.Value.Trim()))
            .ToHashSet(StringComparer.OrdinalIgnoreCase);
        using var ps = new PsSession();
        var r = ps.Run("foreach ($c in @(Get-Command -Module SafeDeploy -CommandType Cmdlet)) { foreach ($t in $c.OutputType) { \"$($c.Name)|$($t.Name)\" } }");
        Assert.True(!r.AllErrors.Any(), r.Describe());
        var pairs = r.Output.Select(o => o.ToString().Split('|')).ToList();
        Assert.NotEmpty(pairs);
        // BCL types (System.String, System.Object) are formatted by PowerShell itself.
        var missing = pairs.Where(p => !p[1].StartsWith("System.", StringComparison.Ordinal) && !views.Contains(p[1]))
            .Select(p => $"{p[0]} -> {p[1]}").ToList();
        Assert.True(missing.Count == 0, "output types without a view in module/*.format.ps1xml: " + string.Join(", ", missing));
    }
}
