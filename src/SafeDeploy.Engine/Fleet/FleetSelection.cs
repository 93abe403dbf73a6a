using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Platform;

namespace SafeDeploy.Engine.Fleet;

/// <summary>Which hosts a rollout covers: the inventory (all, -Group's, or the named ones), or -HostName alone.</summary>
internal static class FleetSelection
{
    public static IReadOnlyList<FleetHost> Select(string? inventoryPath, IReadOnlyList<string>? groups, IReadOnlyList<string>? names)
    {
        if (inventoryPath is null) return (names ?? []).Select(Parse).ToList();
        var inventory = InventoryParser.ParseFile(inventoryPath);
        IEnumerable<FleetHost> hosts = inventory.Hosts;
        if (groups is { Count: > 0 })
        {
            var members = new HashSet<string>(StringComparer.Ordinal);
            foreach (var g in groups)
            {
                if (!inventory.Groups.TryGetValue(g, out var list))
                    throw new SafeDeployException("GroupNotFound", ErrorKind.ObjectNotFound, g,
                        $"The inventory '{inventory.File}' has no group '{g}' (it has: {string.Join(", ", inventory.Groups.Keys)}).", "Check -Group against the inventory's 'groups:'.");
                members.UnionWith(list);
            }
            hosts = hosts.Where(h => members.Contains(h.Name));
        }
        if (names is { Count: > 0 })
        {
            foreach (var n in names.Where(n => !inventory.Hosts.Any(h => h.Name == n)))
                throw new SafeDeployException("HostNotFound", ErrorKind.ObjectNotFound, n,
                    $"The inventory '{inventory.File}' has no host '{n}'.", "Check -HostName against the inventory's 'hosts:'.");
            hosts = hosts.Where(h => names.Contains(h.Name));
        }
        var selected = hosts.ToList();
        if (selected.Count == 0)
            throw new SafeDeployException("NoHostsSelected", ErrorKind.InvalidArgument, inventory.File,
                "The selection covers no host.", "Check -Group and -HostName against the inventory.");
        return selected;
    }

    /// <summary>A -HostName entry without an inventory: [user@]host[:port], with the user's own ssh configuration for the rest.</summary>
    public static FleetHost Parse(string entry)
    {
        var text = entry.Trim();
        string? user = null;
        int? port = null;
        if (text.IndexOf('@') is var at and > 0) { user = text[..at]; text = text[(at + 1)..]; }
        if (text.LastIndexOf(':') is var colon and > 0 && !text.Contains('[') && text.IndexOf(':') == colon)
        {
            if (!int.TryParse(text[(colon + 1)..], out var p) || p is < 1 or > 65535)
                throw new SafeDeployException("InvalidHostName", ErrorKind.InvalidArgument, entry, $"'{entry}' has no valid port after ':'.", "Write host, user@host or host:port.");
            port = p;
            text = text[..colon];
        }
        if (!InventoryParser.ValidName(text))
            throw new SafeDeployException("InvalidHostName", ErrorKind.InvalidArgument, entry,
                $"'{entry}' is not a host name SafeDeploy can journal.", "Use letters, digits, '.', '_' and '-' (a name from ~/.ssh/config works too).");
        return new FleetHost { Name = text, Address = text, User = user, Port = port };
    }

    /// <summary>The safedeploy to upload to hosts without pwsh: SAFEDEPLOY_HOST, this process when it is safedeploy, or one on PATH.</summary>
    public static string? DefaultHostExecutable()
    {
        if (Environment.GetEnvironmentVariable("SAFEDEPLOY_HOST") is { Length: > 0 } h && Path.GetFileName(h) == "safedeploy" && File.Exists(h)) return h;
        if (Environment.ProcessPath is { } self && Path.GetFileName(self) == "safedeploy") return self;
        return ExternalCommand.Which("safedeploy");
    }
}
