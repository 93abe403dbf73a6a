using System.Reflection;
using System.Runtime.Loader;

namespace SafeDeploy.Host;

/// <summary>
/// safedeploy -FleetStep: one rollout step on this host, read as JSON from standard input, run by the module's engine
/// without starting PowerShell (SafeDeploy.Engine.Fleet.HostStep). The engine and its dependencies load from the module's
/// bin/Dependencies folder into a load context of their own, as the module itself loads them.
/// </summary>
static class FleetStep
{
    public static int Run(string modulePsd1)
    {
        var dependencies = Path.Combine(Path.GetDirectoryName(modulePsd1)!, "bin", "Dependencies");
        var engine = new EngineLoadContext(dependencies).LoadFromAssemblyPath(Path.Combine(dependencies, "SafeDeploy.Engine.dll"));
        var run = engine.GetType("SafeDeploy.Engine.Fleet.HostStep", throwOnError: true)!
            .GetMethod("Run", BindingFlags.Public | BindingFlags.Static, [typeof(TextReader), typeof(TextWriter), typeof(string)])
            ?? throw new MissingMethodException("SafeDeploy.Engine.Fleet.HostStep", "Run");
        return (int)run.Invoke(null, [Console.In, Console.Out, modulePsd1])!;
    }

    sealed class EngineLoadContext(string directory) : AssemblyLoadContext("SafeDeploy.Engine")
    {
        protected override Assembly? Load(AssemblyName name)
        {
            var candidate = Path.Combine(directory, name.Name + ".dll");
            return File.Exists(candidate) ? LoadFromAssemblyPath(candidate) : null;
        }
    }
}
