using SafeDeploy.HelpGen;

// dotnet run --project tools/HelpGen [-- -check] [-- -strict]
//   writes en-US/SafeDeploy.dll-Help.xml from docs/help/*.md and the built module;
//   -check: writes nothing, exits 1 when the committed file differs from what would be generated;
//   -strict: exits 1 when any exported cmdlet lacks help or any help source has a problem.
bool check = args.Contains("-check", StringComparer.OrdinalIgnoreCase);
bool strict = args.Contains("-strict", StringComparer.OrdinalIgnoreCase);

var root = FindRoot(Directory.GetCurrentDirectory()) ?? FindRoot(AppContext.BaseDirectory);
if (root is null)
{
    Console.Error.WriteLine("HelpGen: cannot find the checkout (a directory holding SafeDeploy.psd1) above the current directory.");
    return 2;
}

var (_, _, output) = MamlGenerator.PathsFor(root);
var result = MamlGenerator.GenerateForRepository(root);
foreach (var problem in result.Problems) Console.Error.WriteLine("warning: " + problem);

var current = File.Exists(output) ? File.ReadAllText(output) : null;
if (check)
{
    if (current == result.Xml) { Console.WriteLine($"{output} is current."); return strict && result.Problems.Count > 0 ? 1 : 0; }
    Console.Error.WriteLine($"{output} is stale: run {MamlGenerator.RegenerateCommand}");
    return 1;
}
if (current != result.Xml)
{
    Directory.CreateDirectory(Path.GetDirectoryName(output)!);
    File.WriteAllText(output, result.Xml);
    Console.WriteLine($"wrote {output}");
}
else Console.WriteLine($"{output} is already current.");
return strict && result.Problems.Count > 0 ? 1 : 0;

static string? FindRoot(string start)
{
    for (var d = new DirectoryInfo(start); d is not null; d = d.Parent)
        if (File.Exists(Path.Combine(d.FullName, "SafeDeploy.psd1"))) return d.FullName;
    return null;
}
