using SafeDeploy.Engine.Actions;
using SafeDeploy.Engine.Manifest;
using Xunit;

namespace SafeDeploy.Tests.Deployment;

/// <summary>${var} positions in every scalar style, ${var:q} shell quoting, and the unquoted-variable warning.</summary>
public class VariableTests
{
    static ManifestParseResult Parse(string text, Dictionary<string, string>? vars = null) => new ManifestParser().Parse(text, "/m/deploy.yaml", vars);

    [Fact]
    public void UndefinedVariables_EachGetTheirOwnExactColumn_InPlainQuotedLiteralAndFoldedScalars()
    {
        const string text =
            "name: pos\n" +                                                   // 1
            "phases:\n" +                                                     // 2
            "  - name: plain\n" +                                             // 3
            "    run: echo ${a} and ${b}\n" +                                 // 4  cols 15, 24
            "  - name: single\n" +                                            // 5
            "    run: 'it''s ${a} ${b}'\n" +                                  // 6  cols 17, 22
            "  - name: double\n" +                                            // 7
            "    run: \"say \\\"${a}\\\" ${b}\"\n" +                          // 8  cols 17, 24
            "  - name: literal\n" +                                           // 9
            "    run: |\n" +                                                  // 10
            "      first ${a}\n" +                                            // 11 col 13
            "        second ${b}\n" +                                         // 12 col 16
            "  - name: folded\n" +                                            // 13
            "    run: >-\n" +                                                 // 14
            "      one ${a}\n" +                                              // 15 col 11
            "      two ${b} ${a}\n";                                          // 16 cols 11, 16
        var found = Parse(text).Problems.Where(p => p.Code == "UndefinedVariable").Select(p => (p.Line, p.Column)).ToList();
        var expected = new[] { (4, 15), (4, 24), (6, 17), (6, 22), (8, 17), (8, 24), (11, 13), (12, 16), (15, 11), (16, 11), (16, 16) };
        Assert.Equal(expected.Order(), found.Order());
    }

    [Fact]
    public void QuotedVariables_StayOneShellWord_AndUnquotedOnesInShellLinesAreWarnedAbout()
    {
        var r = Parse("""
            name: quoting
            variables:
              dir: "/srv/it's here; rm -rf /"
            phases:
              - name: safe
                run: ls ${dir:q}
              - name: unsafe
                run: ls "${dir}"
              - name: list
                run: [ls, "${dir}"]
            """);
        Assert.True(r.IsValid, string.Join("\n", r.Problems));
        var safe = (RunAction)r.Manifest!.Phase("safe").Action;
        Assert.Equal("ls '/srv/it'\\''s here; rm -rf /'", safe.Command.CommandLine);
        var warning = Assert.Single(r.Problems, p => p.Code == "UnquotedVariable");
        Assert.Equal(ProblemSeverity.Warning, warning.Severity);
        Assert.Equal("unsafe", warning.Phase);
        Assert.Contains("${dir:q}", warning.Message);
        var list = (RunAction)r.Manifest.Phase("list").Action;
        Assert.Equal(["ls", "/srv/it's here; rm -rf /"], list.Command.Arguments!);
    }

    [Fact]
    public void AQuotedValue_RunsAsOneWord_ThroughTheShell()
    {
        var r = Parse("name: q\nvariables:\n  v: \"a b'c\"\nphases:\n  - name: p\n    run: printf '%s|' ${v:q}\n");
        var line = ((RunAction)r.Manifest!.Phase("p").Action).Command.CommandLine!;
        var psi = new System.Diagnostics.ProcessStartInfo("/bin/sh", ["-c", line]) { RedirectStandardOutput = true };
        using var p = System.Diagnostics.Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEnd();
        Assert.True(p.WaitForExit(10_000));
        Assert.Equal("a b'c|", output);
    }
}
