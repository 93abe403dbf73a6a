using System.Collections;
using System.Globalization;
using System.Management.Automation;
using System.Management.Automation.Runspaces;
using System.Text;
using System.Xml;

namespace SafeDeploy.HelpGen;

/// <summary>How a parameter takes part in one parameter set.</summary>
public sealed record ParameterUse(string Name, bool Mandatory, int? Position, bool ByValue, bool ByPropertyName);

/// <summary>One parameter set of a cmdlet, its parameters in syntax order.</summary>
public sealed record ParameterSetMetadata(string Name, bool IsDefault, IReadOnlyList<ParameterUse> Parameters);

/// <summary>A parameter as the built cmdlet declares it.</summary>
public sealed record ParameterMetadataInfo
{
    public required string Name { get; init; }
    public required string TypeName { get; init; }
    public required string ShortTypeName { get; init; }
    public bool IsSwitch { get; init; }
    public bool IsArray { get; init; }
    public bool Globbing { get; init; }
    public IReadOnlyList<string> Aliases { get; init; } = Array.Empty<string>();
    /// <summary>The values an enum or ValidateSet allows, in declaration order.</summary>
    public IReadOnlyList<string> AllowedValues { get; init; } = Array.Empty<string>();
    public string DefaultValue { get; init; } = "None";
    /// <summary>WhatIf and Confirm: documented by the generator, not by each help source.</summary>
    public bool IsRiskMitigation { get; init; }
}

/// <summary>What the built module says about one exported cmdlet.</summary>
public sealed record CommandMetadata
{
    public required string Name { get; init; }
    public required string Verb { get; init; }
    public required string Noun { get; init; }
    public IReadOnlyList<ParameterSetMetadata> ParameterSets { get; init; } = Array.Empty<ParameterSetMetadata>();
    public IReadOnlyList<ParameterMetadataInfo> Parameters { get; init; } = Array.Empty<ParameterMetadataInfo>();
    public IReadOnlyList<string> OutputTypes { get; init; } = Array.Empty<string>();

    /// <summary>
    /// Imports the module manifest into a fresh hosted PowerShell engine and reads every exported cmdlet's metadata:
    /// parameter sets, types, positions, mandatory flags, pipeline input, aliases and output types.
    /// </summary>
    public static IReadOnlyList<CommandMetadata> LoadFromModule(string manifestPath)
    {
        var iss = InitialSessionState.CreateDefault2();
        using var runspace = RunspaceFactory.CreateRunspace(iss);
        runspace.Open();
        using var ps = PowerShell.Create();
        ps.Runspace = runspace;
        ps.AddScript("param($manifest) Import-Module -Name $manifest -ErrorAction Stop; Get-Command -Module SafeDeploy -CommandType Cmdlet")
            .AddArgument(manifestPath);
        var output = ps.Invoke();
        if (ps.HadErrors && ps.Streams.Error.Count > 0)
            throw new InvalidOperationException($"Cannot import '{manifestPath}': {ps.Streams.Error[0]}");
        return output.Select(o => o.BaseObject).OfType<CmdletInfo>()
            .Select(FromCmdlet)
            .OrderBy(c => c.Name, StringComparer.Ordinal)
            .ToList();
    }

    static readonly HashSet<string> riskMitigation = new(StringComparer.OrdinalIgnoreCase) { "WhatIf", "Confirm" };

    static bool IsCommon(string name) =>
        Cmdlet.CommonParameters.Contains(name) || (Cmdlet.OptionalCommonParameters.Contains(name) && !riskMitigation.Contains(name));

