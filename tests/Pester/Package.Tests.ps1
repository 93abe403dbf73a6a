#Requires -Version 7.6
#Requires -Modules @{ ModuleName = 'Pester'; ModuleVersion = '5.0' }
# The packages as users get them: the staged module through Publish-PSResource / Install-PSResource, and the one-file
# safedeploy on a machine with no .NET. Stage them first: ./build.ps1 -Task Package (.ci/run does).

BeforeDiscovery {
    $root = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
    $version = (Import-PowerShellDataFile (Join-Path $root 'SafeDeploy.psd1')).ModuleVersion
    $hasStage = Test-Path (Join-Path $root "out/SafeDeploy/$version/SafeDeploy.psd1")
    $hasSingleFile = Test-Path (Join-Path $root 'out/safedeploy/linux-x64/safedeploy')
}

BeforeAll {
    $script:root = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
    $script:version = (Import-PowerShellDataFile (Join-Path $root 'SafeDeploy.psd1')).ModuleVersion
    $script:stage = Join-Path $root "out/SafeDeploy/$version"
    $script:pwsh = Join-Path $PSHOME 'pwsh'

    # Runs a pwsh (or any program) with a clean HOME and a deadline; returns exit code and output.
    function script:Invoke-Child([string] $Program, [string[]] $Arguments, [hashtable] $Environment = @{}, [int] $TimeoutSec = 300) {
        $psi = [Diagnostics.ProcessStartInfo]::new($Program)
        foreach ($a in $Arguments) { $psi.ArgumentList.Add($a) }
        $psi.RedirectStandardOutput = $true; $psi.RedirectStandardError = $true; $psi.UseShellExecute = $false
        # Outside the checkout: NuGet (under Publish-PSResource) writes a NuGet/NuGet.Config into its working directory.
        $psi.WorkingDirectory = $TestDrive
        foreach ($k in $Environment.Keys) { if ($null -eq $Environment[$k]) { $psi.Environment.Remove($k) | Out-Null } else { $psi.Environment[$k] = $Environment[$k] } }
        $p = [Diagnostics.Process]::Start($psi)
        $out = $p.StandardOutput.ReadToEndAsync(); $err = $p.StandardError.ReadToEndAsync()
        if (-not $p.WaitForExit($TimeoutSec * 1000)) { $p.Kill($true); throw "$Program did not finish within $TimeoutSec s" }
        $p.WaitForExit()
        [pscustomobject]@{ ExitCode = $p.ExitCode; Out = $out.Result; Err = $err.Result }
    }
}

