#Requires -Version 7.4
<#
.SYNOPSIS
    Builds, tests and packages SafeDeploy (for users who have pwsh; without it, use dotnet directly — see README.md).
.EXAMPLE
    ./build.ps1; Import-Module ./SafeDeploy.psd1
.EXAMPLE
    ./build.ps1 -Task Package   # stages out/SafeDeploy/<version>/ for Publish-Module
#>
[CmdletBinding()]
param(
    [ValidateSet('Build', 'Test', 'Package')]
    [string] $Task = 'Build',
    [ValidateSet('Debug', 'Release')]
    [string] $Configuration = 'Release'
)
$ErrorActionPreference = 'Stop'
Set-Location $PSScriptRoot

function Invoke-Build {
    dotnet build SafeDeploy.slnx -c $Configuration
    if ($LASTEXITCODE) { throw "dotnet build failed ($LASTEXITCODE)" }
}

switch ($Task) {
    'Build' { Invoke-Build }
    'Test' {
        dotnet test SafeDeploy.slnx -c $Configuration
        if ($LASTEXITCODE) { throw "tests failed ($LASTEXITCODE)" }
        if (Get-Module -ListAvailable Pester | Where-Object Version -ge '5.0') {
            Invoke-Pester -Path tests/Pester -Output Detailed -CI
        } else {
            Write-Warning 'Pester 5 is not installed; skipped tests/Pester (Install-Module Pester -MinimumVersion 5.0).'
        }
    }
    'Package' {
        Invoke-Build
        $version = (Import-PowerShellDataFile ./SafeDeploy.psd1).ModuleVersion
        $target = Join-Path $PSScriptRoot "out/SafeDeploy/$version"
        if (Test-Path $target) { Remove-Item $target -Recurse -Force }
        New-Item -ItemType Directory -Path $target | Out-Null
        Copy-Item SafeDeploy.psd1, README.md -Destination $target
        Copy-Item module -Destination $target -Recurse
        Copy-Item en-US -Destination $target -Recurse
        Get-ChildItem $target -Recurse -Include *.pdb | Remove-Item
        Test-ModuleManifest (Join-Path $target 'SafeDeploy.psd1') | Out-Null
        Write-Host "Staged $target — publish with: Publish-Module -Path '$target' -NuGetApiKey <key>"
    }
}
