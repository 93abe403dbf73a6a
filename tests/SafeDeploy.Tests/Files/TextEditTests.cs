using System.Collections;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Files;
using Xunit;

namespace SafeDeploy.Tests.Files;

public class TextEditTests
{
    [Theory]
    [InlineData(null, "a=1", null, "a=1\n")]
    [InlineData("", "a=1", null, "a=1\n")]
    [InlineData("x=1", "a=1", null, "x=1\na=1\n")]
    [InlineData("x=1\na=1\n", "a=1", null, "x=1\na=1\n")]
    [InlineData("x=1\na=0\ny=2\na=9\n", "a=1", "a=", "x=1\na=1\ny=2\n")]
    [InlineData("x=1\n", "a=1", "a=", "x=1\na=1\n")]
    public void EnsureLine_ReplacesOrAppends(string? text, string line, string? key, string expected) =>
        Assert.Equal(expected, TextEdits.EnsureLine(text, line, key));

    [Fact]
    public void MergeJson_DeepMerges_AndKeepsOtherKeysInOrder()
    {
        var result = TextEdits.MergeJson("{\"a\":1,\"n\":{\"x\":1,\"y\":2},\"z\":[1]}",
            new Hashtable { ["n"] = new Hashtable { ["y"] = 3, ["w"] = true }, ["b"] = "s" }, "f.json");
        Assert.Equal("{\n  \"a\": 1,\n  \"n\": {\n    \"x\": 1,\n    \"y\": 3,\n    \"w\": true\n  },\n  \"z\": [\n    1\n  ],\n  \"b\": \"s\"\n}\n", result);
    }

    [Fact]
    public void MergeJson_OfATopLevelArray_IsInvalidData()
    {
        var e = Assert.Throws<SafeDeployException>(() => TextEdits.MergeJson("[1,2]", new Hashtable { ["a"] = 1 }, "f.json"));
        Assert.Equal("JsonNotAnObject", e.ErrorId);
        Assert.Equal(ErrorKind.InvalidData, e.Kind);
    }

    [Fact]
    public void TextDiff_ShowsRemovedAndAddedLines()
    {
        var d = TextDiff.Lines("a\nb\nc\n", "a\nB\nc\n");
        Assert.Contains("- b", d);
        Assert.Contains("+ B", d);
    }
}
