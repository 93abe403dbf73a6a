// safedeploy-step: reads one HostStep request (JSON) on standard input and prints its result line. SAFEDEPLOY_MODULE names
// the staged module's manifest (the same variable `safedeploy -FleetStep` reads). A try-mode run's watchdog is a
// PowerShell host: the one-file safedeploy this step was uploaded beside, unless SAFEDEPLOY_HOST names another.
var beside = Path.Combine(AppContext.BaseDirectory, "safedeploy");
if (Environment.GetEnvironmentVariable("SAFEDEPLOY_HOST") is not { Length: > 0 } && File.Exists(beside))
    Environment.SetEnvironmentVariable("SAFEDEPLOY_HOST", beside);
return SafeDeploy.Engine.Fleet.HostStep.Run(Console.In, Console.Out, Environment.GetEnvironmentVariable("SAFEDEPLOY_MODULE"), "native");
