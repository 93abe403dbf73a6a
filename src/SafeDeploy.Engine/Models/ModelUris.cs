using System.Security.Cryptography;
using System.Text;

namespace SafeDeploy.Engine.Models;

/// <summary>
/// The three forms of a model URI. The fetch form (userinfo moved out into a header) is what is requested; the key
/// form is hashed into the entry's directory name (the query string identifies an object, so it is part of it); the
/// recorded form, without userinfo, query or fragment, is the only one ever stored or shown, because any of those
/// may carry a credential (a presigned URL's signature, an access token).
/// </summary>
internal static class ModelUris
{
    /// <summary>The URI with user:password, query and fragment removed: safe to store and print.</summary>
    public static string Redact(string uri)
    {
        if (!System.Uri.TryCreate(uri, UriKind.Absolute, out var u) || u.IsFile && !uri.Contains("://", StringComparison.Ordinal)) return uri;
        if (string.IsNullOrEmpty(u.UserInfo) && string.IsNullOrEmpty(u.Query) && string.IsNullOrEmpty(u.Fragment)) return u.AbsoluteUri;
        return new UriBuilder(u) { UserName = "", Password = "", Query = "", Fragment = "" }.Uri.AbsoluteUri;
    }

    /// <summary>The URI without user:password (which travel in an Authorization header instead).</summary>
    public static string WithoutUserInfo(string canonicalUri)
    {
        var u = new System.Uri(canonicalUri);
        return string.IsNullOrEmpty(u.UserInfo) ? canonicalUri : new UriBuilder(u) { UserName = "", Password = "" }.Uri.AbsoluteUri;
    }

    /// <summary>"Basic …" for a URI's user:password, as curl sends it; null when it has none.</summary>
    public static string? BasicAuthorization(string canonicalUri)
    {
        var info = new System.Uri(canonicalUri).UserInfo;
        return string.IsNullOrEmpty(info) ? null : "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes(System.Uri.UnescapeDataString(info)));
    }

    /// <summary>The directory name of an entry: 32 hex digits of the SHA-256 of the URI without userinfo.</summary>
    public static string KeyOf(string canonicalUri) =>
        Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(WithoutUserInfo(canonicalUri))))[..32].ToLowerInvariant();

    /// <summary>Scheme, host and port: caller's headers are sent only while a redirect stays on this origin.</summary>
    public static bool SameOrigin(System.Uri a, System.Uri b) =>
        string.Equals(a.Scheme, b.Scheme, StringComparison.OrdinalIgnoreCase) &&
        string.Equals(a.IdnHost, b.IdnHost, StringComparison.OrdinalIgnoreCase) && a.Port == b.Port;
}
