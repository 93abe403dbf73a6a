using System.Text;
using System.Text.RegularExpressions;

namespace SafeDeploy.HelpGen;

/// <summary>One example of a help source: a title, the code, and the paragraphs that explain it.</summary>
public sealed record HelpExample(string Title, string Code, IReadOnlyList<string> Remarks);

/// <summary>A documented input or output type.</summary>
public sealed record HelpType(string TypeName, IReadOnlyList<string> Description);

/// <summary>A related link: text, and a URI when the source gives one.</summary>
public sealed record HelpLink(string Text, string Uri);

/// <summary>The readable help source of one cmdlet, parsed from docs/help/&lt;Verb-Noun&gt;.md (format: docs/help/README.md).</summary>
public sealed record HelpSource
{
    public required string CommandName { get; init; }
    public required string FilePath { get; init; }
    public string Synopsis { get; init; } = "";
    public IReadOnlyList<string> Description { get; init; } = Array.Empty<string>();
    /// <summary>Parameter name (without the dash) to its paragraphs, in the order the source lists them.</summary>
    public IReadOnlyList<KeyValuePair<string, IReadOnlyList<string>>> Parameters { get; init; } = Array.Empty<KeyValuePair<string, IReadOnlyList<string>>>();
    public IReadOnlyList<HelpExample> Examples { get; init; } = Array.Empty<HelpExample>();
    public IReadOnlyList<HelpType> Inputs { get; init; } = Array.Empty<HelpType>();
    public IReadOnlyList<HelpType> Outputs { get; init; } = Array.Empty<HelpType>();
    public IReadOnlyList<string> Notes { get; init; } = Array.Empty<string>();
    public IReadOnlyList<HelpLink> RelatedLinks { get; init; } = Array.Empty<HelpLink>();
    /// <summary>What is wrong with the source's shape (unknown sections, a heading out of place).</summary>
    public IReadOnlyList<string> Problems { get; init; } = Array.Empty<string>();

    public IReadOnlyList<string>? ParameterText(string name) =>
        Parameters.FirstOrDefault(p => string.Equals(p.Key, name, StringComparison.OrdinalIgnoreCase)).Value;

    /// <summary>Reads every docs/help/*.md except README.md, ordered by command name.</summary>
    public static IReadOnlyList<HelpSource> LoadDirectory(string directory) =>
        Directory.GetFiles(directory, "*.md")
            .Where(f => !string.Equals(Path.GetFileName(f), "README.md", StringComparison.OrdinalIgnoreCase))
            .OrderBy(f => Path.GetFileName(f), StringComparer.Ordinal)
            .Select(f => Parse(File.ReadAllText(f), f))
            .ToList();

    static readonly string[] Continuable = ["PARAMETERS", "EXAMPLES", "OUTPUTS", "NOTES"];
    static readonly string[] KnownSections = ["SYNOPSIS", "DESCRIPTION", "PARAMETERS", "EXAMPLES", "INPUTS", "OUTPUTS", "NOTES", "RELATED LINKS"];

