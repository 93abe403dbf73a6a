using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Files;
using SafeDeploy.Engine.Locking;
using SafeDeploy.Engine.Platform;
using SafeDeploy.Engine.StateDirectories;

namespace SafeDeploy.Engine.Models;

/// <summary>The files of one cache entry: a directory per URI holding the model, its sidecar, its lock and any partials.</summary>
internal sealed record ModelEntryPaths(string Uri, string Key, string Directory, string Name)
{
    /// <summary>What is requested (the recorded <see cref="Uri"/> with its query string, without userinfo); never stored or shown.</summary>
    public string FetchUri { get; init; } = Uri;
    /// <summary>user:password of the URI as an Authorization value (sent like a caller's header); never stored or shown.</summary>
    public string? UserInfoAuthorization { get; init; }
    public string FilePath => System.IO.Path.Combine(Directory, Name);
    public string MetadataPath => System.IO.Path.Combine(Directory, ".entry.json");
    /// <summary>The per-entry flock; never deleted, so every process always locks the same inode.</summary>
    public string LockPath => System.IO.Path.Combine(Directory, ".entry.lock");
    public string NewPartialPath() =>
        System.IO.Path.Combine(Directory, $".{Convert.ToHexString(RandomNumberGenerator.GetBytes(6)).ToLowerInvariant()}.partial");
    public static string PartialMetadataPath(string partial) => partial + ".json";
}

/// <summary>
/// A directory of cached models. Each entry lives in a directory named after the SHA-256 of its canonical URI, so two
/// URIs whose file names are equal never collide; internal files start with '.', which a model name may not.
/// </summary>
internal sealed partial class ModelCache
{
    static readonly Regex validName = new("^[A-Za-z0-9_+@=,~-][A-Za-z0-9._+@=,~-]*$", RegexOptions.CultureInvariant);

    public ModelCache(string directory) => Directory = System.IO.Path.GetFullPath(directory);

    public string Directory { get; }

    /// <summary>
    /// The default cache: the 'models' folder of SafeDeploy's state cache directory. <paramref name="create"/> creates the
    /// state directories now (a fetch); listing, removal and -WhatIf only name it.
    /// </summary>
    public static ModelCache Default(IOperationReporter? reporter = null, bool create = true) =>
        new(System.IO.Path.Combine((create ? StateDirectoryManager.Default(reporter) : StateDirectoryManager.Resolve(StateDirectoryManager.DefaultName)).CacheDir, "models"));

    /// <summary>Creates the cache directory safely (no untrusted symlinks, no world-writable parents).</summary>
    public void EnsureExists() => SecureDirectory.Ensure(Directory, 0x1ED /* 0755: models are shared read-only */);

    uint? sharedGroup;
    bool sharedKnown;

    /// <summary>
    /// The group of an explicitly shared cache: its directory is setgid and group-writable (chgrp G; chmod 2770).
    /// Then entry directories are 2770, locks and partials 0660, sidecars and models 0640, and entries owned by that
    /// group are trusted like the caller's own. Otherwise (null) sidecars, locks and partials are 0600.
    /// </summary>
    public uint? SharedGroup
    {
        get
        {
            if (sharedKnown) return sharedGroup;
            var st = Native.Stat(Directory, followSymlinks: false);
            if (st is null) return null;
            sharedGroup = st.IsDirectory && (st.Mode & 0x400) != 0 && (st.Mode & 0x10) != 0 ? st.Gid : null;
            sharedKnown = true;
            return sharedGroup;
        }
    }

    /// <summary>
    /// Creates an entry's directory and its lock file (0600; in a shared cache exactly 2770 and 0660, which the umask
    /// would otherwise cut).
    /// </summary>
    internal void EnsureEntryDirectory(string dir)
    {
        SecureDirectory.Ensure(dir, EntryDirectoryMode);
        // One planted by another user (in a cache others may write) is refused, never written into. What follows goes
        // through the descriptor that was checked: the path is not resolved again (a component could be a link by now).
        using var trusted = CacheEntryDirectory.Open(this, dir) ?? throw new SafeDeployException("UntrustedPath", ErrorKind.SecurityError, dir,
            $"The cache entry directory '{dir}' is a symlink or belongs to another user, so nothing is written into it.",
            "Remove it (or have its owner remove it), and keep the cache directory writable only by you and root (or share it with a group: chgrp G; chmod 2770).");
        var st = trusted.Status;
        if (SharedGroup is not null && st.Uid == Native.GetEffectiveUserId() && st.Permissions != EntryDirectoryMode)
            Native.Fchmod(trusted.Handle, EntryDirectoryMode, dir);
        // The lock file is made here, not followed if planted as a link, and a full disk is named as one.
        int rc = Native.TryOpenAt(trusted.Handle, ".entry.lock", Native.O_RDONLY | Native.O_CREAT | Native.O_EXCL | Native.O_NOFOLLOW, PrivateMode, out var made);
        if (rc == 0) using (made) Native.Fchmod(made!, PrivateMode, System.IO.Path.Combine(dir, ".entry.lock"));
        else if (rc != Native.EEXIST) throw IoErrors.FromErrno(rc, System.IO.Path.Combine(dir, ".entry.lock"), "create the lock file");
    }

