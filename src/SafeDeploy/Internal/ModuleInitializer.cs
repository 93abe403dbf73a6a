using System.Management.Automation;
using System.Reflection;
using System.Runtime.Loader;

namespace SafeDeploy.Internal;

/// <summary>
/// Loads the engine and its third-party dependencies (YamlDotNet, CliWrap) into a private load context from the
/// module's Dependencies folder, so another module's copy of them in the same PowerShell session cannot clash.
/// </summary>
public sealed class ModuleInitializer : IModuleAssemblyInitializer, IModuleAssemblyCleanup
{
    static readonly string dependencyDirectory =
        Path.Combine(Path.GetDirectoryName(typeof(ModuleInitializer).Assembly.Location)!, "Dependencies");
    static readonly DependencyLoadContext context = new(dependencyDirectory);

    public void OnImport() => AssemblyLoadContext.Default.Resolving += ResolveEngine;

    public void OnRemove(PSModuleInfo module) => AssemblyLoadContext.Default.Resolving -= ResolveEngine;

    // Only the engine is resolved from the default context; everything it needs then loads inside the private one.
    static Assembly? ResolveEngine(AssemblyLoadContext _, AssemblyName name) =>
        name.Name == "SafeDeploy.Engine" ? context.LoadFromAssemblyName(name) : null;
}

sealed class DependencyLoadContext(string directory) : AssemblyLoadContext("SafeDeploy.Dependencies")
{
    protected override Assembly? Load(AssemblyName name)
    {
        var candidate = Path.Combine(directory, name.Name + ".dll");
        return File.Exists(candidate) ? LoadFromAssemblyPath(candidate) : null;
    }
}
