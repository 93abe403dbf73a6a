using System.Management.Automation;
using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.StateDirectories;

/// <summary>Issue 15: -WhatIf changes nothing on a fresh HOME; bad lock names and missing locks are clear, passable errors.</summary>
public sealed class WhatIfAndNameTests : IDisposable
{
    readonly TempDir home = new("whatif");
    readonly EnvScope env;
    readonly PsSession ps;

    public WhatIfAndNameTests()
    {
        env = EnvScope.FreshHome(home.Path);
        ps = new PsSession();
    }

    public void Dispose() { ps.Dispose(); env.Dispose(); home.Dispose(); }

    // PowerShell itself keeps its caches under ~/.local/share/powershell; everything else must stay absent.
    void AssertHomeEmpty() => Assert.Empty(Directory.EnumerateFileSystemEntries(home.Path, "*", SearchOption.AllDirectories)
        .Select(e => e[home.Path.Length..])
        .Where(e => e is not ("/.local" or "/.local/share") && !e.StartsWith("/.local/share/powershell", StringComparison.Ordinal)));

    [Theory]
    [InlineData("Initialize-StateDirectory -Name tool -WhatIf")]
    [InlineData("Initialize-StateDirectory -Name tool -Path ([IO.Path]::Combine($env:HOME, 'base')) -WhatIf")]
    [InlineData("Edit-LockedFile -Path ([IO.Path]::Combine($env:HOME, 'conf/app.conf')) -EnsureLine 'a=1' -WhatIf")]
    [InlineData("Edit-LockedFile -Path ([IO.Path]::Combine($env:HOME, 'app.json')) -MergeJson @{ a = 1 } -WhatIf")]
    [InlineData("Write-StateLog -Name tool -Message 'hello' -WhatIf")]
    [InlineData("Write-StateLog -LogFile ([IO.Path]::Combine($env:HOME, 'x/tool.log')) -Message 'hello' -WhatIf")]
    [InlineData("Invoke-WithLock -Name job -ScriptBlock { [IO.File]::WriteAllText(([IO.Path]::Combine($env:HOME, 'ran')), '') } -WhatIf")]
    [InlineData("Invoke-WithLock -Path ([IO.Path]::Combine($env:HOME, 'job.lock')) -ScriptBlock { [IO.File]::WriteAllText(([IO.Path]::Combine($env:HOME, 'ran')), '') } -WhatIf")]
    public void WhatIf_OnAFreshHome_LeavesItEmpty(string command)
    {
        var r = ps.Run(command);
        Assert.Empty(r.AllErrors);
        AssertHomeEmpty();
    }

    [Theory]
    [InlineData("Invoke-WithLock -Name 'a/b' -ScriptBlock { 1 }")]
    [InlineData("Get-LockHolder -Name 'a/b'")]
    public void ALockNameWithASlash_IsInvalidName_WithAdvice(string command)
    {
        var r = ps.Run(command);
        var e = Assert.Single(r.AllErrors);
        Assert.StartsWith("InvalidName", e.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.InvalidArgument, e.CategoryInfo.Category);
        Assert.Equal("a/b", e.TargetObject);
        Assert.False(string.IsNullOrEmpty(e.ErrorDetails?.RecommendedAction));
        AssertHomeEmpty();
    }

    [Fact]
    public void LockNotFound_IsNonTerminating_AndSilentlyContinuePassesOverIt()
    {
        var r = ps.Run("Get-LockHolder -Name never-taken, 'x/y' -ErrorAction SilentlyContinue; 'after'");
        Assert.Null(r.Terminating);
        Assert.Equal("after", Assert.Single(r.Output).BaseObject);
        var shown = ps.Run("Get-LockHolder -Name never-taken");
        var e = Assert.Single(shown.AllErrors);
        Assert.StartsWith("LockNotFound", e.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.ObjectNotFound, e.CategoryInfo.Category);
        Assert.Null(shown.Terminating);
    }
}
