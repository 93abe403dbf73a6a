namespace SafeDeploy.Engine.Platform;

/// <summary>How <see cref="SafePath.OpenDirectory(string, WalkOptions)"/> walks a directory path, and what it creates.</summary>
internal sealed record WalkOptions
{
    /// <summary>Create missing components.</summary>
    public bool Create { get; init; }
    /// <summary>The exact mode of each component it creates (the umask has no say).</summary>
    public uint Mode { get; init; } = 0x1ED;
    /// <summary>Receives each directory created, the moment it is made (so a later failure can remove it).</summary>
    public IList<string>? Created { get; init; }
    /// <summary>The owner given to each component it creates (root only); with <see cref="Strict"/> also trusted like the caller.</summary>
    public uint? OwnerUid { get; init; }
    /// <summary>The group given to each component it creates, with <see cref="OwnerUid"/>.</summary>
    public uint? OwnerGid { get; init; }
    /// <summary>
    /// For SafeDeploy's own state, lock, log and cache directories: every existing directory on the way must also be
    /// owned by root, the caller or <see cref="OwnerUid"/>, and not world-writable unless sticky (UntrustedDirectory,
    /// InsecureDirectory); a refused symlink is UntrustedSymlink rather than UntrustedPath.
    /// </summary>
    public bool Strict { get; init; }
}
