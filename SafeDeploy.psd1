@{
    # After one `dotnet build` (assemblies in the ignored bin/), this checkout is an importable module: Import-Module ./SafeDeploy.psd1
    RootModule           = 'bin/SafeDeploy.dll'
    ModuleVersion        = '0.1.0'
    GUID                 = '5b0f3c6e-2d8a-4f57-9a3e-6c1d7e2b9f40'
    Author               = 'SafeDeploy contributors'
    CompanyName          = 'SafeDeploy'
    Copyright            = '(c) SafeDeploy contributors. MIT License.'
    Description          = 'Race-safe and crash-safe building blocks for scripts that set up and run Linux GPU and HPC machines: kernel locks, atomic edits, a locked model cache, lossless job-status sync and journaled deployments with rollback.'
    PowerShellVersion    = '7.6'
    CompatiblePSEditions = @('Core')
    FormatsToProcess     = @(
        'module/Foundation.format.ps1xml'
        'module/Models.format.ps1xml'
        'module/JobStatus.format.ps1xml'
        'module/Deployment.format.ps1xml'
        'module/Native.format.ps1xml'
        'module/Fleet.format.ps1xml'
    )
    CmdletsToExport      = @(
        'Initialize-StateDirectory'
        'Write-StateLog'
        'Invoke-WithLock'
        'Get-LockHolder'
        'Test-LockSupport'
        'Edit-LockedFile'
        'Get-ModelLocked'
        'Get-ModelCache'
        'Remove-ModelCache'
        'Sync-JobStatus'
        'Get-JobStatus'
        'Test-SharedLibrary'
        'Test-SafeDeployManifest'
        'Invoke-SafeDeploy'
        'Undo-SafeDeploy'
        'Get-SafeDeployHistory'
        'Confirm-SafeDeploy'
    )
    FunctionsToExport    = @()
    VariablesToExport    = @()
    AliasesToExport      = @()
    PrivateData          = @{
        PSData = @{
            Tags         = @('Linux', 'Deployment', 'Locking', 'flock', 'GPU', 'HPC', 'Rollback', 'Atomic', 'PSEdition_Core')
            # The license travels in the package (LICENSE beside this manifest).
            ReleaseNotes = 'See README.md.'
        }
    }
}
