using System.Diagnostics;
using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.Deployment;

/// <summary>
/// -Root is a jail: an unprivileged user (uid 65534 through setpriv) who owns a directory inside the sandbox plants
/// links out of the root, or swaps a directory for such a link while a deployment runs; nothing outside is touched.
/// </summary>
public class RootJailTests
{
    static void AsNobody(params string[] command) =>
        Programs.Run("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "--", .. command]);

    /// <summary>A root-owned directory outside the root with one file, and an attacker-owned /srv inside the root.</summary>
    static (string Outside, string Srv) Arrange(Sandbox box)
    {
        var outside = box["outside"];
        Directory.CreateDirectory(outside);
        File.WriteAllText(Path.Combine(outside, "keep"), "root's file\n");
        var srv = box.InRoot("/srv");
        Directory.CreateDirectory(srv);
        Programs.Run("chown", "65534:65534", srv);
        box.Write("lib.so", "new library\n");
        return (outside, srv);
    }

    static string Listing(string dir) =>
        string.Join("\n", Directory.GetFileSystemEntries(dir, "*", SearchOption.AllDirectories).Order().Select(f => $"{f}: {(File.Exists(f) ? File.ReadAllText(f) : "dir")}"));

    [Fact]
    public void LinksPlantedOutOfTheRoot_InstallEditFileAndUndo_NeverTouchAnythingOutside()
    {
        using var box = new Sandbox();
        var (outside, srv) = Arrange(box);
        var before = Listing(outside);
        AsNobody("ln", "-s", outside, Path.Combine(srv, "abs"));                                    // absolute link out
        AsNobody("ln", "-s", "../../../../../../../../" + outside.TrimStart('/'), Path.Combine(srv, "rel")); // relative, via ..
        AsNobody("ln", "-s", Path.Combine(outside, "keep"), Path.Combine(srv, "keep.conf"));          // a final component
        var manifest = box.Write("deploy.yaml", """
            name: jail
            phases:
              - name: abs
                install: { source: lib.so, target: /srv/abs/lib.so }
                continueOnError: true
              - name: rel
                editFile: { path: /srv/rel/app.conf, ensureLine: "x=1" }
                continueOnError: true
              - name: rel-install
                install: { source: lib.so, target: /srv/rel/sub/lib.so }
                continueOnError: true
              - name: final
                install: { source: lib.so, target: /srv/keep.conf }
            """);
        using var ps = new PsSession();
        var r = ps.Run("Invoke-SafeDeploy $m -Root $root -StateDirectory $s", ("m", manifest), ("root", box.Root), ("s", box.State));
        Assert.Equal(before, Listing(outside));
        // Installing over the planted final link replaces the link itself, inside the root; undo puts the link back.
        Assert.True(r.Status(0) == "Succeeded", r.Describe());
        Assert.Equal("new library\n", File.ReadAllText(Path.Combine(srv, "keep.conf")));
        Assert.Null(new FileInfo(Path.Combine(srv, "keep.conf")).LinkTarget);
        var undo = ps.Run("Undo-SafeDeploy jail -StateDirectory $s -Confirm:$false", ("s", box.State));
        Assert.True(undo.AllErrors.Count() == 0, undo.Describe());
        Assert.Equal(Path.Combine(outside, "keep"), new FileInfo(Path.Combine(srv, "keep.conf")).LinkTarget); // a symlink again
        Assert.Equal(before, Listing(outside));
    }

    [Fact]
    public void ADirectorySwappedForALinkWhileTheDeploymentRuns_NothingIsWrittenOutside()
    {
        using var box = new Sandbox();
        var (outside, srv) = Arrange(box);
        var before = Listing(outside);
        var files = string.Join("\n", Enumerable.Range(0, 25).Select(i => $"      - {{ source: lib.so, target: /srv/d/f{i}.so }}"));
        var manifest = box.Write("deploy.yaml", $"name: race\nphases:\n  - name: many\n    install:\n{files}\n  - name: conf\n    editFile: {{ path: /srv/d/app.conf, ensureLine: \"x=1\" }}\n");
        var flipper = Process.Start(new ProcessStartInfo("setpriv",
            ["--reuid=65534", "--regid=65534", "--clear-groups", "--", "sh", "-c",
             $"cd '{srv}' && end=$(($(date +%s)+60)); while [ $(date +%s) -lt $end ]; do mkdir d 2>/dev/null; rm -rf d; ln -sfn '{outside}' d; rm -f d; done"]))!;
        try
        {
            using var ps = new PsSession();
            for (int i = 0; i < 6; i++)
            {
                ps.Run("Invoke-SafeDeploy $m -Root $root -StateDirectory $s", ("m", manifest), ("root", box.Root), ("s", box.State));
                Assert.Equal(before, Listing(outside));
            }
        }
        finally { flipper.Kill(); flipper.WaitForExit(5000); }
        Assert.Equal(before, Listing(outside));
    }

    [Theory]
    [InlineData("owner")]
    [InlineData("mode")]
    public void ARootOwnedOrWritableByAnotherUser_IsRefused(string how)
    {
        using var box = new Sandbox();
        box.Write("lib.so", "x\n");
        if (how == "owner") Programs.Run("chown", "65534:65534", box.Root);
        else Programs.Run("chmod", "0777", box.Root);
        var manifest = box.Write("deploy.yaml", "name: bad\nphases:\n  - name: a\n    install: { source: lib.so, target: /etc/x }\n");
        using var ps = new PsSession();
        var r = ps.Run("Invoke-SafeDeploy $m -Root $root -StateDirectory $s", ("m", manifest), ("root", box.Root), ("s", box.State));
        var err = Assert.Single(r.AllErrors);
        Assert.StartsWith("UntrustedRoot", err.FullyQualifiedErrorId);
        Assert.Equal(System.Management.Automation.ErrorCategory.SecurityError, err.CategoryInfo.Category);
        Assert.False(File.Exists(box.InRoot("/etc/x")));
    }

    [Fact]
    public void RunDirectoriesAre0700_LogsAndJournals0600_AndADiffOfAPrivateFileHidesItsContent()
    {
        using var box = new Sandbox();
        var secret = box.WriteInRoot("/etc/secret.conf", "password=hunter2\n");
        Programs.Run("chmod", "0600", secret);
        var manifest = box.Write("deploy.yaml", "name: private\nphases:\n  - name: s\n    editFile: { path: /etc/secret.conf, ensureLine: \"token=s3cr3t\" }\n");
        using var ps = new PsSession();
        var whatIf = HostProcess.Run($"Invoke-SafeDeploy '{manifest}' -Root '{box.Root}' -StateDirectory '{box.State}' -WhatIf");
        var shown = whatIf.StdOut + whatIf.StdErr;
        Assert.True(whatIf.ExitCode == 0 && shown.Contains("line 2 (hidden)"), whatIf.ToString());
        var r = ps.Run("Invoke-SafeDeploy $m -Root $root -StateDirectory $s -Verbose", ("m", manifest), ("root", box.Root), ("s", box.State));
        Assert.True(r.Status(0) == "Succeeded", r.Describe());
        var phase = System.Management.Automation.PSObject.AsPSObject(((System.Collections.IEnumerable)r.Prop(0, "Phases")!).Cast<object>().Single());
        var output = (string)phase.Properties["Output"].Value;
        var log = File.ReadAllText((string)phase.Properties["LogPath"].Value);
        // The file's content never shows (the line the manifest asks for may: the operator wrote it there).
        foreach (var text in new[] { output, log, string.Join("\n", r.Verbose), shown }) Assert.DoesNotContain("hunter2", text);
        foreach (var text in new[] { output, log }) Assert.DoesNotContain("s3cr3t", text);
        Assert.Contains("line 2 (hidden)", output);
        Assert.Equal("password=hunter2\ntoken=s3cr3t\n", File.ReadAllText(secret));
        string Mode(string p) => Programs.Run("stat", "-c", "%a", p);
        var journal = (string)r.Prop(0, "JournalPath")!;
        Assert.Equal("600", Mode(journal));
        Assert.Equal("600", Mode((string)phase.Properties["LogPath"].Value));
        Assert.Equal("700", Mode(Path.GetDirectoryName(journal)!));
        Assert.Equal("700", Mode(Path.Combine(Path.GetDirectoryName(journal)!, Path.GetFileNameWithoutExtension(journal))));
    }
}
