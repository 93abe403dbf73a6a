# A first real job through the embedded host: state directories, a kernel lock, a locked edit.
# Everything happens under a sandbox in /tmp; nothing else on the machine is touched.
param([string] $Sandbox = (Join-Path ([IO.Path]::GetTempPath()) "safedeploy-quickstart-$PID"))

$state = Initialize-StateDirectory -Name quickstart -Path $Sandbox
$state
Write-StateLog -LogFile $state.LogFile -Message 'quickstart: started'

$npmrc = Join-Path $Sandbox 'npmrc'
Invoke-WithLock -Path (Join-Path $state.LockDir 'setup.lock') -TimeoutSec 30 -ScriptBlock {
    Edit-LockedFile -Path $npmrc -EnsureLine 'prefix=~/.npm-global' -Key 'prefix=' -PassThru
}
Get-LockHolder -Path (Join-Path $state.LockDir 'setup.lock')
Write-StateLog -LogFile $state.LogFile -Message 'quickstart: done' -PassThru
