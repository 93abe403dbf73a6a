using SafeDeploy.Tests.Infrastructure;

namespace SafeDeploy.Tests.Deployment;

/// <summary>A deployment sandbox: a -Root directory, a state directory and manifests, all under one TempDir.</summary>
public sealed class Sandbox : IDisposable
{
    readonly TempDir dir = new("deploy");

    public Sandbox()
    {
        Directory.CreateDirectory(Root);
        Directory.CreateDirectory(State);
    }

    public string Path => dir.Path;
    public string Root => dir["root"];
    public string State => dir["state"];
    public string this[string relative] => dir[relative];

    /// <summary>A file inside the sandbox root at an absolute path as the manifest names it ("/etc/app.conf").</summary>
    public string InRoot(string absolute) => System.IO.Path.Join(Root, absolute);

    public string Write(string relative, string content) => dir.Write(relative, content);

    public string WriteInRoot(string absolute, string content)
    {
        var p = InRoot(absolute);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(p)!);
        File.WriteAllText(p, content);
        return p;
    }

    /// <summary>Every file (bytes and mode) and directory under the root, for byte-for-byte comparisons.</summary>
    public SortedDictionary<string, string> Snapshot()
    {
        var map = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var d in Directory.GetDirectories(Root, "*", SearchOption.AllDirectories))
            map[System.IO.Path.GetRelativePath(Root, d) + "/"] = "dir";
        foreach (var f in Directory.GetFiles(Root, "*", SearchOption.AllDirectories))
            map[System.IO.Path.GetRelativePath(Root, f)] = $"{Convert.ToHexString(File.ReadAllBytes(f))} mode {Convert.ToString((int)File.GetUnixFileMode(f), 8)}";
        return map;
    }

    public static string Describe(IDictionary<string, string> snapshot) => string.Join("\n", snapshot.Select(kv => $"{kv.Key}: {kv.Value}"));

    public void Dispose() => dir.Dispose();
}
