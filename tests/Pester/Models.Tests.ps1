# Pester 5 suite for the model cache (mirrors tests/SafeDeploy.Tests/Models). Needs pwsh and python3 (a tiny
# HTTP server on 127.0.0.1 with Range support stands in for the Kestrel server of the xunit tests).
BeforeAll {
    Import-Module (Join-Path $PSScriptRoot '../../SafeDeploy.psd1') -Force
    $script:root = Join-Path $TestDrive 'www'
    New-Item -ItemType Directory -Path (Join-Path $root 'a'), (Join-Path $root 'b') | Out-Null
    $rng = [Random]::new(1)
    foreach ($p in 'a/model.bin', 'b/model.bin') {
        $bytes = [byte[]]::new(300000); $rng.NextBytes($bytes)
        [IO.File]::WriteAllBytes((Join-Path $root $p), $bytes)
    }
    $script:shaA = (Get-FileHash (Join-Path $root 'a/model.bin') -Algorithm SHA256).Hash.ToLowerInvariant()
    $script:shaB = (Get-FileHash (Join-Path $root 'b/model.bin') -Algorithm SHA256).Hash.ToLowerInvariant()
    $listener = [Net.Sockets.TcpListener]::new([Net.IPAddress]::Loopback, 0); $listener.Start()
    $script:port = $listener.LocalEndpoint.Port; $listener.Stop()
    $script:server = Start-Process python3 -ArgumentList '-m', 'http.server', $port, '--bind', '127.0.0.1', '--directory', $root -PassThru
    $deadline = [datetime]::UtcNow.AddSeconds(60)
    while ($true) {  # until the server accepts a connection, with a deadline
        $probe = [Net.Sockets.TcpClient]::new()
        try { $probe.Connect('127.0.0.1', $port); break } catch { if ([datetime]::UtcNow -gt $deadline) { throw "python3 http.server did not listen on $port within 60 s" } }
        finally { $probe.Dispose() }
        Start-Sleep -Milliseconds 50
    }
    $script:base = "http://127.0.0.1:$port"
}

AfterAll {
    if ($server) { Stop-Process -Id $server.Id -ErrorAction SilentlyContinue }
}

