using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace SafeDeploy.Bench;

/// <summary>
/// Job status updates per second reaching a bare remote, with 1, 8 and 32 concurrent writer processes: Sync-JobStatus
/// (through the safedeploy host) against the shell script such jobs use today (flock, git pull --rebase, git add, commit,
/// push, retry). Same machine, a fresh bare remote (receive.denyNonFastForwards=true) and one shared clone per run.
/// Process start-up is outside the timing: every writer waits on a barrier file. A Sync-JobStatus writer first records
/// one update with -NoPush in a scratch clone of its own, so that PowerShell's and .NET's first-call compilation is
/// start-up too, as bash's is. The time ends when the last writer's last update has been confirmed on the remote (each
/// writer notes the time; process teardown is not counted for either method), or after the cron-form flush when
/// anything was left queued.
/// </summary>
public sealed class JobStatusBench : IBenchmark
{
    public string Name => "jobstatus";
    const int Runs = 3;

    const string ShellWriter = """
        #!/bin/bash
        # What batch jobs do today: a lock file, pull --rebase, add the one file, commit, push, retry.
        clone=$1; job=$2; updates=$3; go=$4
        while [ ! -e "$go" ]; do sleep 0.001; done
        cd "$clone" || exit 1
        for u in $(seq 1 "$updates"); do
          (
            flock 9
            for try in $(seq 1 20); do
              git pull -q --rebase origin main >/dev/null 2>&1 || { git rebase --abort >/dev/null 2>&1; sleep 0.1; continue; }
              mkdir -p data/status
              printf '{"job_name":"%s","status":"running","progress":%d,"message":"update %d","updated_at":"%s","host":"%s"}\n' \
                "$job" "$u" "$u" "$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)" "$(hostname)" > "data/status/$job.json"
              git add "data/status/$job.json"
              git commit -q -m "status: $job $u" >/dev/null 2>&1
              git push -q origin HEAD:main >/dev/null 2>&1 && break
              sleep "0.$((RANDOM % 5))"
            done
          ) 9>"$clone/.git/status.lock"
        done
        date +%s%N > "$clone/../done.$job"
        """;

    public void Run(Report report)
    {
        var rows = new List<string[]>();
        var rates = new Dictionary<(string, int), double>();
        foreach (var writers in new[] { 1, 8, 32 })
        {
            int updates = writers switch { 1 => 20, 8 => 5, _ => 3 };
            foreach (var method in new[] { "shell script", "Sync-JobStatus" })
            {
                // Median of three runs (by time); lost updates are summed over all three.
                var runs = Enumerable.Range(0, Runs).Select(_ => RunCase(method, writers, updates)).OrderBy(r => r.Elapsed).ToList();
                var (elapsed, _, commits) = runs[Runs / 2];
                int lost = runs.Sum(r => r.Lost);
                double rate = writers * updates / elapsed.TotalSeconds;
                rates[(method, writers)] = rate;
                rows.Add([method, writers.ToString(CultureInfo.InvariantCulture), (writers * updates).ToString(CultureInfo.InvariantCulture),
                    elapsed.TotalSeconds.ToString("0.00", CultureInfo.InvariantCulture), rate.ToString("0.0", CultureInfo.InvariantCulture),
                    commits.ToString(CultureInfo.InvariantCulture), lost.ToString(CultureInfo.InvariantCulture)]);
                Console.WriteLine($"{method} x{writers}: {elapsed.TotalSeconds:0.00} s, {rate:0.0}/s, {commits} commits, {lost} lost");
            }
        }
        report.Heading("Updates per second reaching the remote");
        report.Line($"safedeploy host: {Paths.FastHostKind}.");
        report.Line("Each writer is a separate OS process with its own job; it sends its updates one after another. Time runs from the barrier's release until the last writer's last update was confirmed on the remote (each writer notes that moment; process teardown is not counted), or until a cron-form flush of anything left queued has finished. Each case runs three times; the table shows the median run, and 'lost' counts, over all three runs, jobs whose last update is not on the remote at the end.");
        report.Line("");
        report.Table(["method", "writers", "updates", "seconds", "updates/s", "commits", "lost"], rows);
        foreach (var w in new[] { 1, 8, 32 })
            report.Line($"- {w} writer(s): Sync-JobStatus / shell script = {rates[("Sync-JobStatus", w)] / rates[("shell script", w)]:0.0}x");
        report.Line("");
        report.Line("Why: the shell script makes one commit per update, serialised by its lock, and pulls (fetch + rebase of the work tree) every time. Sync-JobStatus writes each update to the clone's outbox first; whoever holds the clone's lock pushes every waiting update in one commit built with plumbing (no work-tree checkout), and the waiters find theirs already pushed.");
    }

