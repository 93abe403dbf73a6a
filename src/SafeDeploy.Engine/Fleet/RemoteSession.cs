namespace SafeDeploy.Engine.Fleet;

/// <summary>
/// Where and how to open a PowerShell remoting session over SSH (the host's `powershell` subsystem, `pwsh -sshs`): what
/// `New-PSSession -HostName -Port -UserName -KeyFilePath -Options` takes. <see cref="Options"/> are the rollout's ssh options
/// (BatchMode, the shared ControlMaster socket, the inventory's own) as `-o key=value` pairs.
/// </summary>
internal sealed record RemoteSessionRequest(string HostName, string Address, int? Port, string? User, string? IdentityFile,
    IReadOnlyDictionary<string, string> Options, string Script, TimeSpan Timeout, Action<string>? OnLine);

/// <summary>
/// What a session run gave. <see cref="Opened"/> false: no session could be opened (no subsystem, no pwsh, or an older
/// PowerShell), so nothing ran and the caller may use another way in; <see cref="Failure"/> says why.
/// </summary>
internal sealed record RemoteSessionResult(bool Opened, string Output, string? Failure, bool TimedOut = false);

/// <summary>
/// Runs a PowerShell script on a host in a remoting session over SSH. The engine knows no PowerShell types: the module
/// supplies this (a remote runspace over SSHConnectionInfo); without one, hosts with pwsh are driven through plain ssh.
/// </summary>
internal delegate RemoteSessionResult RemoteSessionInvoker(RemoteSessionRequest request, CancellationToken cancellationToken);
