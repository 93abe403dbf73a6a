# Runs examples/shim/deploy.yaml in a sandbox under /tmp, without root: the README's main job.
#
#   src/SafeDeploy.Host/bin/Release/net10.0/safedeploy -File examples/shim/run.ps1 [-Version 2] [-Port 18080] [-Sandbox /tmp/safedeploy-shim]
#
# The sandbox holds the -Root (opt/, etc/ld.so.preload, run/, var/), the build folder and SafeDeploy's state (journals,
# backups). Run it twice with different -Version values to see a new generation; Undo-SafeDeploy -Name shim
# -StateDirectory <sandbox>/state brings the previous one back. Stop the sample service with: kill $(cat <sandbox>/root/run/shim-sample.pid)
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
$state = [IO.Path]::Combine($Sandbox, 'state')
foreach ($d in $root, $build) { $null = [IO.Directory]::CreateDirectory($d) }

# The sample service the shim goes into (built once; not part of the deployment).
if (-not [IO.File]::Exists([IO.Path]::Combine($build, 'service'))) {
    & make -s -C $fixtures "OUT=$build" tools
    if ($LASTEXITCODE -ne 0) { throw "building the sample service failed (make exited with $LASTEXITCODE)" }
}

$result = Invoke-SafeDeploy -Manifest ([IO.Path]::Combine($here, 'deploy.yaml')) -Root $root -StateDirectory $state -Variables @{
    version        = $Version
    port           = "$Port"
    build          = $build
    serviceProgram = [IO.Path]::Combine($build, 'service')
    shimDefines    = $Variant
}
$result
foreach ($p in $result.Phases) { "{0,-9} {1,-10} {2,6:0.00}s {3}" -f $p.Name, $p.Status, $p.Duration.TotalSeconds, $p.Error }
if ($result.Status -eq 'Succeeded') {
    $client = [Net.Http.HttpClient]::new()
    "health: " + $client.GetStringAsync("http://127.0.0.1:$Port/health").GetAwaiter().GetResult()
}
