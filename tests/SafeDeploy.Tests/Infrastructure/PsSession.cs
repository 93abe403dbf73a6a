using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Runspaces;

namespace SafeDeploy.Tests.Infrastructure;

/// <summary>What a hosted PowerShell invocation produced.</summary>
public sealed class PsResult
{
    public List<PSObject> Output { get; } = new();
    public List<ErrorRecord> Errors { get; } = new();
    public List<string> Warnings { get; } = new();
    public List<string> Verbose { get; } = new();
    public List<ProgressRecord> Progress { get; } = new();
    /// <summary>The terminating error, if the script stopped with one.</summary>
    public RuntimeException? Terminating { get; set; }

    /// <summary>Every error, terminating or not.</summary>
    public IEnumerable<ErrorRecord> AllErrors => Terminating?.ErrorRecord is { } t ? Errors.Append(t) : Errors;

    public object? Prop(int index, string name) => Output[index].Properties[name]?.Value;

    /// <summary>The name of output <paramref name="index"/>'s Status (see <see cref="StatusProperty"/>).</summary>
    public string Status(int index) => Output[index].Status();

    public string Describe() =>
        $"output: [{string.Join(", ", Output)}]\nerrors: [{string.Join("\n", AllErrors.Select(e => $"{e.FullyQualifiedErrorId}: {e}"))}]\nwarnings: [{string.Join("\n", Warnings)}]";
}

/// <summary>
/// A result's Status read through PowerShell. It is an engine enum from the module's own load context (not the type the
/// tests compile against), so it is compared by name; anything but an enum there is a failure.
/// </summary>
public static class StatusProperty
{
    public static string Status(this PSObject o) => o.Properties["Status"]?.Value switch
    {
        Enum e => e.ToString(),
        var v => throw new Xunit.Sdk.XunitException($"Status is {(v is null ? "missing" : $"a {v.GetType().FullName} ('{v}')")}, not a status enum."),
    };
}

/// <summary>
/// The real PowerShell engine (System.Management.Automation 7.6.9) in-process with the built SafeDeploy.psd1 imported:
/// cmdlets run as a user types them. The hosted engine has only the Core cmdlets: use .NET calls in test scripts.
/// </summary>
public sealed class PsSession : IDisposable
{
    readonly Runspace runspace;

    public PsSession(bool importModule = true)
    {
        var iss = InitialSessionState.CreateDefault2();
        if (importModule) iss.ImportPSModule(new[] { RepoPaths.ModuleManifest });
        runspace = RunspaceFactory.CreateRunspace(iss);
        runspace.Open();
    }

    /// <summary>Runs a script; variables are set first (e.g. ("dir", path) makes $dir available).</summary>
    public PsResult Run(string script, params (string Name, object? Value)[] variables) => Run(script, null, variables);

    public PsResult Run(string script, IEnumerable? input, params (string Name, object? Value)[] variables)
    {
        foreach (var (name, value) in variables) runspace.SessionStateProxy.SetVariable(name, value);
        using var ps = PowerShell.Create();
        ps.Runspace = runspace;
        ps.AddScript(script);
        var result = new PsResult();
        ps.Streams.Warning.DataAdded += (_, e) => result.Warnings.Add(ps.Streams.Warning[e.Index].Message);
        ps.Streams.Verbose.DataAdded += (_, e) => result.Verbose.Add(ps.Streams.Verbose[e.Index].Message);
        ps.Streams.Progress.DataAdded += (_, e) => result.Progress.Add(ps.Streams.Progress[e.Index]);
        try
        {
            var output = input is null ? ps.Invoke() : ps.Invoke(input);
            result.Output.AddRange(output.Where(o => o is not null));
        }
        catch (RuntimeException e) { result.Terminating = e; }
        result.Errors.AddRange(ps.Streams.Error);
        return result;
    }

    /// <summary>Runs a script on another thread and stops the pipeline after <paramref name="after"/> (Ctrl+C).</summary>
    public PsResult RunAndStop(string script, TimeSpan after, params (string Name, object? Value)[] variables)
    {
        foreach (var (name, value) in variables) runspace.SessionStateProxy.SetVariable(name, value);
        using var ps = PowerShell.Create();
        ps.Runspace = runspace;
        ps.AddScript(script);
        var result = new PsResult();
        var async = ps.BeginInvoke();
        Thread.Sleep(after);
        ps.Stop();
        try { result.Output.AddRange(ps.EndInvoke(async)); }
        catch (RuntimeException e) { result.Terminating = e; }
        result.Errors.AddRange(ps.Streams.Error);
        return result;
    }

    public void Dispose() => runspace.Dispose();
}
