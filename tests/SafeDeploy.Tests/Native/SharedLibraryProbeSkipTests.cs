using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.NativeShim;

/// <summary>A probe whose program is absent is Skipped, warned about, and never counted as passed.</summary>
public class SharedLibraryProbeSkipTests
{
    [Fact]
    public void AbsentProbeProgram_IsSkippedWithAWarning_NotPassed()
    {
        using var ps = new PsSession();
        var r = ps.Run("Test-SharedLibrary -Path $lib -Probe 'no-such-sudo-xyz -V', 'sh -c true'", ("lib", ShimFixtures.Good));
        Assert.True(!r.AllErrors.Any(), r.Describe());
        var skipped = Assert.Single(r.Warnings, w => w.Contains("no-such-sudo-xyz -V"));
        Assert.Contains("skipped", skipped);
        Assert.Contains("not installed", skipped);
        var canaries = ((System.Collections.IEnumerable)r.Prop(0, "Canary")!).Cast<object>().Select(c => System.Management.Automation.PSObject.AsPSObject(c)).ToList();
        var probe = canaries.Single(c => (string)c.Properties["Program"].Value == "no-such-sudo-xyz -V");
        Assert.Equal(true, probe.Properties["Skipped"].Value);
        Assert.Equal(false, probe.Properties["Passed"].Value);
        var ran = canaries.Single(c => (string)c.Properties["Program"].Value == "sh -c true");
        Assert.Equal(true, ran.Properties["Passed"].Value);
        Assert.Equal(["no-such-sudo-xyz -V"], ((System.Collections.IEnumerable)r.Prop(0, "ProbesSkipped")!).Cast<string>());
        Assert.Equal(true, r.Prop(0, "IsValid")); // what ran passed; the skipped probe vouches for nothing and says so
    }
}