    /// <summary>Reads one cmdlet's metadata.</summary>
    public static CommandMetadata FromCmdlet(CmdletInfo cmdlet)
    {
        object? instance = null;
        try { instance = Activator.CreateInstance(cmdlet.ImplementingType); }
        catch (Exception e) when (e is MissingMethodException or System.Reflection.TargetInvocationException or MemberAccessException) { }

        var sets = cmdlet.ParameterSets
            .Select(s => new ParameterSetMetadata(s.Name, s.IsDefault, s.Parameters
                .Where(p => !IsCommon(p.Name))
                .Select(p => new ParameterUse(p.Name, p.IsMandatory, p.Position >= 0 ? p.Position : null, p.ValueFromPipeline, p.ValueFromPipelineByPropertyName))
                .OrderBy(p => p.Position ?? int.MaxValue)
                .ThenBy(p => p.Mandatory ? 0 : 1)
                .ThenBy(p => riskMitigation.Contains(p.Name) ? 1 : 0)
                .ThenBy(p => p.Name, StringComparer.Ordinal)
                .ToList()))
            .OrderBy(s => s.IsDefault ? 0 : 1)
            .ThenBy(s => s.Name, StringComparer.Ordinal)
            .ToList();

        var attributesByName = cmdlet.ParameterSets.SelectMany(s => s.Parameters)
            .GroupBy(p => p.Name, StringComparer.OrdinalIgnoreCase)
            .ToDictionary(g => g.Key, g => g.SelectMany(p => p.Attributes).ToList(), StringComparer.OrdinalIgnoreCase);

        var parameters = cmdlet.Parameters.Values
            .Where(p => !IsCommon(p.Name))
            .Select(p =>
            {
                var attributes = attributesByName.TryGetValue(p.Name, out var a) ? a : new List<Attribute>();
                var type = Nullable.GetUnderlyingType(p.ParameterType) ?? p.ParameterType;
                var element = type.IsArray ? type.GetElementType()! : type;
                var allowed = element.IsEnum ? Enum.GetNames(element).ToList()
                    : attributes.OfType<ValidateSetAttribute>().SelectMany(v => v.ValidValues).ToList();
                return new ParameterMetadataInfo
                {
                    Name = p.Name,
                    TypeName = FullTypeName(type),
                    ShortTypeName = ShortTypeName(type),
                    IsSwitch = p.SwitchParameter,
                    IsArray = type.IsArray,
                    Globbing = attributes.OfType<SupportsWildcardsAttribute>().Any(),
                    Aliases = p.Aliases.OrderBy(x => x, StringComparer.Ordinal).ToList(),
                    AllowedValues = allowed,
                    DefaultValue = DefaultOf(instance, cmdlet.ImplementingType, p),
                    IsRiskMitigation = riskMitigation.Contains(p.Name),
                };
            })
            .OrderBy(p => p.Name, StringComparer.Ordinal)
            .ToList();

        return new CommandMetadata
        {
            Name = cmdlet.Name,
            Verb = cmdlet.Verb,
            Noun = cmdlet.Noun,
            ParameterSets = sets,
            Parameters = parameters,
            OutputTypes = cmdlet.OutputType.Select(t => t.Type is { } ot ? FullTypeName(ot) : t.Name).Distinct().OrderBy(x => x, StringComparer.Ordinal).ToList(),
        };
    }

    // The value a fresh cmdlet object holds: that is what an omitted optional parameter means.
    static string DefaultOf(object? instance, Type type, ParameterMetadata p)
    {
        if (p.SwitchParameter) return "False";
        if (instance is null || riskMitigation.Contains(p.Name)) return "None";
        if (p.Attributes.OfType<ParameterAttribute>().Any(a => a.Mandatory)) return "None";
        object? value;
        try { value = type.GetProperty(p.Name)?.GetValue(instance); }
        catch (Exception e) when (e is System.Reflection.TargetInvocationException or MethodAccessException) { return "None"; }
        return value switch
        {
            null => "None",
            string s => s.Length == 0 ? "None" : s,
            ICollection c => c.Count == 0 ? "None" : string.Join(", ", c.Cast<object>()),
            IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
            ScriptBlock => "None",
            _ => value.ToString() ?? "None",
        };
    }

    public static string FullTypeName(Type t)
    {
        t = Nullable.GetUnderlyingType(t) ?? t;
        if (t.IsArray) return FullTypeName(t.GetElementType()!) + "[]";
        return t.FullName ?? t.Name;
    }

    public static string ShortTypeName(Type t)
    {
        t = Nullable.GetUnderlyingType(t) ?? t;
        if (t.IsArray) return ShortTypeName(t.GetElementType()!) + "[]";
        if (!t.IsGenericType) return t.Name;
        var name = t.Name[..t.Name.IndexOf('`')];
        return $"{name}[{string.Join(",", t.GetGenericArguments().Select(ShortTypeName))}]";
    }
}

/// <summary>The result of a generation: the MAML text and what a reader of it would miss.</summary>
public sealed record MamlGeneration(string Xml, IReadOnlyList<string> Problems, IReadOnlyList<string> Undocumented);

/// <summary>
/// Turns the help sources (docs/help/*.md) and the built cmdlets' real metadata into MAML (en-US/SafeDeploy.dll-Help.xml),
/// the help format Get-Help reads for binary modules. The output is deterministic: the same inputs give the same bytes.
/// </summary>
public static class MamlGenerator
{
    public const string HelpFileName = "SafeDeploy.dll-Help.xml";
    public const string RegenerateCommand = "dotnet run --project tools/HelpGen";

