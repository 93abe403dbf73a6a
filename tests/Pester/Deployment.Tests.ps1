# Pester 5 suite for Invoke-SafeDeploy, Test-SafeDeployManifest, Get-SafeDeployHistory and Undo-SafeDeploy.
# Mirrors tests/SafeDeploy.Tests/Deployment. Run: Invoke-Pester tests/Pester/Deployment.Tests.ps1

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot '../../SafeDeploy.psd1') -Force

    function New-Sandbox {
        $box = Join-Path $TestDrive ([guid]::NewGuid().ToString('N'))
        New-Item -ItemType Directory -Path "$box/root/opt/app", "$box/root/etc", "$box/root/var", "$box/state" | Out-Null
        [IO.File]::WriteAllBytes("$box/root/opt/app/lib.so", [byte[]](0x7F, 0x45, 0x4C, 0x46, 0x00, 0xFF))
        Set-Content -Path "$box/root/etc/app.conf" -Value "a=1`nkey=old" -NoNewline:$false
        [IO.File]::WriteAllBytes("$box/lib-v1.so", [byte[]](0x7F, 0x45, 0x4C, 0x46, 0x01))
        $box
    }

    function Get-Snapshot([string] $root) {
        Get-ChildItem -Recurse -Force $root | Sort-Object FullName | ForEach-Object {
            if ($_.PSIsContainer) { "$($_.FullName)/" } else { "$($_.FullName) $((Get-FileHash $_.FullName).Hash) $($_.UnixFileMode)" }
        }
    }

    $script:Manifest = @'
name: pester
phases:
  - name: precheck
    checks:
      - commandExists: sh
  - name: lib
    dependsOn: precheck
    install: { source: lib-v1.so, target: /opt/app/lib.so, mode: "0755" }
  - name: conf
    dependsOn: precheck
    editFile: { path: /etc/app.conf, ensureLine: "key=new", key: "key=" }
  - name: marker
    dependsOn: [lib, conf]
    run:
      command: echo ran > "$SAFEDEPLOY_ROOT/var/marker"
      undo: rm -f "$SAFEDEPLOY_ROOT/var/marker"
'@
}

Describe 'Test-SafeDeployManifest' {
    It 'reports every error with its line and column' {
        $path = Join-Path $TestDrive 'errors.yaml'
        Set-Content $path @'
name: errs
colour: blue
phases:
  - name: a
    run: echo ${nope}
  - name: b
    dependsOn: ghost
  - name: c
    run: "true"
    install: { source: x, target: /y }
'@
        $problems = Test-SafeDeployManifest $path
        ($problems | ForEach-Object { "$($_.Code)@$($_.Line):$($_.Column)" }) | Should -Be @(
            'UnknownKey@2:1', 'UndefinedVariable@5:15', 'MissingAction@6:5', 'UnknownDependency@7:16', 'TwoActions@10:5')
    }

    It 'names every phase of a cycle' {
        $path = Join-Path $TestDrive 'cycle.yaml'
        Set-Content $path "name: c`nphases:`n  - { name: one, dependsOn: two, run: 'true' }`n  - { name: two, dependsOn: one, run: 'true' }"
        $p = Test-SafeDeployManifest $path
        $p.Code | Should -Be 'DependencyCycle'
        $p.Message | Should -Match 'one -> two -> one'
    }

    It 'warns about two parallel phases writing one path without a shared resource' {
        $path = Join-Path $TestDrive 'race.yaml'
        Set-Content $path "name: r`nphases:`n  - { name: a, editFile: { path: /etc/x, ensureLine: a } }`n  - { name: b, writes: [/etc/x], run: 'true' }"
        (Test-SafeDeployManifest $path).Code | Should -Be 'RaceWarning'
    }
}

