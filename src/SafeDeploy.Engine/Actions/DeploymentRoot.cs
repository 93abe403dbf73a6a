using SafeDeploy.Engine.Errors;

namespace SafeDeploy.Engine.Actions;

/// <summary>
/// The -Root of a deployment, normalised once (full path, no trailing slash; "/" or none: the real tree). Every action
/// maps the absolute paths it writes through <see cref="Map"/>, passes <see cref="Environment"/> to the commands it runs
/// and offers <see cref="VariableValue"/> as ${root}; nothing else re-derives the root from a string.
/// </summary>
public sealed class DeploymentRoot
{
    /// <summary>No sandbox: absolute paths are the real ones.</summary>
    public static readonly DeploymentRoot Real = new(null);

    DeploymentRoot(string? path) => Path = path;

    /// <summary>The sandbox directory (full path), or null for the real tree.</summary>
    public string? Path { get; }
    public bool IsSandbox => Path is not null;

    /// <summary>The value of ${root} and of SAFEDEPLOY_ROOT: the sandbox path, or "" for the real tree.</summary>
    public string VariableValue => Path ?? "";

    public static DeploymentRoot From(string? root)
    {
        if (string.IsNullOrEmpty(root)) return Real;
        var full = System.IO.Path.GetFullPath(root).TrimEnd('/');
        return full.Length == 0 ? Real : new DeploymentRoot(full);
    }

    /// <summary>Root + path for an absolute path (the real tree: the path itself); a relative path is refused.</summary>
    public string Map(string path)
    {
        if (!System.IO.Path.IsPathRooted(path))
            throw new SafeDeployException("RelativeTargetPath", ErrorKind.InvalidArgument, path,
                $"'{path}' is a relative path; every path a deployment writes must be absolute (it is placed under -Root).",
                "Write the target as an absolute path, e.g. /etc/app/config or /opt/app/lib.so.");
        var full = System.IO.Path.GetFullPath(path);
        return Path is null ? full : System.IO.Path.GetFullPath(System.IO.Path.Join(Path, full));
    }

    /// <summary>Like <see cref="Map"/>, but gives relative paths back unchanged (for display).</summary>
    public string Show(string path) => System.IO.Path.IsPathRooted(path) ? Map(path) : path;

    /// <summary>The variables every command of the deployment sees.</summary>
    public IReadOnlyDictionary<string, string?> Environment(string? phase = null, string? deployment = null)
    {
        var env = new Dictionary<string, string?>(StringComparer.Ordinal) { ["SAFEDEPLOY_ROOT"] = VariableValue };
        if (phase is not null) env["SAFEDEPLOY_PHASE"] = phase;
        if (deployment is not null) env["SAFEDEPLOY_DEPLOYMENT"] = deployment;
        return env;
    }

    public override string ToString() => Path ?? "/";
}
