# A tour of the locking cmdlets through the embedded host: state directories, a kernel lock, a locked edit.
# Everything happens under a sandbox in /tmp; nothing else on the machine is touched.
# (Runs in pwsh and in the safedeploy host alike.)
param([string] $Sandbox = [IO.Path]::Combine([IO.Path]::GetTempPath(), "safedeploy-quickstart-$PID"))

$state = Initialize-StateDirectory -Name quickstart -Path $Sandbox
$state
Write-StateLog -LogFile $state.LogFile -Message 'quickstart: started'

$npmrc = [IO.Path]::Combine($Sandbox, 'npmrc')
$lock = [IO.Path]::Combine($state.LockDir, 'setup.lock')
Invoke-WithLock -Path $lock -TimeoutSec 30 -ScriptBlock {
    Edit-LockedFile -Path $npmrc -EnsureLine 'prefix=~/.npm-global' -Key 'prefix=' -PassThru
}
Get-LockHolder -Path $lock
Write-StateLog -LogFile $state.LogFile -Message 'quickstart: done' -PassThru