Describe 'The staged module' -Skip:(-not $hasStage) {
    It 'carries the MIT LICENSE and no placeholder or example URIs' {
        Join-Path $stage 'LICENSE' | Should -Exist
        Get-Content (Join-Path $stage 'LICENSE') -Raw | Should -Match 'MIT License'
        Get-Content (Join-Path $stage 'LICENSE') -Raw | Should -Match 'SafeDeploy contributors'
        Get-Content (Join-Path $stage 'SafeDeploy.psd1') -Raw | Should -Not -Match 'example\.invalid|PLACEHOLDER'
        Get-ChildItem $stage -Recurse -Filter *.pdb | Should -BeNullOrEmpty
    }

    It 'is published with Publish-PSResource, installed with Install-PSResource into a fresh module path, imported by a new pwsh and used' {
        $home2 = Join-Path $TestDrive 'home'
        $repo = Join-Path $TestDrive 'repo'
        New-Item -ItemType Directory $home2, $repo | Out-Null
        $env2 = @{ HOME = $home2; XDG_DATA_HOME = $null; XDG_CONFIG_HOME = $null; XDG_CACHE_HOME = $null; PSModulePath = $null }
        $publish = Invoke-Child $pwsh @('-NoProfile', '-NonInteractive', '-Command', @"
`$ErrorActionPreference = 'Stop'
Register-PSResourceRepository -Name sdlocal -Uri '$repo' -Trusted
Publish-PSResource -Path '$stage' -Repository sdlocal
Install-PSResource -Name SafeDeploy -Version '$version' -Repository sdlocal -Scope CurrentUser -TrustRepository
(Get-Module -ListAvailable SafeDeploy).ModuleBase
"@) $env2
        $publish.ExitCode | Should -Be 0 -Because "$($publish.Out)$($publish.Err)"
        Get-ChildItem $repo -Filter 'safedeploy.*.nupkg' | Should -Not -BeNullOrEmpty
        $publish.Out.Trim() | Should -BeLike "$home2/*SafeDeploy*$version"

        $use = Invoke-Child $pwsh @('-NoProfile', '-NonInteractive', '-Command', @"
`$ErrorActionPreference = 'Stop'
Import-Module SafeDeploy
(Get-Module SafeDeploy).ModuleBase
(Initialize-StateDirectory -Name pkgtest -Path '$TestDrive/state').StateDir
Invoke-WithLock -Path '$TestDrive/pkg.lock' -ScriptBlock { 'locked and ran' }
"@) $env2
        $use.ExitCode | Should -Be 0 -Because "$($use.Out)$($use.Err)"
        $lines = $use.Out.Trim() -split "`n"
        $lines[0] | Should -BeLike "$home2/*"
        $lines[1] | Should -Be (Join-Path $TestDrive 'state/state')
        $lines[2] | Should -Be 'locked and ran'
    }
}

Describe 'The single-file safedeploy' -Skip:(-not $hasSingleFile) {
    BeforeAll {
        # A copy outside the checkout, so it cannot find the module there: it must use the one inside itself.
        $script:bin = Join-Path $TestDrive 'vm'
        New-Item -ItemType Directory $bin | Out-Null
        Copy-Item (Join-Path $root 'out/safedeploy/linux-x64/safedeploy') $bin
        $script:exe = Join-Path $bin 'safedeploy'
        # No dotnet anywhere it could look: not on PATH, no DOTNET_ROOT, and (where a mount namespace can be had) the
        # machine's .NET install hidden under an empty tmpfs.
        $script:bareEnv = @{ PATH = "${bin}:/bin:/usr/sbin:/sbin"; DOTNET_ROOT = $null; HOME = (Join-Path $TestDrive 'vmhome'); XDG_CACHE_HOME = $null; SAFEDEPLOY_MODULE = $null }
        New-Item -ItemType Directory $bareEnv.HOME | Out-Null
        $script:hide = @()
        foreach ($d in '/usr/share/dotnet', '/usr/lib/dotnet', (Join-Path $HOME '.dotnet')) { if (Test-Path $d) { $script:hide += $d } }
    }

    It 'runs with no .NET installed and finds the module inside itself' {
        $mounts = ((@('true') + ($hide | ForEach-Object { "mount -t tmpfs none '$_'" })) -join '; ')
        $file = Join-Path $TestDrive 'vm.ps1'
        Set-Content $file @(
            "Initialize-StateDirectory -Name vm -Path '$TestDrive/vmstate' | Format-List Name"
            '(Get-Module SafeDeploy).ModuleBase'
            '$PSVersionTable.PSVersion.ToString()'
            # /usr/bin/dotnet may remain as a dangling link; what matters is that no .NET runtime is there to run.
            '(Get-Command dotnet -ErrorAction Ignore | Where-Object { Test-Path -LiteralPath $_.Source } | Where-Object { Test-Path /usr/share/dotnet/dotnet } | Measure-Object).Count'
        )
        $r = Invoke-Child '/usr/bin/unshare' @('-m', '--propagation', 'private', '/bin/sh', '-c', "$mounts; test ! -e /usr/share/dotnet/dotnet && exec '$exe' -NoProfile -NonInteractive -File '$file'") $bareEnv
        if ($r.ExitCode -ne 0 -and $r.Err -match 'unshare|mount') {
            $r = Invoke-Child $exe @('-NoProfile', '-File', $file) $bareEnv   # no mount namespace here: the environment alone
        }
        $r.ExitCode | Should -Be 0 -Because "$($r.Out)$($r.Err)"
        $r.Out | Should -Match 'Name\s*:\s*vm'
        $r.Out | Should -Match ([regex]::Escape((Join-Path $bareEnv.HOME '.cache/safedeploy/module-')))
        $r.Out | Should -Match '7\.6\.9'
        ($r.Out.Trim() -split "`n")[-1].Trim() | Should -Be '0'
        Join-Path $TestDrive 'vmstate/state' | Should -Exist
    }

    It 'uses a SafeDeploy folder beside itself before the one inside' {
        $beside = Join-Path $bin 'SafeDeploy'
        New-Item -ItemType Directory $beside | Out-Null
        Copy-Item (Join-Path $stage '*') $beside -Recurse
        try {
            $r = Invoke-Child $exe @('-Command', '(Get-Module SafeDeploy).ModuleBase') $bareEnv
            $r.ExitCode | Should -Be 0 -Because $r.Err
            $r.Out.Trim() | Should -Be $beside
        }
        finally { Remove-Item $beside -Recurse -Force }
    }
}
