using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.Meta;

/// <summary>The shape CONTRIBUTING.md promises a reader of src/: rooms small enough to read, and no loop between them.</summary>
public class SourceLayoutTests
{
    const int MaxLines = 300;

    static IEnumerable<string> Sources(string under) =>
        Directory.EnumerateFiles(Path.Combine(RepoPaths.Root, "src", under), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                     && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal));

    [Fact]
    public void NoSourceFile_IsLongerThan300Lines()
    {
        var files = Sources(".").ToList();
        Assert.NotEmpty(files);
        var tooLong = files.Select(f => (File: Path.GetRelativePath(RepoPaths.Root, f), Lines: File.ReadLines(f).Count()))
            .Where(x => x.Lines > MaxLines).Select(x => $"{x.File}: {x.Lines} lines").ToList();
        Assert.True(tooLong.Count == 0,
            $"Split these along their concerns (a partial class per concern, or a type per file; CONTRIBUTING.md says where each kind of change goes):\n{string.Join("\n", tooLong)}");
    }

    [Fact]
    public void Actions_DoNotUseTheManifest_WhichParsesThem()
    {
        var actions = Sources(Path.Combine("SafeDeploy.Engine", "Actions")).ToList();
        Assert.NotEmpty(actions);
        var loops = actions.Where(f => File.ReadAllText(f).Contains("SafeDeploy.Engine.Manifest", StringComparison.Ordinal))
            .Select(f => Path.GetRelativePath(RepoPaths.Root, f)).ToList();
        Assert.True(loops.Count == 0,
            $"Manifest/ parses action nodes into actions; an action that reads the manifest's types makes a loop. Pass the values it needs instead:\n{string.Join("\n", loops)}");
    }
}
