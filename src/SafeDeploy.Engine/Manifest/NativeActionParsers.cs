using SafeDeploy.Engine.Actions;
using SafeDeploy.Engine.Services;
using SafeDeploy.Engine.SharedLibraries;

namespace SafeDeploy.Engine.Manifest;

/// <summary>Parsers of the native shim actions: sharedLibrary, preload, service, health, loaded (and the service spec they share).</summary>
static class NativeActionParsers
{
    public static void Register(ActionRegistry registry)
    {
        registry.Register("sharedLibrary", SharedLibrary);
        registry.Register("preload", Preload);
        registry.Register("service", Service);
        registry.Register("health", Health);
        registry.Register("loaded", Loaded);
    }

    static IDeployAction? SharedLibrary(ActionNode node)
    {
        if (node.IsScalar) return node.Scalar() is { Length: > 0 } p ? new SharedLibraryAction { Path = p } : null;
        node.AllowOnly("path", "symbols", "canary", "probes", "timeout");
        var path = node.String("path", required: true);
        var symbols = node.StringList("symbols");
        var canary = node.Bool("canary");
        var probes = node.StringList("probes");
        var timeout = node.Duration("timeout");
        if (path is null) return null;
        return new SharedLibraryAction
        {
            Path = path, Symbols = symbols ?? [], Canary = canary ?? true, Probes = probes ?? [], Timeout = timeout ?? TimeSpan.FromSeconds(10),
        };
    }

    static IDeployAction? Preload(ActionNode node)
    {
        if (node.IsScalar)
        {
            var lib = node.Scalar();
            if (lib is not null && !Path.IsPathRooted(lib)) { node.Error($"The preloaded library must be an absolute path, not '{lib}'."); return null; }
            return lib is { Length: > 0 } ? new PreloadAction { Library = lib } : null;
        }
        node.AllowOnly("library", "file", "ensure", "timeout");
        var library = node.AbsolutePath("library", required: true);
        var file = node.AbsolutePath("file");
        var ensure = node.String("ensure");
        if (ensure is not null and not ("present" or "absent")) node.ErrorAt("ensure", $"'ensure' must be present or absent, not '{ensure}'.");
        var timeout = node.Duration("timeout");
        if (library is null) return null;
        return new PreloadAction { Library = library, File = file ?? PreloadFile.SystemPath, Present = ensure != "absent", LockTimeout = timeout };
    }

    static IDeployAction? Service(ActionNode node)
    {
        if (!node.IsMapping) { node.Error("'service' needs 'action' (stop, start or restart) and 'manager' with its settings."); return null; }
        node.AllowOnly([.. ServiceSpec.Keys, "action"]);
        var op = node.String("action", required: true);
        if (op is not null and not ("stop" or "start" or "restart")) { node.ErrorAt("action", $"'action' must be stop, start or restart, not '{op}'."); op = null; }
        var spec = ServiceSpecParser.Parse(node);
        return op is null || spec is null ? null : new ServiceAction { Operation = op, Service = spec };
    }

    static IDeployAction? Health(ActionNode node)
    {
        if (!node.IsMapping) { node.Error("'health' needs 'url' or 'command'."); return null; }
        node.AllowOnly("url", "command", "expectStatus", "body", "timeout", "interval", "attemptTimeout");
        var url = node.String("url");
        var command = node.Child("command")?.Arguments("command");
        if ((url is null) == (node.Child("command") is null)) { node.Error("'health' needs exactly one of 'url' or 'command'.", "MissingKey"); return null; }
        Uri? uri = null;
        if (url is not null && (!Uri.TryCreate(url, UriKind.Absolute, out uri) || uri.Scheme is not ("http" or "https")))
        {
            node.ErrorAt("url", $"'url' must be an absolute http:// or https:// URL, not '{url}'.");
            return null;
        }
        var status = node.Integer("expectStatus");
        var body = node.String("body");
        if (body is not null)
        {
            try { _ = new System.Text.RegularExpressions.Regex(body); }
            catch (ArgumentException e) { node.ErrorAt("body", $"'body' is not a valid regular expression: {e.Message}"); return null; }
        }
        var timeout = node.Duration("timeout");
        var interval = node.Duration("interval");
        var attempt = node.Duration("attemptTimeout");
        if (url is null && command is null) return null;
        return new HealthAction
        {
            Probe = new HealthProbeOptions
            {
                Url = uri, Command = command, ExpectStatus = (int)(status ?? 200), BodyPattern = body, Timeout = timeout ?? TimeSpan.FromSeconds(30),
                Interval = interval ?? TimeSpan.FromMilliseconds(250), AttemptTimeout = attempt ?? TimeSpan.FromSeconds(5),
            },
        };
    }

    static IDeployAction? Loaded(ActionNode node)
    {
        if (!node.IsMapping) { node.Error("'loaded' needs 'library' and 'pidFile' (or 'unit')."); return null; }
        node.AllowOnly("library", "pidFile", "unit", "systemctl");
        var library = node.AbsolutePath("library", required: true);
        var pidFile = node.AbsolutePath("pidFile");
        var unit = node.String("unit");
        if ((pidFile is null) == (unit is null)) { node.Error("'loaded' needs exactly one of 'pidFile' or 'unit'.", "MissingKey"); return null; }
        if (library is null) return null;
        return new LoadedAction { Library = library, PidFile = pidFile, Unit = unit, Systemctl = node.String("systemctl") ?? "systemctl" };
    }
}
