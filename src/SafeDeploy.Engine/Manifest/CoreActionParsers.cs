using System.Collections;
using SafeDeploy.Engine.Actions;
using SafeDeploy.Engine.Models;

namespace SafeDeploy.Engine.Manifest;

/// <summary>
/// Parsers of the deploy engine's own actions (checks, run, install, editFile, script, model): YAML node to action.
/// They record every problem on the node and return null when the node is unusable; they never touch the machine.
/// </summary>
static class CoreActionParsers
{
    public static void Register(ActionRegistry registry)
    {
        registry.Register("checks", Checks);
        registry.Register("run", Run);
        registry.Register("install", Install);
        registry.Register("editFile", EditFile);
        registry.Register("script", Script);
        registry.Register("model", Model);
    }

    static readonly string[] checkKinds = ["diskFree", "fileExists", "commandExists", "command"];

    static IDeployAction? Checks(ActionNode node)
    {
        var checks = new List<Check>();
        foreach (var item in node.Items())
        {
            if (!item.IsMapping) { item.Error($"Each check is a mapping with one of: {string.Join(", ", checkKinds)}."); continue; }
            item.AllowOnly([.. checkKinds, "timeout"]);
            var present = checkKinds.Where(item.Has).ToList();
            if (present.Count != 1) { item.Error($"Each check needs exactly one of: {string.Join(", ", checkKinds)}.", present.Count == 0 ? "MissingKey" : "InvalidValue"); continue; }
            switch (present[0])
            {
                case "diskFree":
                    var d = item.Child("diskFree")!;
                    d.AllowOnly("path", "minimum");
                    var path = d.AbsolutePath("path", required: true);
                    var min = d.Size("minimum", required: true);
                    if (path is not null && min is not null) checks.Add(new DiskFreeCheck(path, min.Value));
                    break;
                case "fileExists":
                    if (item.String("fileExists") is { } f) checks.Add(new FileExistsCheck(f));
                    break;
                case "commandExists":
                    if (item.String("commandExists") is { } c) checks.Add(new CommandExistsCheck(c));
                    break;
                case "command":
                    if (item.Child("command")?.Command("command") is { } spec)
                        checks.Add(new CommandCheck(spec, item.Duration("timeout") ?? TimeSpan.FromMinutes(1)));
                    break;
            }
        }
        return checks.Count > 0 ? new ChecksAction { Checks = checks } : null;
    }

    static IDeployAction? Run(ActionNode node)
    {
        if (node.IsScalar || node.IsSequence)
            return node.Command("run") is { } c ? new RunAction { Command = c } : null;
        node.AllowOnly("command", "args", "workingDirectory", "environment", "inheritEnvironment", "timeout", "undo");
        CommandSpec? command = null;
        if (node.Has("command") && node.Has("args")) node.ErrorAt("args", "Give either 'command' (a command line) or 'args' (an argument list), not both.");
        else if (node.Has("command")) command = node.Child("command")!.Command("command");
        else if (node.Has("args")) command = node.Child("args")!.Command("args");
        else node.Error("'run' needs 'command' (a command line) or 'args' (an argument list).", "MissingKey");
        var undo = node.Child("undo")?.Command("undo");
        var wd = node.String("workingDirectory");
        var env = node.EnvironmentSpec();
        var timeout = node.Duration("timeout");
        if (command is null) return null;
        return new RunAction
        {
            Command = command, Undo = undo, WorkingDirectory = wd, EnvironmentSpec = env,
            Timeout = timeout ?? TimeSpan.FromMinutes(30),
        };
    }

    static IDeployAction? Install(ActionNode node)
    {
        var items = new List<InstallItem>();
        foreach (var n in node.IsSequence ? node.Items() : [node])
        {
            if (!n.IsMapping) { n.Error("Each 'install' entry needs 'source' and 'target'."); continue; }
            n.AllowOnly("source", "target", "mode");
            var source = n.String("source", required: true);
            var target = n.AbsolutePath("target", required: true);
            var mode = n.Mode("mode");
            if (source is not null && target is not null) items.Add(new InstallItem(source, target, mode));
        }
        return items.Count > 0 ? new InstallAction { Items = items } : null;
    }

    static IDeployAction? EditFile(ActionNode node)
    {
        if (!node.IsMapping) { node.Error("'editFile' needs 'path' and one of 'ensureLine' or 'mergeJson'."); return null; }
        node.AllowOnly("path", "ensureLine", "key", "mergeJson", "mode", "timeout");
        var path = node.AbsolutePath("path", required: true);
        var line = node.String("ensureLine");
        var key = node.String("key");
        var json = node.Has("mergeJson") ? node.PlainValue("mergeJson") as IDictionary : null;
        if (node.Has("mergeJson") && json is null) node.ErrorAt("mergeJson", "'mergeJson' must be a mapping of keys to values.");
        if (line is null && !node.Has("mergeJson")) node.Error("'editFile' needs 'ensureLine' or 'mergeJson'.", "MissingKey");
        if (line is not null && node.Has("mergeJson")) node.ErrorAt("mergeJson", "Give either 'ensureLine' or 'mergeJson', not both.");
        if (key is not null && line is null) node.ErrorAt("key", "'key' goes with 'ensureLine'.");
        var mode = node.Mode("mode") ?? 0x1A4;
        var timeout = node.Duration("timeout");
        if (path is null || (line is null && json is null)) return null;
        return new EditFileAction { Path = path, EnsureLine = line, Key = key, MergeJson = json, NewFileMode = mode, LockTimeout = timeout };
    }

    static IDeployAction? Script(ActionNode node)
    {
        if (node.IsScalar) return node.Scalar() is { Length: > 0 } s ? new ScriptAction { Script = s } : null;
        node.AllowOnly("run", "undo");
        var run = node.String("run", required: true);
        var undo = node.String("undo");
        return run is null ? null : new ScriptAction { Script = run, Undo = undo };
    }

    static IDeployAction? Model(ActionNode node)
    {
        if (node.IsScalar) return node.Scalar() is { Length: > 0 } u ? new ModelAction { Request = new ModelRequest { Uri = u } } : null;
        node.AllowOnly("uri", "sha256", "name", "headers", "cacheDirectory", "target", "mode", "timeout", "verify");
        var uri = node.String("uri", required: true);
        var sha = node.Sha256("sha256");
        var cache = node.AbsolutePath("cacheDirectory");
        var target = node.AbsolutePath("target");
        var mode = node.Mode("mode");
        var headers = node.Map("headers");
        var timeout = node.Duration("timeout");
        var verify = node.Bool("verify");
        if (uri is null) return null;
        return new ModelAction
        {
            Request = new ModelRequest
            {
                Uri = uri, Sha256 = sha, Name = node.String("name"), Headers = headers ?? new Dictionary<string, string>(),
                LockTimeout = timeout, Verify = verify ?? false,
            },
            CacheDirectory = cache, Target = target, Mode = mode,
        };
    }
}
