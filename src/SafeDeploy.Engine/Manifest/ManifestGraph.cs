namespace SafeDeploy.Engine.Manifest;

/// <summary>Graph questions about phases: cycles, waves, which phases may run at the same time.</summary>
internal static class ManifestGraph
{
    /// <summary>Every cycle among the phases, each as the phase names in order (first repeated at the end).</summary>
    public static IReadOnlyList<IReadOnlyList<string>> Cycles(IReadOnlyDictionary<string, IReadOnlyList<string>> deps)
    {
        var cycles = new List<IReadOnlyList<string>>();
        var state = new Dictionary<string, int>(); // 0 new, 1 on stack, 2 done
        var stack = new List<string>();
        void Visit(string n)
        {
            state[n] = 1;
            stack.Add(n);
            foreach (var d in deps.TryGetValue(n, out var ds) ? ds : Array.Empty<string>())
            {
                if (!deps.ContainsKey(d)) continue;
                var s = state.GetValueOrDefault(d);
                if (s == 0) Visit(d);
                else if (s == 1)
                {
                    var from = stack.IndexOf(d);
                    var cycle = stack.Skip(from).Append(d).ToList();
                    cycles.Add(cycle);
                }
            }
            stack.RemoveAt(stack.Count - 1);
            state[n] = 2;
        }
        foreach (var n in deps.Keys) if (state.GetValueOrDefault(n) == 0) Visit(n);
        return cycles;
    }

    public static IReadOnlyList<IReadOnlyList<PhaseDefinition>> Waves(IReadOnlyList<PhaseDefinition> phases)
    {
        var level = new Dictionary<string, int>();
        int Level(PhaseDefinition p) => level.TryGetValue(p.Name, out var l) ? l
            : level[p.Name] = p.DependsOn.Select(d => phases.FirstOrDefault(x => x.Name == d)).OfType<PhaseDefinition>().Select(Level).DefaultIfEmpty(-1).Max() + 1;
        return phases.GroupBy(Level).OrderBy(g => g.Key).Select(g => (IReadOnlyList<PhaseDefinition>)g.ToList()).ToList();
    }

    /// <summary>The phases <paramref name="name"/> depends on, directly or not.</summary>
    public static HashSet<string> Ancestors(IReadOnlyList<PhaseDefinition> phases, string name)
    {
        var seen = new HashSet<string>();
        var todo = new Stack<string>();
        todo.Push(name);
        while (todo.Count > 0)
        {
            var current = todo.Pop();
            foreach (var d in phases.FirstOrDefault(p => p.Name == current)?.DependsOn ?? [])
                if (seen.Add(d)) todo.Push(d);
        }
        return seen;
    }

    /// <summary>Pairs of phases that may run at the same time and write the same path without sharing a resource.</summary>
    public static IEnumerable<(PhaseDefinition A, PhaseDefinition B, string Path)> Races(IReadOnlyList<PhaseDefinition> phases)
    {
        var ancestors = phases.ToDictionary(p => p.Name, p => Ancestors(phases, p.Name));
        for (int i = 0; i < phases.Count; i++)
            for (int j = i + 1; j < phases.Count; j++)
            {
                var (a, b) = (phases[i], phases[j]);
                if (ancestors[a.Name].Contains(b.Name) || ancestors[b.Name].Contains(a.Name)) continue;
                if (a.Resources.Intersect(b.Resources, StringComparer.Ordinal).Any()) continue;
                var shared = a.Writes.Select(Normalize).Intersect(b.Writes.Select(Normalize), StringComparer.Ordinal).FirstOrDefault();
                if (shared is not null) yield return (a, b, shared);
            }
    }

    static string Normalize(string p) => System.IO.Path.IsPathRooted(p) ? System.IO.Path.GetFullPath(p).TrimEnd('/') : p;
}
