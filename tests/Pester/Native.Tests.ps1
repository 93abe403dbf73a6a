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
