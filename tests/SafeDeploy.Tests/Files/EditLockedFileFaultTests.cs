using System.Text;
using SafeDeploy.Tests.Faults;
using SafeDeploy.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace SafeDeploy.Tests.Files;

/// <summary>
/// Issue 17: every I/O call of every Edit-LockedFile mode fails once (EIO), one call per attempt, each attempt in its
/// own directory; after each, the file is old or new byte-exact with its mode, nothing else is left in the directory,
/// a success is never reported for an edit that did not happen, and the error names the cause. A later run succeeds.
/// </summary>
public sealed class EditLockedFileFaultTests(ITestOutputHelper output) : IDisposable
{
    readonly TempDir root = new("fault");

    public void Dispose() => root.Dispose();

    sealed record Scenario(string Name, string? Initial, string Command, bool MissingDirectory = false)
    {
        public string Target(string dir) => MissingDirectory ? Path.Combine(dir, "sub", "deeper", "file") : Path.Combine(dir, "file");
        public string Run(string dir) => Command.Replace("FILE", Target(dir));
    }

    const uint ExistingMode = 0x1A0; // 0640, kept by every edit
    const uint NewMode = 0x180;      // 0600, asked with -Mode

    static readonly Scenario[] Scenarios =
    [
        new("ensureline-existing", "a=1\nkey=old\n", "Edit-LockedFile -Path 'FILE' -EnsureLine 'key=new' -Key 'key=' -Mode 0600"),
        new("ensureline-new", null, "Edit-LockedFile -Path 'FILE' -EnsureLine 'key=new' -Key 'key=' -Mode 0600"),
        new("ensureline-new-dir", null, "Edit-LockedFile -Path 'FILE' -EnsureLine 'key=new' -Mode 0600", MissingDirectory: true),
        new("mergejson-existing", "{\n  \"a\": 1\n}\n", "Edit-LockedFile -Path 'FILE' -MergeJson @{ b = @{ c = 2 } } -Mode 0600"),
        new("mergejson-new", null, "Edit-LockedFile -Path 'FILE' -MergeJson @{ b = @{ c = 2 } } -Mode 0600"),
        new("transform-existing", "one\ntwo\n", "Edit-LockedFile -Path 'FILE' -Transform { param($t) $t.Replace('two', 'three') } -Mode 0600"),
        new("transform-new", null, "Edit-LockedFile -Path 'FILE' -Transform { param($t) if ($t -match 'made') { $t } else { $t + 'made' } } -Mode 0600"),
    ];

    string Prepare(string name, Scenario s)
    {
        var dir = Directory.CreateDirectory(root[name]).FullName;
        if (s.Initial is not null)
        {
            File.WriteAllText(s.Target(dir), s.Initial);
            File.SetUnixFileMode(s.Target(dir), (UnixFileMode)ExistingMode);
        }
        return dir;
    }

    static string Attempt(string dir, Scenario s, long point, string label, bool sticky = false) =>
        FaultInjector.MarkerScript(dir, point, sticky) +
        $"try {{ {s.Run(dir)} -ErrorAction Stop; [Console]::WriteLine('RESULT {label} OK') }} " +
        $"catch {{ [Console]::WriteLine('RESULT {label} ERR ' + $_.FullyQualifiedErrorId + ' | ' + ($_.Exception.Message -replace \"`n\", ' ')) }}\n";

    [Fact]
    public void EveryIoCallOfEveryMode_FailingOnce_LeavesOldOrNew_NoTemporaryFile_AndANamedCause() => Sweep(sticky: false, FaultInjector.EIO);

    /// <summary>A disk full from call N on: every later call fails with ENOSPC too (cleanup included); the next edit, with space again, clears what was left.</summary>
    [Fact]
    public void EveryIoCallOfEveryMode_DiskFullFromThereOn_LeavesOldOrNew_NamesTheFullDisk_AndTheNextEditLeavesNothing() => Sweep(sticky: true, FaultInjector.ENOSPC);

