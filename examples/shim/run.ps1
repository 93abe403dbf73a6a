# Runs examples/shim/deploy.yaml in a sandbox under /tmp, without root: the README's main job.
#
#   src/SafeDeploy.Host/bin/Release/net10.0/safedeploy -File examples/shim/run.ps1 [-Version 2] [-Port 18080] [-Sandbox /tmp/safedeploy-shim]
#
# The sandbox holds the -Root (opt/, etc/ld.so.preload, run/, var/), the build folder and SafeDeploy's state (journals,
# logs, backups under <sandbox>/state). Run it twice with different -Version values to see a new generation; the script
# prints where the journal and logs are, the running service, and how to undo and stop it.
param(
    [string] $Version = '2',
    [int] $Port = 18080,
    [string] $Sandbox = '/tmp/safedeploy-shim',
    [string] $Variant = ''   # e.g. -DSHIM_CRASH_IN_CONSTRUCTOR: watch the deployment refuse it and roll back
)
$ErrorActionPreference = 'Stop'
$here = [IO.Path]::GetDirectoryName($PSCommandPath)
$fixtures = [IO.Path]::GetFullPath([IO.Path]::Combine($here, '../../tests/fixtures/shim'))
$root = [IO.Path]::Combine($Sandbox, 'root')
$build = [IO.Path]::Combine($Sandbox, 'build')
$stateBase = $Sandbox   # SafeDeploy keeps its state in <base>/state (journals, logs, backups) and <base>/lock
foreach ($d in $root, $build) { $null = [IO.Directory]::CreateDirectory($d) }

# The sample service the shim goes into (built once; not part of the deployment).
if (-not [IO.File]::Exists([IO.Path]::Combine($build, 'service'))) {
    & make -s -C $fixtures "OUT=$build" tools
    if ($LASTEXITCODE -ne 0) { throw "building the sample service failed (make exited with $LASTEXITCODE)" }
}

# A failed deployment is an error record, not the end of this script: the phase table is shown either way.
$result = Invoke-SafeDeploy -Manifest ([IO.Path]::Combine($here, 'deploy.yaml')) -Root $root -StateDirectory $stateBase -ErrorAction Continue -ErrorVariable failed -Variables @{
    version        = $Version
    port           = "$Port"
    build          = $build
    serviceProgram = [IO.Path]::Combine($build, 'service')
    shimDefines    = $Variant
}
if ($null -eq $result) { throw "the deployment did not start: $failed" }
$result
''
'{0,-9} {1,-14} {2,10}  {3}' -f 'Phase', 'Status', 'Duration', 'Error'
foreach ($p in $result.Phases) { '{0,-9} {1,-14} {2,8:0.00} s  {3}' -f $p.Name, $p.Status, $p.Duration.TotalSeconds, $p.Error }
''
"journal:  $($result.JournalPath)"
"logs:     $($result.LogDirectory)"
$pidFile = [IO.Path]::Combine($root, 'run', 'shim-sample.pid')
if ($result.Status -eq 'Succeeded') {
    $client = [Net.Http.HttpClient]::new()
    "health:   " + $client.GetStringAsync("http://127.0.0.1:$Port/health").GetAwaiter().GetResult().Trim()
}
if ([IO.File]::Exists($pidFile)) {
    $servicePid = [IO.File]::ReadAllText($pidFile).Trim()
    "service:  pid $servicePid on http://127.0.0.1:$Port/ (generation $($result.Generation))"
    "stop it:  kill $servicePid    # or: kill `$(cat $pidFile)"
}
"undo it:  Undo-SafeDeploy -Name shim -StateDirectory $stateBase    # brings the previous generation back"
if ($result.Status -ne 'Succeeded') { exit 1 }
