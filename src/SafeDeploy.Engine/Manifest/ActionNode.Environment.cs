using SafeDeploy.Engine.Platform;
using YamlDotNet.RepresentationModel;

namespace SafeDeploy.Engine.Manifest;

internal sealed partial class ActionNode
{
    /// <summary>
    /// The <c>environment:</c> (names to ${var}-expanded values) and <c>inheritEnvironment:</c> (true, false, or a list of
    /// names and PREFIX_* entries) of this mapping; null when neither key is present. Bad names are recorded at their node.
    /// </summary>
    public EnvironmentSpec? EnvironmentSpec()
    {
        var env = Get("environment");
        var inheritNode = Get("inheritEnvironment");
        if (env is null && inheritNode is null) return null;
        Dictionary<string, string>? variables = null;
        if (env is YamlMappingNode map)
        {
            variables = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var (k, v) in map.Children)
            {
                var name = (k as YamlScalarNode)?.Value ?? "";
                if (ProcessEnvironment.ValidateName(name) is { } problem) { Error(problem, k); continue; }
                if (reader.ScalarText(v, name, Phase) is { } text) variables[name] = text;
            }
        }
        else if (env is not null && !(env is YamlScalarNode { Value: null or "" }))
            Error("'environment' must be a mapping of variable names to values.", env);
        EnvironmentInheritance? inherit = null;
        if (inheritNode is YamlScalarNode s && s.Value is "true" or "false")
            inherit = s.Value == "true" ? EnvironmentInheritance.Everything : EnvironmentInheritance.Nothing;
        else if (inheritNode is YamlSequenceNode seq)
        {
            var names = new List<string>();
            foreach (var item in seq.Children)
            {
                if (reader.ScalarText(item, "inheritEnvironment item", Phase) is not { } entry) continue;
                if (ProcessEnvironment.ValidateInheritEntry(entry) is { } problem) Error(problem, item);
                else names.Add(entry);
            }
            inherit = EnvironmentInheritance.Of(names);
        }
        else if (inheritNode is not null)
            Error("'inheritEnvironment' must be true, false, or a list of variable names (a trailing '*' matches a prefix, e.g. NCCL_*).", inheritNode);
        return new EnvironmentSpec(variables, inherit);
    }
}