    void Sweep(bool sticky, int errno)
    {
        // 1. Count: each mode once, with no fault, to learn its calls and its result.
        var script = new StringBuilder();
        foreach (var s in Scenarios) script.Append(Attempt(Prepare("count-" + s.Name, s), s, 0, s.Name));
        var counting = FaultInjector.RunHost(root.Path, script.ToString());
        Assert.True(counting.Outcome.ExitCode == 0, counting.Outcome.ToString());
        Assert.Equal(Scenarios.Length, counting.Segments.Count);
        var expected = new Dictionary<string, byte[]>();
        var calls = new Dictionary<string, int>();
        for (int i = 0; i < Scenarios.Length; i++)
        {
            var s = Scenarios[i];
            Assert.Contains($"RESULT {s.Name} OK", counting.Outcome.StdOut);
            expected[s.Name] = File.ReadAllBytes(s.Target(root["count-" + s.Name]));
            calls[s.Name] = counting.Segments[i].Calls.Count;
            Assert.True(calls[s.Name] >= 5, $"{s.Name}: only {calls[s.Name]} calls counted:\n{counting.Log}");
            output.WriteLine($"{s.Name}: {calls[s.Name]} I/O calls: " +
                string.Join(", ", counting.Segments[i].Calls.GroupBy(c => c.Syscall).Select(g => $"{g.Key} x{g.Count()}")));
        }

        // 2. Sweep: attempt N of a mode fails its N-th call, in a fresh directory of its own.
        script.Clear();
        var attempts = new List<(Scenario S, int N, string Dir)>();
        foreach (var s in Scenarios)
            for (int n = 1; n <= calls[s.Name]; n++)
            {
                var dir = Prepare($"i-{s.Name}-{n}", s);
                attempts.Add((s, n, dir));
                script.Append(Attempt(dir, s, n, $"{s.Name}-{n}", sticky));
            }
        var sweep = FaultInjector.RunHost(root.Path, script.ToString(), errno);
        Assert.True(sweep.Outcome.ExitCode is 0 or 1, sweep.Outcome.ToString()); // 1: errors were reported (and caught)
        Assert.Equal(attempts.Count, sweep.Segments.Count);

        var problems = new List<string>();
        int ok = 0, failed = 0;
        for (int i = 0; i < attempts.Count; i++)
        {
            var (s, n, dir) = attempts[i];
            var label = $"{s.Name}-{n}";
            var injected = sweep.Segments[i].Injected;
            var line = sweep.Outcome.StdOut.Split('\n').FirstOrDefault(l => l.StartsWith($"RESULT {label} ", StringComparison.Ordinal))?.Trim();
            if (injected is null || injected.Index != n) { problems.Add($"{label}: call {n} was never reached (the mode made fewer calls this time)"); continue; }
            var what = $"{label} ({injected.Syscall} {injected.Path.Replace(dir, "<dir>")})";
            if (line is null) { problems.Add($"{what}: no result line"); continue; }
            bool success = line.EndsWith(" OK", StringComparison.Ordinal);
            if (success) ok++; else failed++;
            var target = s.Target(dir);
            byte[]? now = File.Exists(target) ? File.ReadAllBytes(target) : null;
            bool isNew = now is not null && now.AsSpan().SequenceEqual(expected[s.Name]);
            bool isOld = s.Initial is null ? now is null : now is not null && Encoding.UTF8.GetString(now) == s.Initial;
            if (!isNew && !isOld) problems.Add($"{what}: the file is neither old nor new: {(now is null ? "absent" : Encoding.UTF8.GetString(now))}");
            if (success && !isNew) problems.Add($"{what}: reported success but the file is not the new one");
            var (cause, id) = errno == FaultInjector.EIO ? ("input/output error", " IOError") : ("no space left", " DiskFull");
            if (!success && !line.Contains(cause, StringComparison.Ordinal)) problems.Add($"{what}: the error does not name the cause: {line}");
            if (!success && !line.Contains(id, StringComparison.Ordinal)) problems.Add($"{what}: not{id}: {line}");
            if (now is not null)
            {
                var mode = (uint)File.GetUnixFileMode(target);
                uint want = s.Initial is null ? NewMode : ExistingMode;
                if (mode != want) problems.Add($"{what}: mode {Convert.ToString(mode, 8)}, expected {Convert.ToString(want, 8)}");
            }
            var left = Directory.EnumerateFileSystemEntries(dir, "*", SearchOption.AllDirectories)
                .Where(e => e != target && !(s.MissingDirectory && now is not null && target.StartsWith(e + "/", StringComparison.Ordinal)))
                .Select(e => e.Replace(dir, "<dir>")).ToList();
            // Sticky: the full disk may refuse the cleanup too; the next edit (step 3) must then leave nothing.
            if (left.Count > 0 && !sticky) problems.Add($"{what}: left behind: {string.Join(", ", left)}");
        }
        output.WriteLine($"{(sticky ? "sticky " : "")}sweep: {attempts.Count} attempts ({(errno == FaultInjector.EIO ? "EIO" : "ENOSPC")} at call N{(sticky ? " and every call after" : "")}), {ok} ended in success with the new file, {failed} in an error with old or new; {problems.Count} problems");
        foreach (var p in problems) output.WriteLine("  " + p);

        // 3. With the disk healthy again, every attempt's edit succeeds.
        script.Clear();
        foreach (var (s, n, dir) in attempts) script.Append($"{s.Run(dir)} -ErrorAction Stop\n");
        var retry = HostProcess.Run(script.ToString(), timeout: TimeSpan.FromMinutes(3));
        Assert.True(retry.ExitCode == 0, retry.ToString());
        foreach (var (s, n, dir) in attempts)
        {
            Assert.Equal(expected[s.Name], File.ReadAllBytes(s.Target(dir)));
            var hidden = Directory.GetFiles(Path.GetDirectoryName(s.Target(dir))!, ".*");
            Assert.True(hidden.Length == 0, $"{s.Name}-{n}: left after the next edit: {string.Join(", ", hidden.Select(Path.GetFileName))}");
        }
        Assert.Empty(problems);
    }
}
