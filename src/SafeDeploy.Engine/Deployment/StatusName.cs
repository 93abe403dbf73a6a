using System.Collections.Frozen;

namespace SafeDeploy.Engine.Deployment;

/// <summary>
/// Where a status enum meets its text. Journals, history files, the rollout journal and the SAFEDEPLOY-RESULT line hold a
/// status as its enum's name, exactly as the string statuses of earlier versions were written, so their files still read.
/// </summary>
internal static class StatusName
{
    /// <summary>The name written for <paramref name="status"/> (never its number).</summary>
    public static string Of<T>(T status) where T : struct, Enum => status.ToString();

    /// <summary>
    /// The status a written name stands for, case-sensitive; a missing name, a number or a name this version does not know
    /// (a newer version's file) gives <paramref name="unknown"/> instead of an error, so one odd record never hides a history.
    /// </summary>
    public static T Parse<T>(string? name, T unknown) where T : struct, Enum =>
        name is not null && Names<T>.ByName.TryGetValue(name, out var status) ? status : unknown;

    static class Names<T> where T : struct, Enum
    {
        public static readonly FrozenDictionary<string, T> ByName = Enum.GetValues<T>().ToFrozenDictionary(v => v.ToString(), StringComparer.Ordinal);
    }
}
