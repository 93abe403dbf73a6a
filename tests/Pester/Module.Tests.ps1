#Requires -Version 7.4
#Requires -Modules @{ ModuleName = 'Pester'; ModuleVersion = '5.0' }
# The module as a package: manifest, explicit exports, approved verbs, quiet import, help and format views.
# Mirrors tests/SafeDeploy.Tests/Meta (xunit). Build first: dotnet build SafeDeploy.slnx

BeforeDiscovery {
    $manifest = (Resolve-Path (Join-Path $PSScriptRoot '../../SafeDeploy.psd1')).Path
    Import-Module $manifest -Force
    $cmdlets = @((Get-Module SafeDeploy).ExportedCmdlets.Keys | Sort-Object | ForEach-Object { @{ Name = $_ } })
    $hasDotnet = [bool](Get-Command dotnet -CommandType Application -ErrorAction SilentlyContinue)
}

BeforeAll {
    $script:root = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
    $script:manifest = Join-Path $root 'SafeDeploy.psd1'
    Import-Module $manifest -Force
    $script:data = Import-PowerShellDataFile $manifest
}

Describe 'Module manifest' {
    It 'passes Test-ModuleManifest' {
        $m = Test-ModuleManifest -Path $manifest -ErrorAction Stop
        $m.Name | Should -Be 'SafeDeploy'
        $m.Version | Should -Be ([version]$data.ModuleVersion)
    }

    It 'lists its exports explicitly, without wildcards' {
        foreach ($key in 'CmdletsToExport', 'FunctionsToExport', 'VariablesToExport', 'AliasesToExport') {
            $data.ContainsKey($key) | Should -BeTrue -Because "$key must be given (a missing key exports everything)"
            @($data[$key]) | Where-Object { [WildcardPattern]::ContainsWildcardCharacters($_) } | Should -BeNullOrEmpty
        }
        @($data.CmdletsToExport).Count | Should -Be @($data.CmdletsToExport | Sort-Object -Unique).Count
    }

    It 'lists every exported cmdlet in CmdletsToExport' {
        $exported = (Get-Module SafeDeploy).ExportedCmdlets.Keys
        $exported | Should -Not -BeNullOrEmpty
        $exported | Where-Object { $_ -notin $data.CmdletsToExport } | Should -BeNullOrEmpty
    }

    It 'uses approved verbs only' {
        $approved = (Get-Verb).Verb
        @((Get-Module SafeDeploy).ExportedCmdlets.Keys) + @($data.CmdletsToExport) |
            Where-Object { ($_ -split '-', 2)[0] -notin $approved } | Should -BeNullOrEmpty
    }

    It 'imports without warnings' {
        Remove-Module SafeDeploy -Force
        Import-Module $manifest -WarningVariable warned -WarningAction SilentlyContinue
        $warned | Should -BeNullOrEmpty
    }

    It 'has a format view for every output type of its own' {
        $views = Get-ChildItem (Join-Path $root 'module') -Filter *.format.ps1xml |
            ForEach-Object { ([xml](Get-Content $_.FullName -Raw)).SelectNodes('//ViewSelectedBy/TypeName') } |
            ForEach-Object { $_.InnerText.Trim() }
        $missing = foreach ($c in Get-Command -Module SafeDeploy -CommandType Cmdlet) {
            foreach ($t in $c.OutputType) { if ($t.Name -notlike 'System.*' -and $t.Name -notin $views) { "$($c.Name) -> $($t.Name)" } }
        }
        $missing | Should -BeNullOrEmpty
    }
}

Describe 'Help for <Name>' -ForEach $cmdlets {
    BeforeAll {
        $help = Get-Help -Name $Name -Full
    }

    It 'comes from the MAML in en-US' {
        $help.PSObject.TypeNames | Should -Contain 'MamlCommandHelpInfo'
    }

    It 'has a synopsis and a description' {
        "$($help.Synopsis)".Trim() | Should -Not -BeNullOrEmpty
        (@($help.description) | ForEach-Object Text) -join '' | Should -Not -BeNullOrEmpty
    }

    It 'describes every parameter' {
        $text = @{}
        foreach ($p in @($help.parameters.parameter)) { $text[$p.name] = (@($p.description) | ForEach-Object Text) -join '' }
        (Get-Command $Name).Parameters.Keys |
            Where-Object { $_ -notin [System.Management.Automation.Cmdlet]::CommonParameters } |
            Where-Object { -not "$($text[$_])".Trim() } | Should -BeNullOrEmpty
    }

    It 'has at least two examples' {
        @($help.examples.example | Where-Object { "$($_.code)".Trim() }).Count | Should -BeGreaterOrEqual 2
    }
}

Describe 'Help files' {
    It 'about_SafeDeploy is found' {
        Get-Help about_SafeDeploy | Out-String | Should -Match 'KERNEL LOCKS, NOT LOCK FILES'
    }

    It 'the committed MAML is current (otherwise run: dotnet run --project tools/HelpGen)' -Skip:(-not $hasDotnet) {
        Push-Location $root
        try { dotnet run --project tools/HelpGen -- -check | Out-Null; $LASTEXITCODE | Should -Be 0 }
        finally { Pop-Location }
    }
}