    const string MshNs = "http://msh";
    const string MamlNs = "http://schemas.microsoft.com/maml/2004/10";
    const string CommandNs = "http://schemas.microsoft.com/maml/dev/command/2004/10";
    const string DevNs = "http://schemas.microsoft.com/maml/dev/2004/10";
    const string MsHelpNs = "http://msdn.microsoft.com/mshelp";

    static readonly IReadOnlyDictionary<string, string> riskMitigationText = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
    {
        ["WhatIf"] = "Shows what would happen if the cmdlet runs, without changing anything.",
        ["Confirm"] = "Prompts you for confirmation before each change.",
    };

    /// <summary>Paths of a checkout: the manifest, the help sources and the MAML file.</summary>
    public static (string Manifest, string Sources, string Output) PathsFor(string repoRoot) =>
        (Path.Combine(repoRoot, "SafeDeploy.psd1"), Path.Combine(repoRoot, "docs", "help"), Path.Combine(repoRoot, "en-US", HelpFileName));

    /// <summary>Generates the MAML for a checkout, from its built module and its help sources.</summary>
    public static MamlGeneration GenerateForRepository(string repoRoot)
    {
        var (manifest, sources, _) = PathsFor(repoRoot);
        return Generate(CommandMetadata.LoadFromModule(manifest), HelpSource.LoadDirectory(sources));
    }

    /// <summary>
    /// Generates MAML for every command that has a help source; a command without one is skipped and named in
    /// <see cref="MamlGeneration.Undocumented"/>. Problems (an undocumented parameter, a help source for a command or
    /// parameter that does not exist, fewer than two examples) are reported, never fatal.
    /// </summary>
    public static MamlGeneration Generate(IReadOnlyList<CommandMetadata> commands, IReadOnlyList<HelpSource> sources)
    {
        var problems = new List<string>();
        var undocumented = new List<string>();
        var byName = sources.GroupBy(s => s.CommandName, StringComparer.OrdinalIgnoreCase).ToDictionary(g => g.Key, g => g.First(), StringComparer.OrdinalIgnoreCase);
        foreach (var s in sources)
        {
            foreach (var p in s.Problems) problems.Add($"{Path.GetFileName(s.FilePath)}: {p}");
            if (!commands.Any(c => string.Equals(c.Name, s.CommandName, StringComparison.OrdinalIgnoreCase)))
                problems.Add($"{Path.GetFileName(s.FilePath)}: no exported cmdlet '{s.CommandName}' (help source for a command the module does not export)");
        }

        var settings = new XmlWriterSettings
        {
            Indent = true, IndentChars = "  ", NewLineChars = "\n", NewLineHandling = NewLineHandling.Replace,
            Encoding = new UTF8Encoding(false), OmitXmlDeclaration = false,
        };
        using var buffer = new MemoryStream();
        using (var w = XmlWriter.Create(buffer, settings))
        {
            w.WriteStartDocument();
            w.WriteStartElement("helpItems", MshNs);
            w.WriteAttributeString("schema", "maml");
            foreach (var command in commands.OrderBy(c => c.Name, StringComparer.Ordinal))
            {
                if (!byName.TryGetValue(command.Name, out var source))
                {
                    undocumented.Add(command.Name);
                    problems.Add($"{command.Name}: no help source docs/help/{command.Name}.md (skipped)");
                    continue;
                }
                CheckSource(command, source, problems);
                WriteCommand(w, command, source);
            }
            w.WriteEndElement();
            w.WriteEndDocument();
        }
        var xml = new UTF8Encoding(false).GetString(buffer.ToArray()) + "\n";
        return new MamlGeneration(xml, problems, undocumented);
    }

