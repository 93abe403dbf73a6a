using SafeDeploy.Engine.Actions;

namespace SafeDeploy.Engine.Manifest;

/// <summary>Builds an action from its YAML node; records problems on the node and returns null when it cannot.</summary>
internal delegate IDeployAction? ActionFactory(ActionNode node);

/// <summary>Action kind (the manifest key) to factory. Not static: each parse uses the registry it is given.</summary>
internal sealed class ActionRegistry
{
    readonly Dictionary<string, ActionFactory> factories = new(StringComparer.Ordinal);

    public void Register(string kind, ActionFactory factory) => factories[kind] = factory;

    public bool TryGet(string kind, out ActionFactory factory) => factories.TryGetValue(kind, out factory!);

    public IReadOnlyCollection<string> Kinds => factories.Keys;

    /// <summary>The registry with every built-in action. New action kinds are added here.</summary>
    public static ActionRegistry CreateDefault()
    {
        var r = new ActionRegistry();
        CoreActionParsers.Register(r);
        NativeActionParsers.Register(r);
        return r;
    }
}
