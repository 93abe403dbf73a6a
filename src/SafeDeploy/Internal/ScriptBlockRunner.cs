using System.Management.Automation;
using System.Management.Automation.Internal;
using System.Reflection;

namespace SafeDeploy.Internal;

/// <summary>
/// Runs a user's script block so that its output and errors stream into the calling cmdlet's pipeline as they happen
/// (as ForEach-Object does), not collected until it ends: a long locked job shows its output live.
/// </summary>
static class ScriptBlockRunner
{
    // PowerShell 7's ScriptBlock.InvokeUsingCmdlet is not public; without it we fall back to Invoke(), which collects.
    static readonly MethodInfo? invokeUsingCmdlet = typeof(ScriptBlock).GetMethod("InvokeUsingCmdlet", BindingFlags.Instance | BindingFlags.NonPublic);
    static readonly object? writeToCurrentErrorPipe = invokeUsingCmdlet?.GetParameters()[2].ParameterType is { IsEnum: true } t
        ? Enum.Parse(t, "WriteToCurrentErrorPipe") : null;

    public static void Run(Cmdlet cmdlet, ScriptBlock block, object[] args)
    {
        if (invokeUsingCmdlet is not null && writeToCurrentErrorPipe is not null)
        {
            try
            {
                invokeUsingCmdlet.Invoke(block, new object?[]
                {
                    cmdlet, true /* useLocalScope */, writeToCurrentErrorPipe, AutomationNull.Value, Array.Empty<object>(), AutomationNull.Value, args,
                });
                return;
            }
            catch (TargetInvocationException e) when (e.InnerException is not null)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerException).Throw();
            }
        }
        foreach (var item in block.Invoke(args)) cmdlet.WriteObject(item);
    }
}
