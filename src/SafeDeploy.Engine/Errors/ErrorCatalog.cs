namespace SafeDeploy.Engine.Errors;

/// <summary>
/// The errors more than one place reports, each defined once with its id, kind and advice. Cmdlets never build engine
/// exceptions: a "not found" a cmdlet reports as a non-terminating error comes from here, mapped by ErrorMapper.
/// (Errors raised in one place only are defined where they are thrown; every id, with its kind, is listed in
/// docs/help/about_SafeDeploy_Errors or the cmdlet help that names it.)
/// </summary>
internal static class ErrorCatalog
{
    public static SafeDeployException DeploymentNotFound(string name, string stateDirectory) =>
        new("DeploymentNotFound", ErrorKind.ObjectNotFound, name,
            $"No deployment named '{name}' has a journal in '{stateDirectory}'.",
            "Check the name (Get-SafeDeployHistory without -Name lists every deployment) and -StateDirectory.");

    public static SafeDeployException ModelNotCached(string uri, string displayUri, string cacheDirectory) =>
        new("ModelNotCached", ErrorKind.ObjectNotFound, uri,
            $"'{displayUri}' is not in the model cache '{cacheDirectory}'.",
            "List the cache with Get-ModelCache; fetch the model with Get-ModelLocked.");

    public static SafeDeployException LockNotFound(string path) =>
        new("LockNotFound", ErrorKind.ObjectNotFound, path,
            $"There is no lock file '{path}'.", "Check the name or path; a lock file appears the first time someone takes the lock.");

    public static SafeDeployException JobStatusNotFound(string job, string repository) =>
        new("JobStatusNotFound", ErrorKind.ObjectNotFound, job,
            $"No status for job '{job}' in '{repository}'.", "Check the job name, or add -Fetch to read the remote's newest state.");

    public static SafeDeployException TransformReturnedNothing(string path) =>
        new("TransformReturnedNothing", ErrorKind.InvalidOperation, path,
            $"The -Transform script block returned nothing for '{path}', so the file was left untouched (an empty result is never taken as 'empty the file').",
            "Return the new text from the script block; return '' explicitly to empty the file.");

    public static SafeDeployException InvalidMode(string mode) =>
        new("InvalidMode", ErrorKind.InvalidArgument, mode, $"'{mode}' is not an octal file mode.", "Give a mode such as 0700 or 0755.");

    public static SafeDeployException UnknownUser(string owner) =>
        new("UnknownUser", ErrorKind.ObjectNotFound, owner, $"No user '{owner}' in /etc/passwd.", "Give an existing user name or a numeric uid.");
}
