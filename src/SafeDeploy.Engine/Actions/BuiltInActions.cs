namespace SafeDeploy.Engine.Actions;

/// <summary>The actions of the deploy engine. (The native actions register in NativeActions.Register, called below.)</summary>
static partial class BuiltInActions
{
    public static void Register(ActionRegistry registry)
    {
        registry.Register("checks", ChecksAction.Parse);
        registry.Register("run", RunAction.Parse);
        registry.Register("install", InstallAction.Parse);
        registry.Register("editFile", EditFileAction.Parse);
        registry.Register("script", ScriptAction.Parse);
        registry.Register("model", ModelAction.Parse);
        NativeActions.Register(registry);
    }
}
