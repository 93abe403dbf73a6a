using System.Management.Automation;
using SafeDeploy.Engine.Fleet;
using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.Fleet;

/// <summary>Waves, the budget, the inventory's errors and -WhatIf: no host is contacted.</summary>
public class FleetPlanTests
{
    [Theory]
    [InlineData(new[] { "1", "25%", "100%" }, 8, new[] { 1, 2, 5 })]
    [InlineData(new[] { "1", "50%" }, 8, new[] { 1, 4, 3 })]
    [InlineData(new[] { "30%" }, 7, new[] { 3, 3, 1 })]
    [InlineData(new[] { "2" }, 5, new[] { 2, 2, 1 })]
    [InlineData(new[] { "1%" }, 3, new[] { 1, 1, 1 })]
    public void Waves_AreAnsibleSerial(string[] batch, int hosts, int[] sizes) =>
        Assert.Equal(sizes, WavePlan.Split(Enumerable.Range(0, hosts).ToList(), batch).Select(w => w.Count));

    [Fact]
    public void Budget_CountsTheWholeRollout()
    {
        Assert.True(FailureBudget.Parse(null, 10).IsSpent(1));
        Assert.False(FailureBudget.Parse("2", 10).IsSpent(2));
        Assert.True(FailureBudget.Parse("2", 10).IsSpent(3));
        Assert.Equal(2, FailureBudget.Parse("25%", 10).Allowed);
        var e = Assert.Throws<Engine.Errors.SafeDeployException>(() => FailureBudget.Parse("ten", 10));
        Assert.Equal("InvalidMaxFailed", e.ErrorId);
    }

    [Fact]
    public void InventoryErrors_NameFileLineAndColumn()
    {
        using var dir = new TempDir("inv");
        var manifest = FleetTests.WriteManifest(dir);
        var inventory = dir.Write("inventory.yaml", "hosts:\n  a:\n    port: seventy\n  b:\n    colour: red\ngroups:\n  g: [a, c]\n");
        using var ps = new PsSession();
        var r = ps.Run("Invoke-SafeDeploy -Manifest $m -Inventory $i", ("m", manifest), ("i", inventory));
        var error = Assert.Single(r.AllErrors);
        Assert.StartsWith("InventoryInvalid", error.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.InvalidData, error.CategoryInfo.Category);
        Assert.Equal(inventory, error.TargetObject);
        Assert.Contains($"{inventory}:3:11: 'port' must be a number", error.Exception.Message);
        Assert.Contains($"{inventory}:5:5: Unknown key 'colour'", error.Exception.Message);
        Assert.Contains($"{inventory}:7:10: Group 'g' lists 'c'", error.Exception.Message);
    }

    [Fact]
    public void WhatIf_ShowsWavesAndEachHostsPlan_AndContactsNoHost()
    {
        using var dir = new TempDir("whatif");
        var manifest = FleetTests.WriteManifest(dir);
        var hosts = string.Concat(Enumerable.Range(1, 4).Select(i => $"  n{i}:\n    address: 127.0.0.{20 + i}\n    port: 1\n    root: {dir[$"r{i}"]}\n"));
        var inventory = dir.Write("inventory.yaml", "hosts:\n" + hosts + "groups:\n  gpu: [n2, n3, n4]\n");
        var host = HostProcess.Run($"Invoke-SafeDeploy -Manifest '{manifest}' -Inventory '{inventory}' -Group gpu -BatchSize 1,100% -StateDirectory '{dir["state"]}' -WhatIf");
        Assert.Equal(0, host.ExitCode);
        var text = host.StdOut + host.StdErr;
        Assert.Contains("3 host(s) in 2 wave(s)", text);
        Assert.Contains("wave 1 (canary):\n    n2 (127.0.0.22, root " + dir["r2"] + "): lib -> preload -> use", text);
        Assert.Contains("wave 2:\n    n3", text);
        Assert.DoesNotContain("n1 (", text);
        Assert.False(Directory.Exists(dir["state"] + "/state/fleet"));
    }

    [Fact]
    public void HostNameWithoutInventory_UsesTheUsersSshConfiguration()
    {
        var h = FleetSelection.Parse("admin@gpu-07:2222");
        Assert.Equal(("gpu-07", "admin", 2222), (h.Address, h.User, h.Port));
        var e = Assert.Throws<Engine.Errors.SafeDeployException>(() => FleetSelection.Parse("gpu/07"));
        Assert.Equal("InvalidHostName", e.ErrorId);
    }
}
