namespace SafeDeploy.Engine.Platform;

/// <summary>
/// The one allocator of progress activity ids for the whole module: every bar (lock waits, downloads, deployments and
/// their phases) takes its ids here, so two bars of one session never share an id.
/// </summary>
internal static class ProgressIds
{
    static int next = 7000;

    /// <summary>One id.</summary>
    public static int Next() => Interlocked.Increment(ref next);

    /// <summary><paramref name="count"/> consecutive ids; returns the first (a parent bar and its children).</summary>
    public static int Block(int count) => Interlocked.Add(ref next, count) - count + 1;
}
