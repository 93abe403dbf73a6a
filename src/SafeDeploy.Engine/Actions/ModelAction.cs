namespace SafeDeploy.Engine.Actions;

/// <summary>`model`: a locked model download (Get-ModelLocked). Needs the model cache engine.</summary>
public static class ModelAction
{
    /// <summary>Until the model cache engine is part of this build, a `model` phase is a manifest error, reported before anything runs.</summary>
    public static IDeployAction? Parse(ActionNode node)
    {
        node.Error("The 'model' action is not available in this build: it needs the model cache engine (Get-ModelLocked), which is not included yet. " +
                   "Use a 'script' phase that calls Get-ModelLocked instead.", "ActionNotAvailable");
        return null;
    }
}