    internal uint PrivateMode => SharedGroup is null ? 0x180u /* 0600 */ : 0x1B0u /* 0660 */;
    internal uint RecordMode => SharedGroup is null ? 0x180u /* 0600 */ : 0x1A0u /* 0640 */;
    internal uint ModelMode => SharedGroup is null ? 0x1A4u /* 0644 */ : 0x1A0u /* 0640 */;
    internal uint EntryDirectoryMode => SharedGroup is null ? 0x1EDu /* 0755 */ : 0xDF8u /* 2770 */;

    /// <summary>Turns user input (URL, file:// URI, plain path) into the canonical URI that keys the cache.</summary>
    public static string CanonicalUri(string input)
    {
        if (string.IsNullOrWhiteSpace(input))
            throw new SafeDeployException("InvalidUri", ErrorKind.InvalidArgument, input ?? "", "The model URI is empty.", "Give an http(s):// or file:// URI or a path.");
        if (System.Uri.TryCreate(input, UriKind.Absolute, out var u) && u.Scheme is "http" or "https" or "file")
            return u.Scheme == "file" ? new System.Uri(u.LocalPath).AbsoluteUri : u.AbsoluteUri;
        if (input.Contains("://", StringComparison.Ordinal))
            throw new SafeDeployException("UnsupportedUri", ErrorKind.InvalidArgument, input,
                $"'{DisplayUri(input)}' is not an http://, https:// or file:// URI.", "Use one of those schemes or a plain path.");
        return new System.Uri(System.IO.Path.GetFullPath(input)).AbsoluteUri;
    }

    /// <summary>The URI without user:password, query or fragment: the only form stored or shown (<see cref="ModelUris.Redact"/>).</summary>
    public static string DisplayUri(string uri) => ModelUris.Redact(uri);

    public static string KeyOf(string canonicalUri) => ModelUris.KeyOf(canonicalUri);

    /// <summary>Where the entry for <paramref name="uri"/> lives (nothing is created).</summary>
    public ModelEntryPaths PathsFor(string uri, string? name = null)
    {
        var canonical = CanonicalUri(uri);
        var key = KeyOf(canonical);
        string fileName;
        if (name is not null)
        {
            if (!IsValidName(name))
                throw new SafeDeployException("InvalidModelName", ErrorKind.InvalidArgument, name,
                    $"'{name}' is not a valid model file name: use letters, digits and . _ + @ = , ~ -, not starting with '.'.",
                    "Choose a plain file name such as 'llama-3-8b.gguf'.");
            fileName = name;
        }
        else
        {
            var last = Uri.UnescapeDataString(new Uri(canonical).AbsolutePath.TrimEnd('/').Split('/').Last());
            fileName = IsValidName(last) ? last : "model";
        }
        return new ModelEntryPaths(ModelUris.Redact(canonical), key, System.IO.Path.Combine(Directory, key), fileName)
        {
            FetchUri = ModelUris.WithoutUserInfo(canonical), UserInfoAuthorization = ModelUris.BasicAuthorization(canonical),
        };
    }

    /// <summary>A model file name: no '/', no leading '.', so it can never leave its entry directory.</summary>
    internal static bool IsValidName(string name) => name.Length is > 0 and <= 200 && validName.IsMatch(name);

    internal static ModelEntryMetadata? ReadMetadata(string path)
    {
        try { return JsonSerializer.Deserialize(File.ReadAllBytes(path), ModelJson.Default.ModelEntryMetadata); }
        catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException) { return null; }
    }

    /// <summary>
    /// Runs the sidecar's (de)serialisation once on a sample, so that its first real use, by a waiter the moment the
    /// lock it waited for is released, does not first build the serialiser's metadata.
    /// </summary>
    internal static void PrepareMetadataCode()
    {
        var sample = new ModelEntryMetadata("file:///", "x", 0, "", null, null, false, DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch, 0);
        _ = JsonSerializer.Deserialize(JsonSerializer.SerializeToUtf8Bytes(sample, ModelJson.Default.ModelEntryMetadata), ModelJson.Default.ModelEntryMetadata);
    }

    internal static PartialMetadata? ReadPartialMetadata(string path)
    {
        try { return JsonSerializer.Deserialize(File.ReadAllBytes(path), ModelJson.Default.PartialMetadata); }
        catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException) { return null; }
    }

    internal void WriteMetadata(string path, ModelEntryMetadata meta) =>
        AtomicFile.WriteAllBytes(path, JsonSerializer.SerializeToUtf8Bytes(meta, ModelJson.Default.ModelEntryMetadata), new AtomicWriteOptions { Mode = RecordMode });

    internal void WritePartialMetadata(string path, PartialMetadata meta) =>
        AtomicFile.WriteAllBytes(path, JsonSerializer.SerializeToUtf8Bytes(meta, ModelJson.Default.PartialMetadata), new AtomicWriteOptions { Mode = RecordMode });

    internal static IEnumerable<string> Partials(string entryDirectory) =>
        System.IO.Directory.Exists(entryDirectory)
            ? System.IO.Directory.EnumerateFiles(entryDirectory, ".*.partial")
            : Enumerable.Empty<string>();
}
