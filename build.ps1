#Requires -Version 7.6
<#
.SYNOPSIS
    Builds, tests and packages SafeDeploy (for users who have pwsh; without it, use dotnet directly — see README.md).
.EXAMPLE
    ./build.ps1; Import-Module ./SafeDeploy.psd1
.EXAMPLE
    ./build.ps1 -Task Test      # the xunit tests, then the Pester suites in this pwsh
.EXAMPLE
    ./build.ps1 -Task Package   # out/SafeDeploy/<version>/ for Publish-PSResource, out/safedeploy/<rid>/safedeploy (one file) and safedeploy-step
#>
[CmdletBinding()]
param(
    [ValidateSet('Build', 'Test', 'Package')]
    [string] $Task = 'Build',
    [ValidateSet('Debug', 'Release')]
    [string] $Configuration = 'Release',
    # Runtimes of the single-file safedeploy (Package).
    [ValidateSet('linux-x64', 'linux-arm64')]
    [string[]] $Runtime = @('linux-x64', 'linux-arm64'),
    # Package what the last build produced (CI runs the tests, which build, first).
    [switch] $NoBuild
)
$ErrorActionPreference = 'Stop'
Set-Location $PSScriptRoot

function Invoke-Build {
    dotnet build SafeDeploy.slnx -c $Configuration
    if ($LASTEXITCODE) { throw "dotnet build failed ($LASTEXITCODE)" }
}

# The module as users install it: the manifest, LICENSE, README, bin/ (assemblies), module/ (format views), en-US/ (help).
function New-ModuleStage {
    $version = (Import-PowerShellDataFile ./SafeDeploy.psd1).ModuleVersion
    $target = Join-Path $PSScriptRoot "out/SafeDeploy/$version"
    if (Test-Path $target) { Remove-Item $target -Recurse -Force }
    New-Item -ItemType Directory -Path $target, "$target/module" | Out-Null
    Copy-Item SafeDeploy.psd1, LICENSE, README.md -Destination $target
    Copy-Item bin -Destination $target -Recurse
    Copy-Item module/*.format.ps1xml -Destination "$target/module"
    Copy-Item en-US -Destination $target -Recurse
    Get-ChildItem $target -Recurse -Include *.pdb | Remove-Item
    Test-ModuleManifest (Join-Path $target 'SafeDeploy.psd1') | Out-Null
    $target
}

# One self-contained file per runtime that needs neither .NET nor pwsh, with the staged module inside it.
function New-SingleFileHost([string] $Stage, [string] $Rid) {
    $zip = Join-Path $PSScriptRoot 'out/SafeDeploy.Module.zip'
    if (Test-Path $zip) { Remove-Item $zip }
    Compress-Archive -Path (Join-Path $Stage '*') -DestinationPath $zip
    $out = Join-Path $PSScriptRoot "out/safedeploy/$Rid"
    dotnet publish src/SafeDeploy.Host -c Release -r $Rid --self-contained true -p:PublishSingleFile=true `
        -p:IncludeNativeLibrariesForSelfExtract=true -p:PublishReadyToRunComposite=false "-p:EmbedModuleZip=$zip" -o $out | Out-Host
    if ($LASTEXITCODE) { throw "dotnet publish of the single-file host for $Rid failed ($LASTEXITCODE)" }
    Get-ChildItem $out -Exclude safedeploy | Remove-Item -Recurse -Force
    Get-Item (Join-Path $out 'safedeploy')
}

# Beside the one file, the rollout step compiled ahead of time (src/SafeDeploy.Step): a fleet host runs it instead of
# starting the runtime in safedeploy. Native code is compiled for this machine's runtime only (no cross-linker here);
# hosts of another runtime run their steps with safedeploy -FleetStep.
function New-NativeStep([string] $Rid) {
    $out = Join-Path $PSScriptRoot "out/safedeploy/$Rid"
    $machine = [System.Runtime.InteropServices.RuntimeInformation]::RuntimeIdentifier
    if ($Rid -ne $machine) {
        Write-Warning "No safedeploy-step for $Rid (native compilation runs for $machine only): its hosts run steps with safedeploy -FleetStep."
        return
    }
    $tmp = Join-Path $PSScriptRoot "out/obj/step-$Rid"
    dotnet publish src/SafeDeploy.Step -c Release -r $Rid -o $tmp | Out-Host
    if ($LASTEXITCODE) { throw "dotnet publish of safedeploy-step for $Rid failed ($LASTEXITCODE)" }
    Copy-Item (Join-Path $tmp 'safedeploy-step') -Destination $out
    Remove-Item $tmp -Recurse -Force
    Get-Item (Join-Path $out 'safedeploy-step')
}

switch ($Task) {
    'Build' { Invoke-Build }
    'Test' {
        dotnet test SafeDeploy.slnx -c $Configuration
        if ($LASTEXITCODE) { throw "tests failed ($LASTEXITCODE)" }
        if (Get-Module -ListAvailable Pester | Where-Object Version -ge '5.0') {
            $result = Invoke-Pester -Path tests/Pester -Output Detailed -PassThru
            if ($result.FailedCount -or $result.FailedBlocksCount -or $result.FailedContainersCount) { throw 'Pester suites failed' }
        } else {
            Write-Warning 'Pester 5 is not installed; skipped tests/Pester (Install-PSResource Pester -Version 5.9.1, or see .ci/run).'
        }
    }
    'Package' {
        if (-not $NoBuild) { Invoke-Build }
        $stage = New-ModuleStage
        Write-Host "Staged $stage — publish with: Publish-PSResource -Path '$stage' -Repository <name> [-ApiKey <key>]"
        foreach ($rid in $Runtime) {
            $file = New-SingleFileHost $stage $rid
            Write-Host ("Built {0} ({1:N1} MiB): one file for {2} machines with neither .NET nor pwsh" -f $file.FullName, ($file.Length / 1MB), $rid)
            if ($step = New-NativeStep $rid) {
                Write-Host ("Built {0} ({1:N1} MiB): its rollout step, native code, beside it" -f $step.FullName, ($step.Length / 1MB))
            }
        }
    }
}