    static void CheckSource(CommandMetadata command, HelpSource source, List<string> problems)
    {
        var file = Path.GetFileName(source.FilePath);
        if (string.IsNullOrWhiteSpace(source.Synopsis)) problems.Add($"{file}: no SYNOPSIS");
        if (source.Description.Count == 0) problems.Add($"{file}: no DESCRIPTION");
        if (source.Examples.Count < 2) problems.Add($"{file}: {source.Examples.Count} example(s); at least two are needed");
        foreach (var p in command.Parameters.Where(p => !p.IsRiskMitigation))
            if (source.ParameterText(p.Name) is not { Count: > 0 }) problems.Add($"{file}: parameter -{p.Name} has no text");
        foreach (var (name, _) in source.Parameters)
            if (!command.Parameters.Any(p => string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase)))
                problems.Add($"{file}: documents -{name}, which {command.Name} does not have");
        var documentedOutputs = source.Outputs.Select(o => o.TypeName).Where(t => t != "None").ToList();
        foreach (var t in command.OutputTypes.Except(documentedOutputs, StringComparer.Ordinal))
            problems.Add($"{file}: OUTPUTS does not list {t}, which [OutputType] declares");
        foreach (var t in documentedOutputs.Except(command.OutputTypes, StringComparer.Ordinal))
            problems.Add($"{file}: OUTPUTS lists {t}, which [OutputType] does not declare");
    }

    static void WriteCommand(XmlWriter w, CommandMetadata command, HelpSource source)
    {
        w.WriteStartElement("command", "command", CommandNs);
        w.WriteAttributeString("xmlns", "maml", null, MamlNs);
        w.WriteAttributeString("xmlns", "command", null, CommandNs);
        w.WriteAttributeString("xmlns", "dev", null, DevNs);
        w.WriteAttributeString("xmlns", "MSHelp", null, MsHelpNs);

        w.WriteStartElement("command", "details", CommandNs);
        w.WriteElementString("command", "name", CommandNs, command.Name);
        w.WriteElementString("command", "verb", CommandNs, command.Verb);
        w.WriteElementString("command", "noun", CommandNs, command.Noun);
        Paras(w, "maml", "description", MamlNs, [source.Synopsis]);
        w.WriteEndElement();

        Paras(w, "maml", "description", MamlNs, source.Description);

        w.WriteStartElement("command", "syntax", CommandNs);
        foreach (var set in command.ParameterSets)
        {
            w.WriteStartElement("command", "syntaxItem", CommandNs);
            w.WriteElementString("maml", "name", MamlNs, command.Name);
            foreach (var use in SyntaxOrder(set, source))
            {
                var p = command.Parameters.First(x => x.Name == use.Name);
                WriteParameter(w, p, use.Mandatory, use.Position, PipelineText(use.ByValue, use.ByPropertyName), description: null, inSyntax: true);
            }
            w.WriteEndElement();
        }
        w.WriteEndElement();

        w.WriteStartElement("command", "parameters", CommandNs);
        foreach (var p in ParameterOrder(command, source))
        {
            var uses = command.ParameterSets.SelectMany(s => s.Parameters).Where(u => u.Name == p.Name).ToList();
            bool mandatory = uses.Count > 0 && uses.All(u => u.Mandatory);
            int? position = uses.Select(u => u.Position).FirstOrDefault(x => x is not null);
            var text = p.IsRiskMitigation ? [riskMitigationText[p.Name]] : source.ParameterText(p.Name) ?? Array.Empty<string>();
            WriteParameter(w, p, mandatory, position, PipelineText(uses.Any(u => u.ByValue), uses.Any(u => u.ByPropertyName)), text, inSyntax: false);
        }
        w.WriteEndElement();

        WriteTypes(w, "inputTypes", "inputType", source.Inputs);
        WriteTypes(w, "returnValues", "returnValue", source.Outputs);

        if (source.Notes.Count > 0)
        {
            w.WriteStartElement("maml", "alertSet", MamlNs);
            w.WriteStartElement("maml", "alert", MamlNs);
            foreach (var n in source.Notes) w.WriteElementString("maml", "para", MamlNs, n);
            w.WriteEndElement();
            w.WriteEndElement();
        }

        w.WriteStartElement("command", "examples", CommandNs);
        foreach (var e in source.Examples)
        {
            w.WriteStartElement("command", "example", CommandNs);
            w.WriteElementString("maml", "title", MamlNs, $"-------------------------- {e.Title} --------------------------");
            w.WriteElementString("dev", "code", DevNs, e.Code);
            Paras(w, "dev", "remarks", DevNs, e.Remarks);
            w.WriteEndElement();
        }
        w.WriteEndElement();

        w.WriteStartElement("maml", "relatedLinks", MamlNs);
        foreach (var link in source.RelatedLinks)
        {
            w.WriteStartElement("maml", "navigationLink", MamlNs);
            w.WriteElementString("maml", "linkText", MamlNs, link.Text);
            w.WriteElementString("maml", "uri", MamlNs, link.Uri);
            w.WriteEndElement();
        }
        w.WriteEndElement();

        w.WriteEndElement();
    }

    // Positional parameters by position, then mandatory ones, then the rest in the help source's order, WhatIf and Confirm last.
    static IEnumerable<ParameterUse> SyntaxOrder(ParameterSetMetadata set, HelpSource source)
    {
        int Rank(ParameterUse u)
        {
            if (u.Name == "WhatIf") return int.MaxValue - 1;
            if (u.Name == "Confirm") return int.MaxValue;
            var i = source.Parameters.Select(p => p.Key).ToList().FindIndex(k => string.Equals(k, u.Name, StringComparison.OrdinalIgnoreCase));
            return i < 0 ? int.MaxValue - 2 : i;
        }
        return set.Parameters
            .OrderBy(u => u.Position ?? int.MaxValue)
            .ThenBy(u => u.Mandatory ? 0 : 1)
            .ThenBy(Rank)
            .ThenBy(u => u.Name, StringComparer.Ordinal);
    }

    // The help source's order first (authors order parameters by importance), then any it missed, then WhatIf/Confirm.
    static IEnumerable<ParameterMetadataInfo> ParameterOrder(CommandMetadata command, HelpSource source)
    {
        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var (name, _) in source.Parameters)
            if (command.Parameters.FirstOrDefault(p => string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase) && !p.IsRiskMitigation) is { } p && seen.Add(p.Name))
                yield return p;
        foreach (var p in command.Parameters.Where(p => !p.IsRiskMitigation && !seen.Contains(p.Name))) yield return p;
        foreach (var p in command.Parameters.Where(p => p.IsRiskMitigation).OrderBy(p => p.Name == "WhatIf" ? 0 : 1)) yield return p;
    }

    static string PipelineText(bool byValue, bool byPropertyName) => (byValue, byPropertyName) switch
    {
        (true, true) => "True (ByValue, ByPropertyName)",
        (true, false) => "True (ByValue)",
        (false, true) => "True (ByPropertyName)",
        _ => "False",
    };

    static void WriteParameter(XmlWriter w, ParameterMetadataInfo p, bool mandatory, int? position, string pipeline,
        IReadOnlyList<string>? description, bool inSyntax)
    {
        w.WriteStartElement("command", "parameter", CommandNs);
        w.WriteAttributeString("required", mandatory ? "true" : "false");
        w.WriteAttributeString("variableLength", p.IsArray ? "true" : "false");
        w.WriteAttributeString("globbing", p.Globbing ? "true" : "false");
        w.WriteAttributeString("pipelineInput", pipeline);
        w.WriteAttributeString("position", position?.ToString(CultureInfo.InvariantCulture) ?? "named");
        w.WriteAttributeString("aliases", p.Aliases.Count == 0 ? "none" : string.Join(", ", p.Aliases));
        w.WriteElementString("maml", "name", MamlNs, p.Name);
        if (!inSyntax) Paras(w, "maml", "description", MamlNs, description ?? Array.Empty<string>());
        if (inSyntax && p.AllowedValues.Count > 0)
        {
            w.WriteStartElement("command", "parameterValueGroup", CommandNs);
            foreach (var v in p.AllowedValues)
            {
                w.WriteStartElement("command", "parameterValue", CommandNs);
                w.WriteAttributeString("required", "false");
                w.WriteAttributeString("command", "variableLength", CommandNs, "false");
                w.WriteString(v);
                w.WriteEndElement();
            }
            w.WriteEndElement();
        }
        else if (!(inSyntax && p.IsSwitch))
        {
            w.WriteStartElement("command", "parameterValue", CommandNs);
            w.WriteAttributeString("required", p.IsSwitch ? "false" : "true");
            w.WriteAttributeString("variableLength", p.IsArray ? "true" : "false");
            w.WriteString(p.ShortTypeName);
            w.WriteEndElement();
        }
        w.WriteStartElement("dev", "type", DevNs);
        w.WriteElementString("maml", "name", MamlNs, p.TypeName);
        w.WriteElementString("maml", "uri", MamlNs, "");
        w.WriteEndElement();
        w.WriteElementString("dev", "defaultValue", DevNs, p.DefaultValue);
        w.WriteEndElement();
    }

    static void WriteTypes(XmlWriter w, string outer, string inner, IReadOnlyList<HelpType> types)
    {
        w.WriteStartElement("command", outer, CommandNs);
        foreach (var t in types)
        {
            w.WriteStartElement("command", inner, CommandNs);
            w.WriteStartElement("dev", "type", DevNs);
            w.WriteElementString("maml", "name", MamlNs, t.TypeName);
            w.WriteEndElement();
            Paras(w, "maml", "description", MamlNs, t.Description);
            w.WriteEndElement();
        }
        w.WriteEndElement();
    }

    static void Paras(XmlWriter w, string prefix, string name, string ns, IReadOnlyList<string> paragraphs)
    {
        w.WriteStartElement(prefix, name, ns);
        foreach (var p in paragraphs.Where(p => p.Length > 0)) w.WriteElementString("maml", "para", MamlNs, p);
        w.WriteEndElement();
    }
}
