# Pester 5 suite for the native shim area; mirrors tests/SafeDeploy.Tests/Native (xunit). Needs gcc and make.
BeforeAll {
    $repo = (Resolve-Path "$PSScriptRoot/../..").Path
    Import-Module "$repo/SafeDeploy.psd1" -Force
    $script:fixtures = Join-Path ([IO.Path]::GetTempPath()) "sd-pester-shim-$PID"
    make -s -C "$repo/tests/fixtures/shim" "OUT=$fixtures" all | Out-Null
    if ($LASTEXITCODE -ne 0) { throw 'building the shim fixtures failed' }
}

AfterAll {
    Remove-Item -Recurse -Force $script:fixtures -ErrorAction SilentlyContinue
}

Describe 'Test-SharedLibrary' {
    It 'reports the good shim valid, with its symbol and two passing canaries' {
        $r = Test-SharedLibrary "$fixtures/libshim.so" -Symbol shim_version -Canary
        $r.IsValid | Should -BeTrue
        $r.Type | Should -Be 'ET_DYN'
        $r.SymbolsFound | Should -Be @('shim_version')
        $r.Canary.Count | Should -Be 2
    }

    It 'reports a crashing constructor as SIGSEGV' {
        $r = Test-SharedLibrary "$fixtures/libshim-crash.so" -Canary
        $r.IsValid | Should -BeFalse
        $r.Canary[0].Signal | Should -Be 11
    }

    It 'kills a hanging constructor at the timeout' {
        $r = Test-SharedLibrary "$fixtures/libshim-hang.so" -Canary -TimeoutSec 1
        $r.IsValid | Should -BeFalse
        $r.Canary[0].TimedOut | Should -BeTrue
    }

    It 'names a symbol the library does not export' {
        $r = Test-SharedLibrary "$fixtures/libshim-nosymbol.so" -Symbol shim_version
        $r.SymbolsMissing | Should -Be @('shim_version')
        $r.IsValid | Should -BeFalse
    }

    It 'shows an unresolved dependency from the loader' {
        $r = Test-SharedLibrary "$fixtures/libshim-needs-missing.so" -Canary
        $r.Needed | Should -Contain 'libshimdep_gone.so'
        $r.Canary[0].StdErr | Should -Match 'libshimdep_gone.so'
    }

    It 'refuses an executable, even a PIE' {
        (Test-SharedLibrary "$fixtures/hello").Type | Should -Be 'ET_EXEC'
        $pie = Test-SharedLibrary "$fixtures/hello-pie"
        $pie.Kind | Should -Be 'PieExecutable'
        $pie.IsValid | Should -BeFalse
    }

    It 'reports a text file and a truncated copy without loading them' {
        Set-Content -Path TestDrive:/notes.so -Value 'text'
        $text = Test-SharedLibrary TestDrive:/notes.so -Canary
        $text.IsElf | Should -BeFalse
        $text.Canary.Count | Should -Be 0
        $bytes = [IO.File]::ReadAllBytes("$fixtures/libshim.so")
        [IO.File]::WriteAllBytes((Join-Path (Get-PSDrive TestDrive).Root 'cut.so'), $bytes[0..999])
        (Test-SharedLibrary TestDrive:/cut.so).Problems -join ' ' | Should -Match 'truncated'
    }

    It 'gives ObjectNotFound for a missing file' {
        { Test-SharedLibrary /nonexistent/libshim.so -ErrorAction Stop } | Should -Throw -ErrorId 'LibraryNotFound,SafeDeploy.Cmdlets.TestSharedLibraryCommand'
    }

    It 'runs the constructor exactly once when 20 threads dlopen the shim at once' {
        & "$fixtures/harness" "$fixtures/libshim.so" | Should -Match 'init_count=1'
        $LASTEXITCODE | Should -Be 0
    }
}

Describe 'The shim deployment (examples/shim/deploy.yaml)' {
    BeforeAll {
        $script:sandbox = Join-Path ([IO.Path]::GetTempPath()) "sd-pester-deploy-$PID"
        $script:root = Join-Path $sandbox 'root'
        $script:state = Join-Path $sandbox 'state'
        $script:manifest = "$repo/examples/shim/deploy.yaml"
        $l = [Net.Sockets.TcpListener]::new([Net.IPAddress]::Loopback, 0); $l.Start(); $script:port = $l.LocalEndpoint.Port; $l.Stop()
        function script:Vars($version, $extra = @{}) {
            $v = @{ version = $version; port = "$port"; build = "$sandbox/build"; serviceProgram = "$fixtures/service"; validateTimeout = '2s'; healthTimeout = '1500ms'; stopTimeout = '2s' }
            foreach ($k in $extra.Keys) { $v[$k] = $extra[$k] }
            $v
        }
        function script:Health { (Invoke-WebRequest "http://127.0.0.1:$port/health" -SkipHttpErrorCheck).Content }
        $null = New-Item -ItemType Directory -Force $root
        (Invoke-SafeDeploy $manifest -Root $root -StateDirectory $state -Variables (Vars 1)).Status | Should -Be 'Succeeded'
    }
    AfterAll {
        $pidFile = "$root/run/shim-sample.pid"
        if (Test-Path $pidFile) { Stop-Process -Id (Get-Content $pidFile) -Force -ErrorAction SilentlyContinue }
        Remove-Item -Recurse -Force $sandbox -ErrorAction SilentlyContinue
    }

    It 'deploys a good shim: healthy, mapped, a new generation' {
        $r = Invoke-SafeDeploy $manifest -Root $root -StateDirectory $state -Variables (Vars 2)
        $r.Status | Should -Be 'Succeeded'
        Health | Should -Match '^ok shim=2 '
    }

    It 'rolls a shim whose constructor crashes back at the validate phase' {
        $before = [IO.File]::ReadAllBytes("$root/opt/shim/lib/libshim.so")
        $r = Invoke-SafeDeploy $manifest -Root $root -StateDirectory $state -Variables (Vars 3 @{ shimDefines = '-DSHIM_CRASH_IN_CONSTRUCTOR' }) -ErrorAction SilentlyContinue
        $r.Status | Should -Be 'RolledBack'
        ($r.Phases | Where-Object Name -eq validate).Status | Should -Be 'Failed'
        [IO.File]::ReadAllBytes("$root/opt/shim/lib/libshim.so") | Should -Be $before
        Health | Should -Match '^ok shim=2 '
    }

    It 'rolls a shim that breaks the health check back, and the previous library serves again' {
        $r = Invoke-SafeDeploy $manifest -Root $root -StateDirectory $state -Variables (Vars 4 @{ shimDefines = '-DSHIM_BREAK_UNAME' }) -ErrorAction SilentlyContinue
        $r.Status | Should -Be 'RolledBack'
        ($r.Phases | Where-Object Name -eq health).Status | Should -Be 'Failed'
        Health | Should -Match '^ok shim=2 '
    }

    It 'changes nothing when the disk-space check fails' {
        $r = Invoke-SafeDeploy $manifest -Root $root -StateDirectory $state -Variables (Vars 5 @{ minFree = '999999GB' }) -ErrorAction SilentlyContinue
        $r.Status | Should -Be 'Failed'
        Health | Should -Match '^ok shim=2 '
    }

    It 'brings the previous generation back with Undo-SafeDeploy' {
        (Invoke-SafeDeploy $manifest -Root $root -StateDirectory $state -Variables (Vars 6)).Status | Should -Be 'Succeeded'
        (Undo-SafeDeploy -Name shim -StateDirectory $state -Confirm:$false).Status | Should -Be 'Undone'
        Health | Should -Match '^ok shim=2 '
    }
}