    /// <summary>Parses one help source. Headings inside fenced code blocks are code, not headings.</summary>
    public static HelpSource Parse(string markdown, string filePath)
    {
        var problems = new List<string>();
        var lines = markdown.Replace("\r\n", "\n").Split('\n');
        string? title = null;
        // section -> list of (subheading or null, body lines)
        var sections = new Dictionary<string, List<(string? Sub, List<string> Body)>>(StringComparer.Ordinal);
        List<(string? Sub, List<string> Body)>? currentSection = null;
        List<string>? body = null;
        bool inFence = false;
        for (int i = 0; i < lines.Length; i++)
        {
            var line = lines[i];
            if (line.TrimStart().StartsWith("```", StringComparison.Ordinal)) inFence = !inFence;
            else if (!inFence && line.StartsWith("# ", StringComparison.Ordinal))
            {
                if (title is not null) problems.Add($"line {i + 1}: a second '# ' title");
                title = line[2..].Trim();
                body = null;
                continue;
            }
            else if (!inFence && line.StartsWith("## ", StringComparison.Ordinal))
            {
                var name = line[3..].Trim().ToUpperInvariant();
                if (!KnownSections.Contains(name)) problems.Add($"line {i + 1}: unknown section '## {line[3..].Trim()}'");
                if (sections.TryGetValue(name, out var earlier) && Continuable.Contains(name))
                {
                    // A later block continues the section (the fleet parameters of Invoke-SafeDeploy are appended in a block of their own).
                    currentSection = earlier;
                    body = earlier[0].Body;
                    continue;
                }
                if (sections.ContainsKey(name)) problems.Add($"line {i + 1}: section '## {name}' appears twice");
                currentSection = new List<(string?, List<string>)> { (null, new List<string>()) };
                sections[name] = currentSection;
                body = currentSection[0].Body;
                continue;
            }
            else if (!inFence && line.StartsWith("### ", StringComparison.Ordinal))
            {
                if (currentSection is null) { problems.Add($"line {i + 1}: '### ' heading outside a section"); continue; }
                var entry = (line[4..].Trim(), new List<string>());
                currentSection.Add(entry);
                body = entry.Item2;
                continue;
            }
            body?.Add(line);
        }
        if (inFence) problems.Add("a fenced code block is not closed");
        var commandName = title ?? Path.GetFileNameWithoutExtension(filePath);
        if (title is null) problems.Add("no '# Verb-Noun' title");
        else if (!string.Equals(title, Path.GetFileNameWithoutExtension(filePath), StringComparison.Ordinal))
            problems.Add($"title '{title}' does not match the file name '{Path.GetFileName(filePath)}'");

        List<(string? Sub, List<string> Body)> Section(string name) => sections.TryGetValue(name, out var s) ? s : new();
        IEnumerable<(string Sub, List<string> Body)> Subsections(string name) =>
            Section(name).Where(s => s.Sub is not null).Select(s => (s.Sub!, s.Body));
        void NoLooseText(string name)
        {
            var loose = Section(name).FirstOrDefault(s => s.Sub is null);
            if (loose.Body is not null && loose.Body.Any(l => l.Trim().Length > 0))
                problems.Add($"section '## {name}' has text before its first '### ' heading");
        }

        var parameters = new List<KeyValuePair<string, IReadOnlyList<string>>>();
        NoLooseText("PARAMETERS");
        foreach (var (sub, lines2) in Subsections("PARAMETERS"))
        {
            if (!sub.StartsWith('-')) { problems.Add($"parameter heading '### {sub}' must start with '-'"); continue; }
            parameters.Add(new(sub[1..].Trim(), Paragraphs(lines2)));
        }

        var examples = new List<HelpExample>();
        NoLooseText("EXAMPLES");
        foreach (var (sub, lines2) in Subsections("EXAMPLES"))
            examples.Add(ParseExample(sub, lines2, problems));

        List<HelpType> Types(string name)
        {
            NoLooseText(name);
            return Subsections(name).Select(s => new HelpType(s.Sub, Paragraphs(s.Body))).ToList();
        }

        var links = new List<HelpLink>();
        foreach (var l in Section("RELATED LINKS").SelectMany(s => s.Body).Select(l => l.Trim()).Where(l => l.Length > 0))
        {
            var item = Regex.Replace(l, @"^[-*]\s+", "");
            var md = Regex.Match(item, @"^\[(?<text>[^\]]+)\]\((?<uri>[^)]*)\)$");
            links.Add(md.Success ? new HelpLink(md.Groups["text"].Value, md.Groups["uri"].Value) : new HelpLink(item, ""));
        }

        return new HelpSource
        {
            CommandName = commandName,
            FilePath = filePath,
            Synopsis = string.Join(" ", Paragraphs(Section("SYNOPSIS").SelectMany(s => s.Body).ToList())),
            Description = Paragraphs(Section("DESCRIPTION").SelectMany(s => s.Body).ToList()),
            Parameters = parameters,
            Examples = examples,
            Inputs = Types("INPUTS"),
            Outputs = Types("OUTPUTS"),
            Notes = Paragraphs(Section("NOTES").SelectMany(s => s.Body).ToList()),
            RelatedLinks = links,
            Problems = problems,
        };
    }

    static HelpExample ParseExample(string heading, List<string> lines, List<string> problems)
    {
        var title = heading;
        int fenceStart = lines.FindIndex(l => l.TrimStart().StartsWith("```", StringComparison.Ordinal));
        if (fenceStart < 0)
        {
            problems.Add($"example '{heading}' has no fenced code block");
            return new HelpExample(title, "", Paragraphs(lines));
        }
        int fenceEnd = lines.FindIndex(fenceStart + 1, l => l.TrimStart().StartsWith("```", StringComparison.Ordinal));
        if (fenceEnd < 0) fenceEnd = lines.Count;
        var before = lines.Take(fenceStart).Where(l => l.Trim().Length > 0).ToList();
        if (before.Count > 0) problems.Add($"example '{heading}' has text before its code block");
        var code = string.Join("\n", lines.Skip(fenceStart + 1).Take(fenceEnd - fenceStart - 1)).TrimEnd();
        var remarks = Paragraphs(lines.Skip(fenceEnd + 1).ToList());
        return new HelpExample(title, code, remarks);
    }

    /// <summary>
    /// Markdown blocks to help paragraphs: ordinary lines of a paragraph are joined with spaces, each list item is
    /// its own paragraph, and a fenced code block is kept verbatim as one paragraph.
    /// </summary>
    public static IReadOnlyList<string> Paragraphs(IReadOnlyList<string> lines)
    {
        var result = new List<string>();
        var current = new StringBuilder();
        void Flush()
        {
            if (current.Length > 0) result.Add(current.ToString().Trim());
            current.Clear();
        }
        for (int i = 0; i < lines.Count; i++)
        {
            var line = lines[i];
            var trimmed = line.Trim();
            if (trimmed.StartsWith("```", StringComparison.Ordinal))
            {
                Flush();
                var code = new List<string>();
                for (i++; i < lines.Count && !lines[i].Trim().StartsWith("```", StringComparison.Ordinal); i++) code.Add(lines[i]);
                var text = string.Join("\n", code).TrimEnd();
                if (text.Length > 0) result.Add(text);
                continue;
            }
            if (trimmed.Length == 0) { Flush(); continue; }
            if (Regex.IsMatch(trimmed, @"^([-*]|\d+\.)\s+")) Flush();
            if (current.Length > 0) current.Append(' ');
            current.Append(trimmed);
        }
        Flush();
        return result;
    }
}
