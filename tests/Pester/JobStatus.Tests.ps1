# Pester 5 suite for Sync-JobStatus / Get-JobStatus; mirrors tests/SafeDeploy.Tests/JobStatus.
BeforeAll {
    Import-Module (Join-Path $PSScriptRoot '../../SafeDeploy.psd1') -Force
    $env:GIT_AUTHOR_NAME = $env:GIT_COMMITTER_NAME = 'SafeDeploy Test'
    $env:GIT_AUTHOR_EMAIL = $env:GIT_COMMITTER_EMAIL = 'test@safedeploy.invalid'

    function New-Remote {
        $root = Join-Path ([IO.Path]::GetTempPath()) ("sdp-js-" + [guid]::NewGuid().ToString('N').Substring(0, 8))
        $bare = Join-Path $root 'remote.git'
        git init -q --bare -b main $bare
        git -C $bare config receive.denyNonFastForwards true
        git clone -q $bare (Join-Path $root 'seed') 2>$null
        Set-Content (Join-Path $root 'seed/README.md') 'dashboard'
        git -C (Join-Path $root 'seed') add -A
        git -C (Join-Path $root 'seed') commit -q -m init
        git -C (Join-Path $root 'seed') push -q origin HEAD:main
        $clone = Join-Path $root 'c1'
        git clone -q $bare $clone
        [pscustomobject]@{ Root = $root; Bare = $bare; Clone = $clone }
    }
}

Describe 'Sync-JobStatus' {
    BeforeEach { $r = New-Remote }
    AfterEach { Remove-Item -Recurse -Force $r.Root }

    It 'pushes the status file and leaves a dirty clone untouched' {
        Add-Content (Join-Path $r.Clone 'README.md') 'local edit'
        Set-Content (Join-Path $r.Clone 'notes.txt') 'untracked'
        $before = git -C $r.Clone status --porcelain
        $res = Sync-JobStatus -Repository $r.Clone -JobName train-7 -Status running -Progress 40 -Message 'epoch 4' -Data @{ gpus = 8 }
        $res.Pushed | Should -BeTrue
        $json = git -C $r.Bare show main:data/status/train-7.json | ConvertFrom-Json
        $json.status | Should -Be 'running'
        $json.progress | Should -Be 40
        $json.data.gpus | Should -Be 8
        git -C $r.Clone status --porcelain | Should -Be $before
    }

    It 'rejects ../../etc/x with InvalidJobName and writes nothing' {
        { Sync-JobStatus -Repository $r.Clone -JobName '../../etc/x' -Status running -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidJobName,SafeDeploy.Cmdlets.SyncJobStatusCommand'
        Join-Path $r.Clone '.git/safedeploy/outbox' | Should -Not -Exist
    }

    It 'names a path that is not a repository' {
        $dir = New-Item -ItemType Directory (Join-Path $r.Root 'plain')
        { Sync-JobStatus -Repository $dir.FullName -JobName j -Status running -ErrorAction Stop } |
            Should -Throw -ErrorId 'NotAGitRepository,SafeDeploy.Cmdlets.SyncJobStatusCommand'
    }

    It 'queues with a warning when the remote is down, and the cron form pushes it' {
        git -C $r.Clone remote set-url origin (Join-Path $r.Root 'gone.git')
        $res = Sync-JobStatus -Repository $r.Clone -JobName nightly -Status completed -WarningVariable w -WarningAction SilentlyContinue
        $res.Queued | Should -BeTrue
        $w | Should -Not -BeNullOrEmpty
        git -C $r.Clone remote set-url origin $r.Bare
        (Sync-JobStatus -Repository $r.Clone).Pushed | Should -BeTrue
        (git -C $r.Bare show main:data/status/nightly.json | ConvertFrom-Json).status | Should -Be 'completed'
    }

    It 'queues when another process holds the lock past -LockTimeoutSec' {
        $lock = Join-Path $r.Clone '.git/safedeploy/lock'
        New-Item -ItemType Directory (Split-Path $lock) -Force | Out-Null
        $holder = Start-Process flock -ArgumentList $lock, 'sleep', '30' -PassThru
        Start-Sleep -Milliseconds 300
        try {
            (Sync-JobStatus -Repository $r.Clone -JobName a -Status running -LockTimeoutSec 1 -WarningAction SilentlyContinue).Queued | Should -BeTrue
        } finally { Stop-Process -Id $holder.Id }
    }

    It 'maps a piped DeployResult to completed or failed' {
        $out = [pscustomobject]@{ Name = 'deploy-web'; Status = 'Succeeded' },
               [pscustomobject]@{ Name = 'deploy-db'; Status = 'RolledBack' } | Sync-JobStatus -Repository $r.Clone
        $out.Status | Should -Be @('completed', 'failed')
    }

    It 'changes nothing with -WhatIf' {
        Sync-JobStatus -Repository $r.Clone -JobName j -Status running -WhatIf
        Join-Path $r.Clone '.git/safedeploy' | Should -Not -Exist
    }
}

Describe 'Get-JobStatus' {
    BeforeAll { $r = New-Remote }
    AfterAll { Remove-Item -Recurse -Force $r.Root }

    It 'reads statuses back, with wildcards' {
        Sync-JobStatus -Repository $r.Clone -JobName deploy-a -Status running | Out-Null
        Sync-JobStatus -Repository $r.Clone -JobName deploy-b -Status failed | Out-Null
        (Get-JobStatus -Repository $r.Clone -JobName 'deploy-*').JobName | Should -Be @('deploy-a', 'deploy-b')
    }

    It 'reports a missing job as JobStatusNotFound' {
        { Get-JobStatus -Repository $r.Clone -JobName nope -ErrorAction Stop } |
            Should -Throw -ErrorId 'JobStatusNotFound,SafeDeploy.Cmdlets.GetJobStatusCommand'
    }
}
