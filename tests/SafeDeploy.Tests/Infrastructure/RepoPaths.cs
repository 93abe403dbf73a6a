namespace SafeDeploy.Tests.Infrastructure;

/// <summary>Where the checkout, the built module and the host executable are.</summary>
public static class RepoPaths
{
    public static readonly string Root = FindRoot();
    public static string ModuleManifest => Path.Combine(Root, "SafeDeploy.psd1");
    /// <summary>Debug or Release: the same configuration this test assembly was built in.</summary>
    public static string Configuration => new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent!.Name;
    public static string HostExecutable => Path.Combine(Root, "src", "SafeDeploy.Host", "bin", Configuration, "net10.0", "safedeploy");
    public static string Fixtures => Path.Combine(Root, "tests", "fixtures");

    static string FindRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "SafeDeploy.psd1"))) return d.FullName;
        throw new InvalidOperationException("Cannot find the checkout root (SafeDeploy.psd1) above " + AppContext.BaseDirectory);
    }
}