Describe 'Invoke-SafeDeploy' {
    It 'deploys into the sandbox and reports generation 1' {
        $box = New-Sandbox
        Set-Content "$box/deploy.yaml" $script:Manifest
        $r = Invoke-SafeDeploy "$box/deploy.yaml" -Root "$box/root" -StateDirectory "$box/state"
        $r.Status | Should -Be 'Succeeded'
        $r.Generation | Should -Be 1
        [IO.File]::ReadAllBytes("$box/root/opt/app/lib.so") | Should -Be ([byte[]](0x7F, 0x45, 0x4C, 0x46, 0x01))
    }

    It 'rolls back byte for byte when a phase fails' {
        $box = New-Sandbox
        Set-Content "$box/deploy.yaml" ($script:Manifest + "`n  - name: boom`n    dependsOn: marker`n    run: exit 7`n")
        $before = Get-Snapshot "$box/root"
        $r = Invoke-SafeDeploy "$box/deploy.yaml" -Root "$box/root" -StateDirectory "$box/state" -ErrorVariable err -ErrorAction SilentlyContinue
        $r.Status | Should -Be 'RolledBack'
        $err[0].FullyQualifiedErrorId | Should -BeLike 'DeploymentRolledBack*'
        $err[0].CategoryInfo.Category | Should -Be 'InvalidResult'
        Get-Snapshot "$box/root" | Should -Be $before
    }

    It 'throws with -ErrorAction Stop when rolled back' {
        $box = New-Sandbox
        Set-Content "$box/deploy.yaml" ($script:Manifest + "`n  - name: boom`n    dependsOn: marker`n    run: exit 7`n")
        { Invoke-SafeDeploy "$box/deploy.yaml" -Root "$box/root" -StateDirectory "$box/state" -ErrorAction Stop } |
            Should -Throw -ErrorId 'DeploymentRolledBack,SafeDeploy.Cmdlets.InvokeSafeDeployCommand'
    }

    It 'stops on an invalid manifest before anything runs' {
        $box = New-Sandbox
        Set-Content "$box/deploy.yaml" "name: bad`nphases:`n  - name: a`n    dependsOn: nowhere`n    run: 'true'"
        { Invoke-SafeDeploy "$box/deploy.yaml" -Root "$box/root" -StateDirectory "$box/state" } |
            Should -Throw -ErrorId 'ManifestInvalid,SafeDeploy.Cmdlets.InvokeSafeDeployCommand'
        Test-Path "$box/state/state/deployments" | Should -BeFalse
    }

    It '-WhatIf changes nothing' {
        $box = New-Sandbox
        Set-Content "$box/deploy.yaml" $script:Manifest
        $before = Get-Snapshot "$box/root"
        Invoke-SafeDeploy "$box/deploy.yaml" -Root "$box/root" -StateDirectory "$box/state" -WhatIf
        Get-Snapshot "$box/root" | Should -Be $before
    }
}

Describe 'Undo-SafeDeploy and Get-SafeDeployHistory' {
    It 'undoes the latest run and the history shows it' {
        $box = New-Sandbox
        Set-Content "$box/deploy.yaml" $script:Manifest
        $before = Get-Snapshot "$box/root"
        Invoke-SafeDeploy "$box/deploy.yaml" -Root "$box/root" -StateDirectory "$box/state" | Out-Null
        $u = Undo-SafeDeploy -Name pester -StateDirectory "$box/state"
        $u.Status | Should -Be 'Undone'
        Get-Snapshot "$box/root" | Should -Be $before
        (Get-SafeDeployHistory -Name pester -StateDirectory "$box/state").Status | Should -Be 'Undone'
    }

    It 'says when there is nothing to undo' {
        $box = New-Sandbox
        Set-Content "$box/deploy.yaml" $script:Manifest
        Invoke-SafeDeploy "$box/deploy.yaml" -Root "$box/root" -StateDirectory "$box/state" | Out-Null
        Undo-SafeDeploy -Name pester -StateDirectory "$box/state" | Out-Null
        { Undo-SafeDeploy -Name pester -StateDirectory "$box/state" -ErrorAction Stop } |
            Should -Throw -ErrorId 'NothingToUndo,SafeDeploy.Cmdlets.UndoSafeDeployCommand'
    }
}

Describe 'Try mode (Invoke-SafeDeploy -TrySeconds, Confirm-SafeDeploy)' {
    It 'rolls back without confirmation' {
        $box = New-Sandbox
        Set-Content "$box/deploy.yaml" $script:Manifest
        $before = Get-Snapshot "$box/root"
        $r = Invoke-SafeDeploy "$box/deploy.yaml" -Root "$box/root" -StateDirectory "$box/state" -TrySeconds 2
        $r.RollbackAt | Should -Not -BeNullOrEmpty
        $deadline = (Get-Date).AddSeconds(60)
        while ((Get-SafeDeployHistory pester -StateDirectory "$box/state")[-1].Status -ne 'Undone' -and (Get-Date) -lt $deadline) { Start-Sleep -Milliseconds 250 }
        (Get-SafeDeployHistory pester -StateDirectory "$box/state")[-1].Status | Should -Be 'Undone'
        Get-Snapshot "$box/root" | Should -Be $before
    }

    It 'keeps a confirmed deployment' {
        $box = New-Sandbox
        Set-Content "$box/deploy.yaml" $script:Manifest
        Invoke-SafeDeploy "$box/deploy.yaml" -Root "$box/root" -StateDirectory "$box/state" -TrySeconds 3 | Out-Null
        (Confirm-SafeDeploy -Name pester -StateDirectory "$box/state").Confirmed | Should -BeTrue
        Start-Sleep -Seconds 5
        (Get-SafeDeployHistory pester -StateDirectory "$box/state")[-1].Status | Should -Be 'Succeeded'
        { Confirm-SafeDeploy -Name pester -StateDirectory "$box/state" -ErrorAction Stop } |
            Should -Throw -ErrorId 'NothingToConfirm,SafeDeploy.Cmdlets.ConfirmSafeDeployCommand'
    }
}
