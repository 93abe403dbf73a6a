using System.Globalization;
using SafeDeploy.Engine.Errors;

namespace SafeDeploy.Engine.Fleet;

/// <summary>
/// Splits a rollout's hosts into waves like Ansible's `serial`: each entry is one wave's size, a count or a percentage of
/// all the rollout's hosts (rounded up, at least 1); the last entry repeats until every host is covered.
/// </summary>
internal static class WavePlan
{
    public static IReadOnlyList<IReadOnlyList<T>> Split<T>(IReadOnlyList<T> hosts, IReadOnlyList<string>? batchSize)
    {
        var sizes = (batchSize is { Count: > 0 } ? batchSize : ["100%"]).Select(e => Size(e, hosts.Count)).ToList();
        var waves = new List<IReadOnlyList<T>>();
        int at = 0, i = 0;
        while (at < hosts.Count)
        {
            int n = Math.Min(sizes[Math.Min(i++, sizes.Count - 1)], hosts.Count - at);
            waves.Add(hosts.Skip(at).Take(n).ToList());
            at += n;
        }
        return waves;
    }

    /// <summary>One -BatchSize entry as a wave size for <paramref name="total"/> hosts.</summary>
    public static int Size(string entry, int total)
    {
        var (value, percent) = Parse(entry, "InvalidBatchSize", "-BatchSize", "1, 25% or 100%");
        if (value == 0)
            throw new SafeDeployException("InvalidBatchSize", ErrorKind.InvalidArgument, entry,
                $"-BatchSize entry '{entry}' is zero; every wave needs at least one host.", "Use a count of 1 or more, or a percentage above 0%.");
        return percent ? Math.Max(1, (int)Math.Ceiling(value * (double)total / 100)) : value;
    }

    internal static (int Value, bool Percent) Parse(string entry, string errorId, string parameter, string examples)
    {
        var text = entry.Trim();
        bool percent = text.EndsWith('%');
        if (percent) text = text[..^1].TrimEnd();
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) || (percent && value > 100))
            throw new SafeDeployException(errorId, ErrorKind.InvalidArgument, entry,
                $"{parameter} entry '{entry}' is neither a count nor a percentage (0 to 100%).", $"Use values such as {examples}.");
        return (value, percent);
    }
}

/// <summary>The rollout-wide failure budget: spent when more hosts failed than -MaxFailed allows (a count, or a percentage of all hosts).</summary>
internal sealed record FailureBudget(int Allowed)
{
    public static FailureBudget Parse(string? maxFailed, int totalHosts)
    {
        if (string.IsNullOrWhiteSpace(maxFailed)) return new FailureBudget(0);
        var (value, percent) = WavePlan.Parse(maxFailed, "InvalidMaxFailed", "-MaxFailed", "0, 2 or 10%");
        return new FailureBudget(percent ? (int)Math.Floor(value * (double)totalHosts / 100) : value);
    }

    public bool IsSpent(int failed) => failed > Allowed;
}