Describe 'Get-ModelLocked' {
    BeforeEach { $script:cache = Join-Path $TestDrive ("cache-" + [guid]::NewGuid().ToString('N')) }

    It 'downloads, verifies and then serves from the cache' {
        $first = Get-ModelLocked "$base/a/model.bin" -Sha256 $shaA -CacheDirectory $cache
        $first.Source | Should -Be 'Downloaded'
        (Get-FileHash $first.Path -Algorithm SHA256).Hash | Should -Be $shaA.ToUpperInvariant()
        (Get-ModelLocked "$base/a/model.bin" -CacheDirectory $cache).Source | Should -Be 'Cached'
    }

    It 'never lets two URIs with the same file name collide' {
        $a = Get-ModelLocked "$base/a/model.bin" -CacheDirectory $cache
        $b = Get-ModelLocked "$base/b/model.bin" -CacheDirectory $cache
        $a.Path | Should -Not -Be $b.Path
        $b.Sha256 | Should -Be $shaB
    }

    It 'takes Uri and Sha256 from the pipeline by property name' {
        $rows = @([pscustomobject]@{ Uri = "$base/a/model.bin"; Sha256 = $shaA }, [pscustomobject]@{ Uri = "$base/b/model.bin"; Sha256 = $shaB })
        ($rows | Get-ModelLocked -CacheDirectory $cache).Count | Should -Be 2
    }

    It 'raises ChecksumMismatch and caches nothing' {
        { Get-ModelLocked "$base/a/model.bin" -Sha256 ('0' * 64) -CacheDirectory $cache -ErrorAction Stop } |
            Should -Throw -ErrorId 'ChecksumMismatch,SafeDeploy.Cmdlets.GetModelLockedCommand'
        Get-ModelCache -CacheDirectory $cache | Should -BeNullOrEmpty
        Get-ChildItem $cache -Recurse -Force -Filter '*.partial*' | Should -BeNullOrEmpty
    }

    It 'raises ModelNotFound for a 404' {
        { Get-ModelLocked "$base/none.bin" -CacheDirectory $cache -ErrorAction Stop } |
            Should -Throw -ErrorId 'ModelNotFound,SafeDeploy.Cmdlets.GetModelLockedCommand'
    }

    It 'raises DownloadFailed when the connection is refused' {
        { Get-ModelLocked 'http://127.0.0.1:9/x.bin' -CacheDirectory $cache -ErrorAction Stop } |
            Should -Throw -ErrorId 'DownloadFailed,SafeDeploy.Cmdlets.GetModelLockedCommand'
    }

    It 'copies a plain path through the same cache' {
        $m = Get-ModelLocked (Join-Path $root 'a/model.bin') -Sha256 $shaA -CacheDirectory $cache
        $m.Uri | Should -BeLike 'file:///*'
        $m.Path | Should -BeLike "$cache/*"
    }

    It 'never shows the auth header in verbose output or errors' {
        $out = Get-ModelLocked "$base/none.bin" -CacheDirectory $cache -Headers @{ Authorization = 'Bearer TOPSECRET' } -Verbose -ErrorAction SilentlyContinue -ErrorVariable errs 4>&1
        (@($out) + @($errs) | Out-String) | Should -Not -Match 'TOPSECRET'
    }

    It 'gives up a lock wait after -TimeoutSec with LockTimeout' {
        $m = Get-ModelLocked "$base/a/model.bin" -CacheDirectory $cache
        $lock = Join-Path (Split-Path $m.Path) '.entry.lock'
        $holder = Start-Process flock -ArgumentList $lock, 'sleep', '10' -PassThru
        Start-Sleep -Milliseconds 500
        try {
            { Get-ModelLocked "$base/a/model.bin" -CacheDirectory $cache -TimeoutSec 1 -ErrorAction Stop } |
                Should -Throw -ErrorId 'LockTimeout,SafeDeploy.Cmdlets.GetModelLockedCommand'
        } finally { Stop-Process -Id $holder.Id -ErrorAction SilentlyContinue }
    }
}

Describe 'Get-ModelCache and Remove-ModelCache' {
    BeforeAll {
        $script:cache = Join-Path $TestDrive 'cache-list'
        Get-ModelLocked "$base/a/model.bin" -CacheDirectory $cache | Out-Null
        Get-ModelLocked "$base/b/model.bin" -CacheDirectory $cache | Out-Null
    }

    It 'lists the entries' {
        $entries = Get-ModelCache -CacheDirectory $cache
        $entries.Count | Should -Be 2
        $entries | ForEach-Object { $_.InUse | Should -BeFalse; $_.State | Should -Be 'Ready' }
    }

    It 'changes nothing with -WhatIf' {
        Get-ModelCache -CacheDirectory $cache | Remove-ModelCache -CacheDirectory $cache -WhatIf
        (Get-ModelCache -CacheDirectory $cache).Count | Should -Be 2
    }

    It 'removes an entry by URI' {
        Remove-ModelCache "$base/a/model.bin" -CacheDirectory $cache -Confirm:$false
        (Get-ModelCache -CacheDirectory $cache).Uri | Should -Be "$base/b/model.bin"
    }

    It 'reports ModelNotCached for an unknown URI' {
        { Remove-ModelCache "$base/zzz.bin" -CacheDirectory $cache -ErrorAction Stop } |
            Should -Throw -ErrorId 'ModelNotCached,SafeDeploy.Cmdlets.RemoveModelCacheCommand'
    }

    It 'evicts down to -MaxSizeGB' {
        Remove-ModelCache -MaxSizeGB 0 -CacheDirectory $cache -Confirm:$false
        Get-ModelCache -CacheDirectory $cache | Should -BeNullOrEmpty
    }
}
