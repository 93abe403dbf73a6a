using System.Collections;
using System.Management.Automation;
using System.Reflection;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.Meta;

/// <summary>
/// The engine's public surface is what PowerShell users see: the cmdlets' output types and the engine types of their
/// properties, what the format views, help and docs name, SafeDeployException. Everything else is internal.
/// </summary>
public class EngineSurfaceTests
{
    /// <summary>A little above the count today (26: 22 and the four status enums of output types): a new public type is a decision, not a default.</summary>
    const int PublicTypeBound = 30;

    const string Rule = "New engine types are internal unless a cmdlet writes them to the pipeline or users name them (CONTRIBUTING.md, 'Where things go').";

    static readonly Assembly engine = typeof(SafeDeployException).Assembly;

    /// <summary>Each cmdlet's OutputType types as PowerShell sees them (from the module's own load context), by cmdlet name.</summary>
    static List<(string Cmdlet, Type Type)> OutputTypes()
    {
        using var ps = new PsSession();
        var r = ps.Run("foreach ($c in @(Get-Command -Module SafeDeploy -CommandType Cmdlet)) { foreach ($t in $c.OutputType) { @{ Cmdlet = $c.Name; Type = $t.Type; Name = $t.Name } } }");
        Assert.True(!r.AllErrors.Any(), r.Describe());
        static object? Base(object? o) => o is PSObject p ? p.BaseObject : o;
        var found = r.Output.Select(o => ((Hashtable)o.BaseObject).Cast<DictionaryEntry>().ToDictionary(e => (string)Base(e.Key)!, e => Base(e.Value))).ToList();
        var unresolved = found.Where(h => h["Type"] is not Type).Select(h => $"{h["Cmdlet"]} -> {h["Name"]}").ToList();
        Assert.True(unresolved.Count == 0, "OutputType given by a name PowerShell cannot resolve to a type: " + string.Join(", ", unresolved));
        return found.Select(h => ((string)h["Cmdlet"]!, (Type)h["Type"]!)).ToList();
    }

    static bool IsEngineType(Type t) => t.Assembly.GetName().Name == engine.GetName().Name;

    /// <summary>The engine types a user meets through <paramref name="t"/>: itself, or what it is an array, nullable or generic of.</summary>
    static IEnumerable<Type> EngineTypesIn(Type t) =>
        t.HasElementType ? EngineTypesIn(t.GetElementType()!)
        : t.IsGenericType ? t.GetGenericArguments().SelectMany(EngineTypesIn).Concat(IsEngineType(t) ? [t.GetGenericTypeDefinition()] : [])
        : IsEngineType(t) ? [t] : [];

    /// <summary>Every engine type reachable from the output types through public properties, with how it is reached.</summary>
    static Dictionary<Type, string> SeenByUsers(IEnumerable<(string Cmdlet, Type Type)> outputs)
    {
        var seen = new Dictionary<Type, string>();
        var queue = new Queue<Type>();
        void Add(Type t, string how)
        {
            foreach (var e in EngineTypesIn(t))
                if (seen.TryAdd(e, how)) queue.Enqueue(e);
        }
        foreach (var (cmdlet, type) in outputs) Add(type, $"OutputType of {cmdlet}");
        while (queue.TryDequeue(out var t))
            foreach (var p in t.GetProperties(BindingFlags.Public | BindingFlags.Instance))
                Add(p.PropertyType, $"{t.Name}.{p.Name}");
        return seen;
    }

    [Fact]
    public void OutputTypes_AndTheEngineTypesOfTheirPublicProperties_ArePublic()
    {
        var outputs = OutputTypes();
        Assert.Contains(outputs, o => IsEngineType(o.Type));
        var seen = SeenByUsers(outputs);
        // A non-public type shows none of its own properties in PowerShell (nor to Format-List *, nor to binding by property name).
        var hidden = seen.Where(kv => !kv.Key.IsVisible).Select(kv => $"{kv.Key.FullName} ({kv.Value})").ToList();
        Assert.True(hidden.Count == 0, "Users see these engine types but they are not public; make them public:\n" + string.Join("\n", hidden));
    }

    [Fact]
    public void EngineTypesUsersName_InFormatViewsDocsAndHelp_ArePublic_AsIsSafeDeployException()
    {
        var views = Directory.GetFiles(Path.Combine(RepoPaths.Root, "module"), "*.format.ps1xml")
            .SelectMany(f => XDocument.Load(f).Descendants("TypeName").Select(t => (Name: t.Value.Trim(), Where: Path.GetFileName(f))));
        var texts = new[] { "docs", "en-US", "examples", Path.Combine("tests", "Pester") }
            .Select(d => Path.Combine(RepoPaths.Root, d)).Where(Directory.Exists)
            .SelectMany(d => Directory.EnumerateFiles(d, "*", SearchOption.AllDirectories))
            .Append(Path.Combine(RepoPaths.Root, "README.md"))
            .SelectMany(f => Regex.Matches(File.ReadAllText(f), @"SafeDeploy\.Engine(?:\.\w+)+").Select(m => (Name: m.Value, Where: Path.GetRelativePath(RepoPaths.Root, f))));
        var named = views.Concat(texts).ToList();
        Assert.Contains(named, n => engine.GetType(n.Name) is not null);
        // Names that are no engine type (a namespace, the DLL, the help format's placeholder) are not this test's business.
        var hidden = named.Where(n => engine.GetType(n.Name) is { IsVisible: false }).Select(n => $"{n.Name} (named in {n.Where})").Distinct().ToList();
        Assert.True(hidden.Count == 0, "Users name these engine types but they are not public; make them public:\n" + string.Join("\n", hidden));
        // Users catch it (catch [SafeDeploy.Engine.Errors.SafeDeployException]) and read its ErrorId and Kind.
        Assert.True(typeof(SafeDeployException).IsPublic && typeof(ErrorKind).IsPublic);
    }

    [Fact]
    public void Engine_PublicTypeCount_StaysUnderItsBound()
    {
        var exported = engine.GetExportedTypes();
        var seen = SeenByUsers(OutputTypes()).Keys.Select(t => t.FullName).ToHashSet();
        var others = exported.Where(t => !seen.Contains(t.FullName)).Select(t => t.FullName).Order().ToList();
        Assert.True(exported.Length <= PublicTypeBound,
            $"SafeDeploy.Engine has {exported.Length} public types, more than {PublicTypeBound}. {Rule}\n" +
            "Public beyond the output types and their property types (SafeDeployException and ErrorKind are caught by users, HostStep is " +
            "the host's -FleetStep entry; make internal what users do not see):\n  " + string.Join("\n  ", others));
    }
}
