// safedeploy-step: reads one HostStep request (JSON) on standard input and prints its result line. SAFEDEPLOY_MODULE names
// the staged module's manifest, for a try-mode run's watchdog (the same variable `safedeploy -FleetStep` reads).
return SafeDeploy.Engine.Fleet.HostStep.Run(Console.In, Console.Out, Environment.GetEnvironmentVariable("SAFEDEPLOY_MODULE"), "native");
