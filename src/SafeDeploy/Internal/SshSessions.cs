using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Runspaces;
using System.Reflection;
using System.Text;
using SafeDeploy.Engine.Fleet;

namespace SafeDeploy.Internal;

/// <summary>
/// PowerShell remoting over SSH for the fleet (what `New-PSSession -HostName -Port -UserName -KeyFilePath -Options` opens):
/// a remote runspace on the host's `powershell` subsystem, through the user's own ssh with the rollout's options (its
/// ControlMaster socket, so the session shares the staging connection). SSHConnectionInfo exists in PowerShell 7 but not
/// in the PowerShellStandard surface this module compiles against, hence the reflection; its options constructor came in 7.3.
/// </summary>
internal static class SshSessions
{
    const string Subsystem = "powershell";
    static readonly TimeSpan connectTimeout = TimeSpan.FromSeconds(30);

    static readonly ConstructorInfo? sshConnectionInfo = typeof(Runspace).Assembly
        .GetType("System.Management.Automation.Runspaces.SSHConnectionInfo")
        ?.GetConstructor([typeof(string), typeof(string), typeof(string), typeof(int), typeof(string), typeof(int), typeof(Hashtable)]);

    /// <summary>The invoker, or null on a PowerShell without SSH remoting options (hosts are then driven through ssh + pwsh).</summary>
    public static RemoteSessionInvoker? Invoker => sshConnectionInfo is null ? null : Run;

    static RemoteSessionResult Run(RemoteSessionRequest q, CancellationToken token)
    {
        var options = new Hashtable(StringComparer.OrdinalIgnoreCase);
        foreach (var (k, v) in q.Options) options[k] = v;
        RunspaceConnectionInfo info;
        try
        {
            info = (RunspaceConnectionInfo)sshConnectionInfo!.Invoke([q.User, q.Address, q.IdentityFile, q.Port ?? 0, Subsystem,
                (int)Math.Min(q.Timeout.TotalMilliseconds, connectTimeout.TotalMilliseconds), options]);
        }
        catch (TargetInvocationException e) { return new RemoteSessionResult(false, "", e.InnerException?.Message ?? e.Message); }
        using var runspace = RunspaceFactory.CreateRunspace(info);
        using (token.Register(() => runspace.CloseAsync()))
        {
            // A host without the subsystem (or without pwsh behind it) ends the ssh transport before the session opens.
            try { runspace.Open(); }
            catch (Exception e) when (e is RuntimeException or InvalidOperationException or IOException)
            {
                token.ThrowIfCancellationRequested();
                return new RemoteSessionResult(false, "", e.Message);
            }
        }
        token.ThrowIfCancellationRequested();
        using var ps = PowerShell.Create();
        ps.Runspace = runspace;
        ps.AddScript(q.Script);
        var text = new StringBuilder();
        var errors = new StringBuilder();
        var output = new PSDataCollection<PSObject>();
        output.DataAdded += (_, e) =>
        {
            var line = output[e.Index]?.ToString() ?? "";
            lock (text) text.Append(line).Append('\n');
            q.OnLine?.Invoke(line);
        };
        ps.Streams.Error.DataAdded += (_, e) => { lock (errors) errors.Append(ps.Streams.Error[e.Index]).Append('\n'); };
        var pending = ps.BeginInvoke<PSObject, PSObject>(null, output);
        var woke = WaitHandle.WaitAny([pending.AsyncWaitHandle, token.WaitHandle], q.Timeout);
        string? failure = null;
        if (woke != 0)
        {
            // Timed out or cancelled: stop the remote pipeline; the host's own journal deals with a run cut short.
            try { ps.Stop(); } catch (Exception e) when (e is RuntimeException or InvalidOperationException) { failure = e.Message; }
            token.ThrowIfCancellationRequested();
        }
        else
        {
            try { ps.EndInvoke(pending); }
            catch (Exception e) when (e is RuntimeException or InvalidOperationException) { failure = e.Message; }
        }
        lock (text) lock (errors)
            return new RemoteSessionResult(true, text.ToString(), failure ?? (errors.Length > 0 ? errors.ToString() : null), TimedOut: woke == WaitHandle.WaitTimeout);
    }
}
