using System.Globalization;
using SafeDeploy.Engine.Errors;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace SafeDeploy.Engine.Fleet;

/// <summary>
/// Reads an inventory: `defaults:` (settings for every host), `hosts:` (name: settings) and `groups:` (name: [hosts]).
/// Every problem is collected with file, line and column and reported at once as one InventoryInvalid error.
/// </summary>
internal static class InventoryParser
{
    static readonly string[] hostKeys = ["address", "port", "user", "identityFile", "sshOptions", "variables", "root", "stateDirectory"];

    public static FleetInventory ParseFile(string path)
    {
        var full = Path.GetFullPath(path);
        if (!File.Exists(full))
            throw new SafeDeployException("InventoryNotFound", ErrorKind.ObjectNotFound, full,
                $"The inventory '{full}' does not exist.", "Check the -Inventory path.");
        return Parse(File.ReadAllText(full), full);
    }

    public static FleetInventory Parse(string text, string file)
    {
        var problems = new List<string>();
        void Problem(Mark at, string message) => problems.Add($"{file}:{at.Line}:{at.Column}: {message}");
        var stream = new YamlStream();
        try { stream.Load(new StringReader(text)); }
        catch (YamlException e) { Problem(e.Start, e.InnerException?.Message ?? e.Message); return Throw(file, problems); }
        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is not YamlMappingNode root)
        {
            Problem(stream.Documents.Count == 0 ? Mark.Empty : stream.Documents[0].RootNode.Start, "An inventory is a mapping with 'hosts:' (and optional 'defaults:' and 'groups:').");
            return Throw(file, problems);
        }
        var reader = new Reader(Problem);
        YamlMappingNode? defaults = null, hosts = null, groups = null;
        foreach (var (k, v) in root.Children)
        {
            switch (reader.Key(k))
            {
                case "defaults": defaults = reader.Map(v, "defaults"); break;
                case "hosts": hosts = reader.Map(v, "hosts"); break;
                case "groups": groups = reader.Map(v, "groups"); break;
                default: Problem(k.Start, $"Unknown key '{reader.Key(k)}'. Known keys: defaults, hosts, groups."); break;
            }
        }
        if (hosts is null && !problems.Any()) Problem(root.Start, "The inventory has no 'hosts:' mapping.");
        var baseHost = defaults is null ? new FleetHost { Name = "", Address = "" } : reader.Host(defaults, new FleetHost { Name = "", Address = "" }, hostKeys.Where(k => k != "address").ToArray());
        var list = new List<FleetHost>();
        foreach (var (k, v) in hosts?.Children ?? Enumerable.Empty<KeyValuePair<YamlNode, YamlNode>>())
        {
            var name = reader.Key(k);
            if (!ValidName(name)) { Problem(k.Start, $"'{name}' is not a valid host name: use letters, digits, '.', '_' and '-'."); continue; }
            if (list.Any(h => h.Name == name)) { Problem(k.Start, $"Host '{name}' is listed twice."); continue; }
            var start = baseHost with { Name = name, Address = name };
            var host = v is YamlScalarNode { Value: null or "" } ? start : v is YamlMappingNode m ? reader.Host(m, start, hostKeys) : null;
            if (host is null) { Problem(v.Start, $"The settings of host '{name}' must be a mapping (address:, port:, ...)."); continue; }
            list.Add(host);
        }
        var groupMap = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        foreach (var (k, v) in groups?.Children ?? Enumerable.Empty<KeyValuePair<YamlNode, YamlNode>>())
        {
            var name = reader.Key(k);
            var members = reader.List(v, $"group '{name}'") ?? new List<(string, Mark)>();
            foreach (var (member, at) in members)
                if (!list.Any(h => h.Name == member)) Problem(at, $"Group '{name}' lists '{member}', which is not under 'hosts:'.");
            groupMap[name] = members.Select(m => m.Item1).ToList();
        }
        if (problems.Count > 0) return Throw(file, problems);
        return new FleetInventory { File = file, Hosts = list, Groups = groupMap };
    }

    /// <summary>Host names double as file names in the journals: keep them plain.</summary>
    public static bool ValidName(string name) =>
        name.Length is > 0 and <= 200 && name[0] != '.' && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-') && !name.Contains("..");

    static FleetInventory Throw(string file, List<string> problems) =>
        throw new SafeDeployException("InventoryInvalid", ErrorKind.InvalidData, file,
            $"The inventory has {problems.Count} problem(s):\n  " + string.Join("\n  ", problems),
            "Fix the inventory at the lines shown (see Get-Help Invoke-SafeDeploy -Parameter Inventory for its keys).");

    sealed class Reader(Action<Mark, string> problem)
    {
        public string Key(YamlNode k) => (k as YamlScalarNode)?.Value ?? "";

        public YamlMappingNode? Map(YamlNode v, string what)
        {
            if (v is YamlMappingNode m) return m;
            if (v is YamlScalarNode { Value: null or "" }) return null;
            problem(v.Start, $"'{what}' must be a mapping.");
            return null;
        }

        public string? Scalar(YamlNode v, string what)
        {
            if (v is YamlScalarNode s) return s.Value ?? "";
            problem(v.Start, $"'{what}' must be a single value.");
            return null;
        }

        public List<(string, Mark)>? List(YamlNode v, string what)
        {
            if (v is not YamlSequenceNode seq) { problem(v.Start, $"{what} must be a list."); return null; }
            var items = new List<(string, Mark)>();
            foreach (var c in seq.Children) if (Scalar(c, what + " item") is { } s) items.Add((s, c.Start));
            return items;
        }

        public FleetHost Host(YamlMappingNode m, FleetHost start, string[] allowed)
        {
            var h = start;
            foreach (var (k, v) in m.Children)
            {
                var key = Key(k);
                if (!allowed.Contains(key)) { problem(k.Start, $"Unknown key '{key}'. Known keys: {string.Join(", ", allowed)}."); continue; }
                switch (key)
                {
                    case "address": if (Scalar(v, key) is { Length: > 0 } a) h = h with { Address = a }; break;
                    case "user": if (Scalar(v, key) is { Length: > 0 } u) h = h with { User = u }; break;
                    case "port":
                        if (Scalar(v, key) is { } p)
                        {
                            if (int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n is > 0 and < 65536) h = h with { Port = n };
                            else problem(v.Start, $"'port' must be a number from 1 to 65535, not '{p}'.");
                        }
                        break;
                    case "identityFile": h = h with { IdentityFile = Absolute(v, key) ?? h.IdentityFile }; break;
                    case "root": h = h with { Root = Absolute(v, key) ?? h.Root }; break;
                    case "stateDirectory": h = h with { StateDirectory = Absolute(v, key) ?? h.StateDirectory }; break;
                    case "sshOptions":
                        if (List(v, "'sshOptions'") is { } opts)
                        {
                            foreach (var (o, at) in opts)
                                if (!o.Contains('=') || o.StartsWith('-')) problem(at, $"An ssh option is 'Name=value' (as for ssh -o), not '{o}'.");
                            h = h with { SshOptions = h.SshOptions.Concat(opts.Select(o => o.Item1)).ToList() };
                        }
                        break;
                    case "variables":
                        if (Map(v, key) is { } vars)
                        {
                            var merged = new Dictionary<string, string>(h.Variables, StringComparer.Ordinal);
                            foreach (var (vk, vv) in vars.Children) if (Scalar(vv, $"variable '{Key(vk)}'") is { } s) merged[Key(vk)] = s;
                            h = h with { Variables = merged };
                        }
                        break;
                }
            }
            return h;
        }

        string? Absolute(YamlNode v, string key)
        {
            var s = Scalar(v, key);
            if (s is null) return null;
            if (!Path.IsPathRooted(s)) { problem(v.Start, $"'{key}' must be an absolute path on the host, not '{s}'."); return null; }
            return s;
        }
    }
}