    static (TimeSpan Elapsed, int Lost, int Commits) RunCase(string method, int writers, int updates)
    {
        var root = Path.Combine(Path.GetTempPath(), "sd-bench-js-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(root);
        try
        {
            var bare = Path.Combine(root, "remote.git");
            Git(root, "init", "-q", "--bare", "-b", "main", bare);
            Git(bare, "config", "receive.denyNonFastForwards", "true");
            var seed = Path.Combine(root, "seed");
            Git(root, "clone", "-q", bare, seed);
            File.WriteAllText(Path.Combine(seed, "README.md"), "dashboard\n");
            Git(seed, "add", "-A");
            Git(seed, "commit", "-q", "-m", "init");
            Git(seed, "push", "-q", "origin", "HEAD:main");
            var clone = Path.Combine(root, "clone");
            Git(root, "clone", "-q", bare, clone);
            var baseCommits = int.Parse(Git(bare, "rev-list", "--count", "main").Trim(), CultureInfo.InvariantCulture);
            var go = Path.Combine(root, "go");
            var script = Path.Combine(root, "writer.sh");
            File.WriteAllText(script, ShellWriter);
            var scratch = Path.Combine(root, "scratch");
            Git(root, "clone", "-q", bare, scratch);
            var procs = new List<Process>();
            for (int w = 0; w < writers; w++)
            {
                var job = $"job-{w:00}";
                var ready = Path.Combine(root, $"ready.{w}");
                procs.Add(method == "shell script"
                    ? Start("bash", ["-c", $"touch '{ready}'; exec bash '{script}' '{clone}' {job} {updates} '{go}'"])
                    : Start(Paths.FastHost, ["-Command", $$"""
                        $null = Get-JobStatus -Repository '{{clone}}' -ErrorAction SilentlyContinue
                        $null = Sync-JobStatus -Repository '{{scratch}}' -JobName warm-up-{{w}} -Status running -NoPush -Branch main
                        [IO.File]::WriteAllText('{{ready}}', '')
                        while (-not [IO.File]::Exists('{{go}}')) { [Threading.Thread]::Sleep(1) }
                        foreach ($u in 1..{{updates}}) { $null = Sync-JobStatus -Repository '{{clone}}' -JobName {{job}} -Status running -Progress $u -Message "update $u" -Branch main }
                        [IO.File]::WriteAllText('{{root}}/done.{{job}}', [DateTimeOffset]::UtcNow.ToUnixTimeMilliseconds().ToString() + '000000')
                        """]));
            }
            while (Directory.GetFiles(root, "ready.*").Length < writers) Thread.Sleep(20);
            Thread.Sleep(300);
            long start = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            File.WriteAllText(go, "");
            foreach (var p in procs) { p.WaitForExit(); p.Dispose(); }
            long end = Directory.GetFiles(root, "done.*").Max(f => long.Parse(File.ReadAllText(f).Trim(), CultureInfo.InvariantCulture) / 1_000_000);
            var outbox = Path.Combine(clone, ".git", "safedeploy", "outbox");
            if (method != "shell script" && Directory.Exists(outbox) && Directory.GetFiles(outbox, "*.json").Length > 0)
            {
                // Something was left queued: the cron form pushes it, and its time counts.
                using var flush = Start(Paths.FastHost, ["-Command", $"$null = Sync-JobStatus -Repository '{clone}'"]);
                flush.WaitForExit();
                end = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            }
            var elapsed = TimeSpan.FromMilliseconds(end - start);
            int lost = 0;
            for (int w = 0; w < writers; w++)
            {
                var shown = TryGit(bare, "show", $"main:data/status/job-{w:00}.json");
                if (shown is null) { lost++; continue; }
                var message = JsonDocument.Parse(shown).RootElement.GetProperty("message").GetString();
                if (message != $"update {updates}") lost++;
            }
            int commits = int.Parse(Git(bare, "rev-list", "--count", "main").Trim(), CultureInfo.InvariantCulture) - baseCommits;
            return (elapsed, lost, commits);
        }
        finally { try { Directory.Delete(root, true); } catch (IOException) { } }
    }

    static Process Start(string program, string[] args)
    {
        var psi = new ProcessStartInfo(program) { UseShellExecute = false, RedirectStandardOutput = false, RedirectStandardError = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["GIT_AUTHOR_NAME"] = psi.Environment["GIT_COMMITTER_NAME"] = "bench";
        psi.Environment["GIT_AUTHOR_EMAIL"] = psi.Environment["GIT_COMMITTER_EMAIL"] = "bench@safedeploy.invalid";
        psi.Environment["NO_COLOR"] = "1";
        return Process.Start(psi)!;
    }

    static string Git(string dir, params string[] args) => TryGit(dir, args) ?? throw new InvalidOperationException("git " + string.Join(' ', args) + " failed in " + dir);

    static string? TryGit(string dir, params string[] args)
    {
        var psi = new ProcessStartInfo("git") { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["GIT_AUTHOR_NAME"] = psi.Environment["GIT_COMMITTER_NAME"] = "bench";
        psi.Environment["GIT_AUTHOR_EMAIL"] = psi.Environment["GIT_COMMITTER_EMAIL"] = "bench@safedeploy.invalid";
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        _ = err.Result;
        return p.ExitCode == 0 ? output : null;
    }
}
