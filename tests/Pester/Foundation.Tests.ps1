#Requires -Version 7.4
#Requires -Modules @{ ModuleName = 'Pester'; ModuleVersion = '5.0' }
# The foundation cmdlets as a user runs them in pwsh; mirrors tests/SafeDeploy.Tests (xunit). Build first:
#   dotnet build SafeDeploy.slnx; Invoke-Pester ./tests/Pester/Foundation.Tests.ps1 -Output Detailed

BeforeDiscovery {
    $hasFlock = [bool](Get-Command flock -CommandType Application -ErrorAction SilentlyContinue)
    $isRoot = (id -u) -eq '0'
}

BeforeAll {
    $script:manifest = (Resolve-Path (Join-Path $PSScriptRoot '../../SafeDeploy.psd1')).Path
    Import-Module $manifest -Force
    # The pwsh running this suite, whatever the install: for the dotnet tool the process path is `dotnet`, so never
    # (Get-Process -Id $PID).Path (that started `dotnet -NoProfile ...`, which waited for ever).
    $script:pwsh = Join-Path $PSHOME 'pwsh'

    # Every wait has a deadline: polls $Condition until it holds, or throws after $Seconds.
    function script:Wait-Until([scriptblock] $Condition, [double] $Seconds = 60, [string] $What = 'the condition') {
        $deadline = [datetime]::UtcNow.AddSeconds($Seconds)
        while (-not (& $Condition)) {
            if ([datetime]::UtcNow -gt $deadline) { throw "timed out after $Seconds s waiting for $What" }
            Start-Sleep -Milliseconds 20
        }
    }
    $script:hasFlock = [bool](Get-Command flock -CommandType Application -ErrorAction SilentlyContinue)

    # Runs $Body in $Count separate pwsh processes at once (a file barrier releases them together); returns exit codes.
    function script:Invoke-Processes([int] $Count, [string] $Body, [string] $Dir) {
        $Dir = (New-Item -ItemType Directory -Path (Join-Path $Dir "swarm-$([guid]::NewGuid().ToString('N'))")).FullName
        $go = Join-Path $Dir 'go'
        $procs = foreach ($i in 1..$Count) {
            $file = Join-Path $Dir "worker$i.ps1"
            Set-Content -Path $file -Value @(
                '$ErrorActionPreference = "Stop"'
                "Import-Module '$manifest'"
                "`$worker = $i"
                "Set-Content -Path '$(Join-Path $Dir "ready$i")' -Value ''"
                "`$deadline = [datetime]::UtcNow.AddSeconds(120)"
                "while (-not (Test-Path '$go')) { if ([datetime]::UtcNow -gt `$deadline) { exit 98 }; Start-Sleep -Milliseconds 5 }"
                $Body
            )
            Start-Process -FilePath $pwsh -ArgumentList '-NoProfile', '-NonInteractive', '-File', $file -PassThru
        }
        $deadline = [datetime]::UtcNow.AddSeconds(60)
        while (@(Get-ChildItem $Dir -Filter 'ready*').Count -lt $Count -and [datetime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 10 }
        Set-Content -Path $go -Value ''
        try { $procs | Wait-Process -Timeout 180 -ErrorAction Stop }
        finally { $procs | Where-Object { -not $_.HasExited } | Stop-Process -Force -ErrorAction SilentlyContinue }
        $procs | ForEach-Object { $_.ExitCode }
    }
}

Describe 'Initialize-StateDirectory' {
    BeforeEach {
        $base = Join-Path $TestDrive ([guid]::NewGuid().ToString('N'))
    }

    It 'creates the state, log, cache and lock directories under -Path' {
        $s = Initialize-StateDirectory -Name tool -Path $base
        $s.StateDir | Should -Be (Join-Path $base 'state')
        $s.LogDir | Should -Be (Join-Path $base 'log')
        $s.CacheDir | Should -Be (Join-Path $base 'cache')
        $s.LockDir | Should -Be (Join-Path $base 'locks')
        $s.LogFile | Should -Be (Join-Path $base 'log/tool.log')
        foreach ($d in $s.StateDir, $s.LogDir, $s.CacheDir, $s.LockDir) { Test-Path $d -PathType Container | Should -BeTrue }
    }

    It 'gives every directory it creates the asked mode, whatever the umask' {
        $s = Initialize-StateDirectory -Name tool -Path $base -Mode 0750
        foreach ($d in $base, $s.StateDir, $s.CacheDir) { (Get-Item $d).UnixMode | Should -Be 'drwxr-x---' }
    }

    It 'is idempotent: a second call succeeds and creates nothing' {
        $first = Initialize-StateDirectory -Name tool -Path $base
        $second = Initialize-StateDirectory -Name tool -Path $base
        $first.Created | Should -Not -BeNullOrEmpty
        $second.Created | Should -BeNullOrEmpty
        $second.StateDir | Should -Be $first.StateDir
    }

    It 'follows XDG_STATE_HOME and XDG_CACHE_HOME for the user scope' {
        $saved = $env:XDG_STATE_HOME, $env:XDG_CACHE_HOME
        try {
            $env:XDG_STATE_HOME = Join-Path $base 'xstate'
            $env:XDG_CACHE_HOME = Join-Path $base 'xcache'
            $s = Initialize-StateDirectory -Name tool
            $s.StateDir | Should -Be (Join-Path $base 'xstate/tool')
            $s.CacheDir | Should -Be (Join-Path $base 'xcache/tool')
            $s.LockDir | Should -Be (Join-Path $base 'xstate/tool/locks')
        }
        finally { $env:XDG_STATE_HOME, $env:XDG_CACHE_HOME = $saved }
    }

    It 'rejects a name that could escape its directory, and creates nothing' {
        { Initialize-StateDirectory -Name '../evil' -Path $base -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidName,SafeDeploy.Cmdlets.InitializeStateDirectoryCommand'
        Test-Path $base | Should -BeFalse
    }

    It 'refuses a world-writable directory without the sticky bit' {
        New-Item -ItemType Directory -Path $base | Out-Null
        chmod 0777 $base
        { Initialize-StateDirectory -Name tool -Path (Join-Path $base 'inner') -ErrorAction Stop } |
            Should -Throw -ErrorId 'InsecureDirectory,SafeDeploy.Cmdlets.InitializeStateDirectoryCommand'
        Test-Path (Join-Path $base 'inner') | Should -BeFalse
    }

    It 'refuses a symlink owned by another user' -Skip:(-not $isRoot) {
        $target = Join-Path $TestDrive 'elsewhere'
        New-Item -ItemType Directory -Path $target, $base -Force | Out-Null
        $link = Join-Path $base 'link'
        New-Item -ItemType SymbolicLink -Path $link -Target $target | Out-Null
        chown -h nobody $link
        { Initialize-StateDirectory -Name tool -Path (Join-Path $link 'x') -ErrorAction Stop } |
            Should -Throw -ErrorId 'UntrustedSymlink,SafeDeploy.Cmdlets.InitializeStateDirectoryCommand'
        Test-Path (Join-Path $target 'x') | Should -BeFalse
    }

    It 'warns about a looser existing directory, and tightens it with -Repair' {
        $s = Initialize-StateDirectory -Name tool -Path $base
        chmod 0755 $s.StateDir
        Initialize-StateDirectory -Name tool -Path $base -WarningVariable warned -WarningAction SilentlyContinue | Out-Null
        $warned | Should -Not -BeNullOrEmpty
        (Get-Item $s.StateDir).UnixMode | Should -Be 'drwxr-xr-x'
        $repaired = Initialize-StateDirectory -Name tool -Path $base -Repair
        $repaired.Repaired | Should -Contain $s.StateDir
        (Get-Item $s.StateDir).UnixMode | Should -Be 'drwx------'
    }

    It 'changes nothing with -WhatIf' {
        Initialize-StateDirectory -Name tool -Path $base -WhatIf
        Test-Path $base | Should -BeFalse
    }

    It 'takes names from the pipeline' {
        $all = 'a', 'b' | Initialize-StateDirectory -Path $base
        $all.Name | Should -Be 'a', 'b'
    }

    It 'gives 8 processes racing on a fresh directory the same result' {
        $codes = Invoke-Processes -Count 8 -Dir $TestDrive -Body "Initialize-StateDirectory -Name race -Path '$base' | Out-Null"
        $codes | Should -Be (@(0) * 8)
        (Get-Item (Join-Path $base 'state')).UnixMode | Should -Be 'drwx------'
    }
}

Describe 'Write-StateLog' {
    BeforeEach {
        $base = Join-Path $TestDrive ([guid]::NewGuid().ToString('N'))
        $log = Join-Path $base 'log/tool.log'
    }

    It 'appends one line with a UTC timestamp, the pid and the level' {
        $line = Write-StateLog -LogFile $log -Message 'hello' -Level Warning -PassThru
        $line | Should -Match "^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[$PID\] WARNING hello$"
        Get-Content $log | Should -Be $line
    }

    It 'keeps a multi-line message on one line' {
        Write-StateLog -LogFile $log -Message "one`ntwo"
        @(Get-Content $log).Count | Should -Be 1
        Get-Content $log | Should -Match 'one\\ntwo$'
    }

    It 're-creates a directory deleted between two calls' {
        Write-StateLog -LogFile $log -Message 'first'
        Remove-Item -Recurse -Force $base
        Write-StateLog -LogFile $log -Message 'second'
        Get-Content $log | Should -Match 'INFO second$'
    }

    It 'writes to a named tool''s log under -Path' {
        Write-StateLog -Name tool -Path $base -Message 'by name'
        Get-Content $log | Should -Match 'INFO by name$'
    }

    It 'binds LogFile from a StateDirectory in the pipeline' {
        Initialize-StateDirectory -Name tool -Path $base | Write-StateLog -Message 'piped'
        Get-Content $log | Should -Match 'INFO piped$'
    }

    It 'never interleaves lines written by 4 processes at once' {
        $codes = Invoke-Processes -Count 4 -Dir $TestDrive -Body "1..200 | ForEach-Object { Write-StateLog -LogFile '$log' -Message ('w' + `$worker + '-' + ('x' * 300)) }"
        $codes | Should -Be (@(0) * 4)
        $lines = Get-Content $log
        $lines.Count | Should -Be 800
        $lines | Where-Object { $_ -notmatch '^\S+ \[\d+\] INFO w\d-x{300}$' } | Should -BeNullOrEmpty
    }
}

Describe 'Invoke-WithLock' {
    BeforeEach {
        $lock = Join-Path $TestDrive "$([guid]::NewGuid().ToString('N')).lock"
    }

    It 'returns the script block''s output and passes -ArgumentList' {
        Invoke-WithLock -Path $lock -ArgumentList 2, 3 -ScriptBlock { param($a, $b) $a * $b } | Should -Be 6
    }

    It 'holds a lock that flock(1) sees, and releases it afterwards' -Skip:(-not $hasFlock) {
        Invoke-WithLock -Path $lock -ScriptBlock { flock -n $lock true; $LASTEXITCODE } | Should -Be 1
        flock -n $lock true
        $LASTEXITCODE | Should -Be 0
    }

    It 'waits for a flock(1) holder and gives up at -TimeoutSec with LockTimeout' -Skip:(-not $hasFlock) {
        $holder = Start-Process flock -ArgumentList $lock, 'sleep', '5' -PassThru
        try {
            Wait-Until { (Get-LockHolder -Path $lock -ErrorAction SilentlyContinue).IsHeld } -What 'the flock(1) holder'
            { Invoke-WithLock -Path $lock -TimeoutSec 1 -ScriptBlock { 'never' } } |
                Should -Throw -ErrorId 'LockTimeout,SafeDeploy.Cmdlets.InvokeWithLockCommand'
            Invoke-WithLock -Path $lock -ScriptBlock { 'after the holder' } | Should -Be 'after the holder'
        }
        finally { $holder | Stop-Process -Force -ErrorAction SilentlyContinue }
    }

    It 'makes flock(1) wait while it holds the lock' -Skip:(-not $hasFlock) {
        Invoke-WithLock -Path $lock -ScriptBlock { flock -w 1 $lock true; $LASTEXITCODE } | Should -Be 1
    }

    It 'releases the lock when the script block throws' -Skip:(-not $hasFlock) {
        { Invoke-WithLock -Path $lock -ScriptBlock { throw 'boom' } } | Should -Throw '*boom*'
        flock -n $lock true
        $LASTEXITCODE | Should -Be 0
    }

    It 'is released when its process is killed (kill -9)' {
        $ready = Join-Path $TestDrive 'holder.ready'
        $script = Join-Path $TestDrive 'holder.ps1'
        Set-Content $script "Import-Module '$manifest'; Invoke-WithLock -Path '$lock' -ScriptBlock { Set-Content '$ready' x; Start-Sleep 120 }"
        $holder = Start-Process $pwsh -ArgumentList '-NoProfile', '-File', $script -PassThru
        try {
            Wait-Until { Test-Path $ready } -Seconds 120 -What 'the pwsh holder'
            (Get-LockHolder -Path $lock).Pid | Should -Be $holder.Id
            kill -9 $holder.Id
            $holder | Wait-Process -Timeout 30 -ErrorAction Stop
        }
        finally { $holder | Stop-Process -Force -ErrorAction SilentlyContinue }
        Invoke-WithLock -Path $lock -TimeoutSec 10 -ScriptBlock { 'free again' } | Should -Be 'free again'
    }

    It 'never deletes the lock file' {
        Invoke-WithLock -Path $lock -ScriptBlock { } | Out-Null
        Test-Path $lock | Should -BeTrue
    }

    It 'lets shared holders in together' -Skip:(-not $hasFlock) {
        Invoke-WithLock -Path $lock -Shared -ScriptBlock { flock -n -s $lock true; $LASTEXITCODE } | Should -Be 0
    }

    It 'rejects a lock name with a slash' {
        { Invoke-WithLock -Name 'a/b' -ScriptBlock { } } | Should -Throw -ErrorId 'InvalidName,SafeDeploy.Cmdlets.InvokeWithLockCommand'
    }
}

Describe 'Get-LockHolder' {
    BeforeEach {
        $lock = Join-Path $TestDrive "$([guid]::NewGuid().ToString('N')).lock"
    }

    It 'says Free when no one holds the lock, whatever the file says' {
        Invoke-WithLock -Path $lock -ScriptBlock { } | Out-Null   # leaves its holder record behind
        $h = Get-LockHolder -Path $lock
        $h.State | Should -Be 'Free'
        $h.IsHeld | Should -BeFalse
    }

    It 'names the holder while Invoke-WithLock holds it' {
        $h = Invoke-WithLock -Path $lock -ScriptBlock { Get-LockHolder -Path $lock }
        $h.State | Should -Be 'Held'
        $h.Pid | Should -Be $PID
        $h.Mode | Should -Be 'Exclusive'
        $h.Since | Should -Not -BeNullOrEmpty
    }

    It 'names a flock(1) holder from the kernel''s lock table' -Skip:(-not $hasFlock) {
        $holder = Start-Process flock -ArgumentList $lock, 'sleep', '5' -PassThru
        try {
            Wait-Until { (Get-LockHolder -Path $lock -ErrorAction SilentlyContinue).IsHeld } -What 'the flock(1) holder'
            (Get-LockHolder -Path $lock).CommandLine | Should -Match 'sleep'
        }
        finally { $holder | Stop-Process -Force -ErrorAction SilentlyContinue }
    }

    It 'reports LockNotFound for a lock file that does not exist' {
        { Get-LockHolder -Path (Join-Path $TestDrive 'missing.lock') -ErrorAction Stop } |
            Should -Throw -ErrorId 'LockNotFound,SafeDeploy.Cmdlets.GetLockHolderCommand'
    }
}

Describe 'Test-LockSupport' -Skip:(-not $hasFlock) {
    It 'proves exclusion on a local directory and names its filesystem' {
        $r = Test-LockSupport -Path $TestDrive
        $r.ExclusionWorks | Should -BeTrue
        $r.FileSystemType | Should -Not -BeNullOrEmpty
        $r.Path | Should -Be $TestDrive
        Get-ChildItem $TestDrive -Force -Filter '.safedeploy-locktest-*' | Should -BeNullOrEmpty
    }

    It 'reports DirectoryNotFound for a missing directory and goes on with the next' {
        $r = Test-LockSupport -Path (Join-Path $TestDrive 'missing'), $TestDrive -ErrorVariable err -ErrorAction SilentlyContinue
        @($r).Count | Should -Be 1
        $err[0].FullyQualifiedErrorId | Should -Be 'DirectoryNotFound,SafeDeploy.Cmdlets.TestLockSupportCommand'
        $err[0].CategoryInfo.Category | Should -Be 'ObjectNotFound'
    }
}

Describe 'Edit-LockedFile' {
    BeforeEach {
        $file = Join-Path $TestDrive "$([guid]::NewGuid().ToString('N')).conf"
    }

    It 'replaces the key''s line, or appends it' {
        Set-Content $file "registry=https://r.example`nprefix=/old"
        Edit-LockedFile -Path $file -EnsureLine 'prefix=~/.npm-global' -Key 'prefix='
        Get-Content $file | Should -Be 'registry=https://r.example', 'prefix=~/.npm-global'
        Edit-LockedFile -Path $file -EnsureLine 'color=false' -Key 'color='
        Get-Content $file | Should -Be 'registry=https://r.example', 'prefix=~/.npm-global', 'color=false'
    }

    It 'writes nothing when the line is already right' {
        Set-Content $file 'prefix=~/.npm-global'
        $before = (Get-Item $file).LastWriteTimeUtc
        $r = Edit-LockedFile -Path $file -EnsureLine 'prefix=~/.npm-global' -Key 'prefix=' -PassThru
        $r.Changed | Should -BeFalse
        (Get-Item $file).LastWriteTimeUtc | Should -Be $before
    }

    It 'deep-merges JSON and keeps every other key' {
        Set-Content $file '{ "keep": 1, "nested": { "a": 1, "b": 2 } }'
        Edit-LockedFile -Path $file -MergeJson @{ nested = @{ b = 3; c = 4 }; added = 'x' }
        $json = Get-Content $file -Raw | ConvertFrom-Json
        $json.keep | Should -Be 1
        $json.nested.a | Should -Be 1
        $json.nested.b | Should -Be 3
        $json.nested.c | Should -Be 4
        $json.added | Should -Be 'x'
    }

    It 'stops on invalid JSON with InvalidJson and leaves the file untouched' {
        Set-Content $file '{ "broken": '
        $before = Get-Content $file -Raw
        { Edit-LockedFile -Path $file -MergeJson @{ a = 1 } -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidJson,SafeDeploy.Cmdlets.EditLockedFileCommand'
        Get-Content $file -Raw | Should -Be $before
    }

    It 'runs a -Transform and refuses an empty result' {
        Set-Content $file "a`nb"
        Edit-LockedFile -Path $file -Transform { param($text) $text.ToUpperInvariant() }
        Get-Content $file | Should -Be 'A', 'B'
        { Edit-LockedFile -Path $file -Transform { } -ErrorAction Stop } |
            Should -Throw -ErrorId 'TransformReturnedNothing,SafeDeploy.Cmdlets.EditLockedFileCommand'
        Get-Content $file | Should -Be 'A', 'B'
    }

    It 'keeps the file''s mode' {
        Set-Content $file 'x=1'
        chmod 0600 $file
        Edit-LockedFile -Path $file -EnsureLine 'y=2'
        (Get-Item $file).UnixMode | Should -Be '-rw-------'
    }

    It 'changes nothing with -WhatIf' {
        Set-Content $file 'x=1'
        Edit-LockedFile -Path $file -EnsureLine 'y=2' -WhatIf
        Get-Content $file | Should -Be 'x=1'
    }

    It 'loses no edit when 4 processes add different keys at once' {
        $codes = Invoke-Processes -Count 4 -Dir $TestDrive -Body "1..25 | ForEach-Object { Edit-LockedFile -Path '$file' -EnsureLine (""key`$worker=`$_"") -Key (""key`$worker="") }"
        $codes | Should -Be (@(0) * 4)
        $lines = Get-Content $file
        $lines | Sort-Object | Should -Be 'key1=25', 'key2=25', 'key3=25', 'key4=25'
    }
}
