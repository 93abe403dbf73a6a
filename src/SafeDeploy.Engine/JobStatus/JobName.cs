using SafeDeploy.Engine.Errors;

namespace SafeDeploy.Engine.JobStatus;

/// <summary>Job names become file names: only [A-Za-z0-9._-], no "..", no leading dot.</summary>
internal static class JobName
{
    public const int MaxLength = 200;

    public static bool IsValid(string? name) =>
        !string.IsNullOrEmpty(name) && name.Length <= MaxLength && name[0] != '.' && !name.Contains("..")
        && name.All(c => c is (>= 'A' and <= 'Z') or (>= 'a' and <= 'z') or (>= '0' and <= '9') or '.' or '_' or '-');

    public static void Validate(string? name)
    {
        if (IsValid(name)) return;
        throw new SafeDeployException("InvalidJobName", ErrorKind.InvalidArgument, name ?? "",
            $"'{name}' is not a valid job name: use letters, digits, '.', '_' and '-' only (at most {MaxLength}), with no '..' and no leading dot, because the name becomes a file name under the status directory. Nothing was written.",
            "Pick a job name such as 'train-llama.42' (for SLURM: \"$env:SLURM_JOB_NAME-$env:SLURM_JOB_ID\" with other characters replaced).");
    }

    /// <summary>Validates a path inside the repository (the status directory): relative, no '..' or '.git' component.</summary>
    public static string ValidateRepoDirectory(string dir) => NormalizeRepoDirectory(dir)
        ?? throw new SafeDeployException("InvalidStatusDirectory", ErrorKind.InvalidArgument, dir,
            $"'{dir}' is not a usable status directory: it must be a relative path inside the repository, without '.', '..' or '.git' components.",
            "Use a path such as 'data/status'.");

    /// <summary>The directory as a/b/c, or null when it is not a plain relative path inside the repository.</summary>
    public static string? NormalizeRepoDirectory(string? dir)
    {
        if (string.IsNullOrEmpty(dir)) return null;
        var parts = dir.Replace('\\', '/').Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0 || dir.StartsWith('/') || parts.Any(p => p is "." or ".." || p.Equals(".git", StringComparison.OrdinalIgnoreCase) || p.Any(char.IsControl)))
            return null;
        return string.Join('/', parts);
    }

    /// <summary>Remote and branch names are passed to git as arguments: keep them to plain names.</summary>
    public static string ValidateRefName(string value, string what)
    {
        if (IsValidRefName(value)) return value;
        throw new SafeDeployException($"Invalid{what}", ErrorKind.InvalidArgument, value,
            $"'{value}' is not a usable {what.ToLowerInvariant()} name: use letters, digits, '.', '_', '-' and '/', not starting with '-' or '.'.",
            $"Pass the name of a configured {what.ToLowerInvariant()} (letters, digits, '.', '_', '-', '/').");
    }

    public static bool IsValidRefName(string? value) =>
        !string.IsNullOrEmpty(value) && value[0] != '-' && value[0] != '.' && !value.Contains("..") && !value.Contains("/-") && !value.Contains("//")
        && !value.EndsWith('/') && !value.EndsWith(".lock") && value.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' or '/');
}
