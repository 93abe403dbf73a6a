using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Actions;

/// <summary>
/// The -Root of a deployment, normalised once (full path, no trailing slash; "/" or none: the real tree). Every action
/// maps the absolute paths it writes through <see cref="Map"/>, passes <see cref="Environment"/> to the commands it runs
/// and offers <see cref="VariableValue"/> as ${root}; nothing else re-derives the root from a string.
/// </summary>
internal sealed class DeploymentRoot
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

    /// <summary>The path as the manifest names it, from a path <see cref="Map"/> gave (the inverse of Map).</summary>
    public string Unmap(string mapped) =>
        Path is null ? mapped : mapped == Path ? "/" : mapped.StartsWith(Path + "/", StringComparison.Ordinal) ? mapped[Path.Length..] : mapped;

    /// <summary>True when <paramref name="mapped"/> lies under the sandbox (always true for the real tree).</summary>
    public bool Contains(string mapped) => Path is null || mapped == Path || mapped.StartsWith(Path + "/", StringComparison.Ordinal);

    /// <summary>
    /// Refuses a root directory owned by, or writable by, another user (UntrustedRoot); nothing for the real tree.
    /// A missing root is created (0755) with <paramref name="create"/>, else passes (a plan changes nothing).
    /// </summary>
    public void Verify(bool create)
    {
        if (Path is null) return;
        if (!System.IO.Directory.Exists(Path))
        {
            if (!create) return;
            SafePath.OpenDirectory(Path, create: true, 0x1ED).Dispose();
        }
        SafeDirectory.OpenRoot(Path).Dispose();
    }

    /// <summary>
    /// Opens the directory holding <paramref name="absolute"/> (a path as the manifest names it) inside the root,
    /// creating missing directories (0755) when asked; <paramref name="created"/> receives each one made (full paths).
    /// </summary>
    public RootedPath Open(string absolute, bool createParents = false, IList<string>? created = null)
    {
        var full = Map(absolute);
        var name = System.IO.Path.GetFileName(full);
        var inRoot = Unmap(full);
        var parent = System.IO.Path.GetDirectoryName(inRoot) ?? "/";
        if (Path is null) return new RootedPath(SafePath.OpenDirectory(parent, createParents, 0x1ED, created), name, full, null);
        var jail = SafeDirectory.OpenRoot(Path);
        try { return new RootedPath(jail.OpenDirectory(parent.TrimStart('/'), createParents, 0x1ED, created), name, full, jail); }
        catch
        {
            jail.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Like <see cref="Open"/> for a full path the run recorded (a target under the root, or a file of the state
    /// directory such as a backup, opened by the trusted walk).
    /// </summary>
    public RootedPath OpenRecorded(string fullPath, bool createParents = false)
    {
        if (Path is not null && Contains(fullPath)) return Open(Unmap(fullPath), createParents);
        var dir = SafePath.OpenDirectory(System.IO.Path.GetDirectoryName(fullPath)!, createParents, 0x1C0);
        return new RootedPath(dir, System.IO.Path.GetFileName(fullPath), fullPath, null);
    }

    public override string ToString() => Path ?? "/";
}

/// <summary>
/// The directory holding one file of a deployment, opened safely: under a -Root by the kernel inside the jail
/// (<see cref="SafeDirectory.OpenRoot"/>: symlinks and ".." cannot leave it), on the real tree by the trusted walk of
/// <see cref="SafePath"/>. Every later call is an *at() call on <see cref="Directory"/>; <see cref="Pinned"/> names the
/// file through that open directory (/proc/self/fd/N/name) for the few APIs that take a path string, so its
/// ancestors are never resolved again.
/// </summary>
internal sealed class RootedPath : IDisposable
{
    readonly SafeDirectory? jail;

    internal RootedPath(SafeDirectory directory, string name, string display, SafeDirectory? jail)
    {
        Directory = directory;
        Name = name;
        Display = display;
        this.jail = jail;
    }

    public SafeDirectory Directory { get; }
    public string Name { get; }
    /// <summary>The full path (under the root) for messages, the journal and external commands.</summary>
    public string Display { get; }
    public string Pinned => $"/proc/self/fd/{(int)Directory.Handle.DangerousGetHandle()}/{Name}";
    /// <summary>lstat of the file (a symlink is not followed); null when absent.</summary>
    public FileStatus? Stat() => Directory.Stat(Name);

    public void Dispose()
    {
        Directory.Dispose();
        jail?.Dispose();
    }
}
