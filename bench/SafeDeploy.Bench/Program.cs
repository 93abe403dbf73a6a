using SafeDeploy.Bench;

// Helper processes that a benchmark starts from this same executable.
if (FoundationBench.IsLockWaiter(args)) return FoundationBench.LockWaiter(args);

var all = typeof(IBenchmark).Assembly.GetTypes()
    .Where(t => typeof(IBenchmark).IsAssignableFrom(t) && !t.IsAbstract)
    .Select(t => (IBenchmark)Activator.CreateInstance(t)!)
    .OrderBy(b => b.Name).ToList();
var wanted = args.Length == 0 || args[0] == "all" ? all : all.Where(b => args.Contains(b.Name)).ToList();
if (wanted.Count == 0)
{
    Console.Error.WriteLine($"usage: SafeDeploy.Bench <{string.Join('|', all.Select(b => b.Name))}|all>");
    return 64;
}
foreach (var b in wanted)
{
    Console.WriteLine($"== {b.Name}");
    var report = new Report(b.Name);
    b.Run(report);
    Console.WriteLine($"written: {report.Write()}");
}
return 0;
