using System.Diagnostics;
using System.Globalization;
using Inbox.Reliability.Conformance;
using Inbox.Reliability.Jobs;
using Inbox.Reliability.Sqlite.Tests;
using Inbox.Reliability.Storage;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using Xunit.Abstractions;

namespace Inbox.Reliability.PostgreSql.Tests;

/// <summary>
/// Three real host processes (tests/Inbox.Reliability.TestHost) on one schema: how users scale out. Each child appends
/// "jobId attempt key seq" to its own handler log, and keyed handlers hold a per-key marker file while they run, so two
/// handlers of one key at once, in any two processes, are caught. Real processes and real time; waits are on conditions.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class MultiProcessTests(PostgresServer server, ITestOutputHelper output)
{
    private const string Queue = "scale";

    private sealed record EnqueuedJob(long Id, string? Key, int Seq);

    private sealed record LogLine(long Id, int Attempt, string? Key, int Seq);

    [Fact]
    public async Task Three_hosts_share_20000_jobs_each_runs_once_and_keys_never_overlap_and_stay_in_order()
    {
        await using var storage = new PostgreSqlStorage(server);
        var folder = NewFolder();
        var running = Path.Combine(folder, "running");
        Directory.CreateDirectory(running);
        var clock = Stopwatch.StartNew();
        var children = new List<TestHostProcess>();
        var passed = false;
        try
        {
            // The hosts start together on an empty database: they race to migrate, then wait for work.
            children.AddRange(await Task.WhenAll(Enumerable.Range(0, 3).Select(n => TestHostProcess.StartAsync(Arguments(storage.Schema, folder, n, workMs: 1, running)))));
            output.WriteLine($"3 hosts ready at {clock.Elapsed.TotalSeconds:F1} s");

            // 20,000 jobs: every other one keyed, over 200 keys (50 per key). NOTIFY wakes the hosts.
            var jobs = await EnqueueAsync(storage.Schema, total: 20_000, keys: 200);
            output.WriteLine($"enqueued {jobs.Count} jobs at {clock.Elapsed.TotalSeconds:F1} s");
            await Eventually.TrueAsync(async () => await CountAsync(storage.Schema, "status = 2") == jobs.Count || children.Any(c => c.HasExited),
                "all 20,000 jobs to complete", TimeSpan.FromMinutes(4));
            Assert.All(children, c => Assert.False(c.HasExited, $"host {c.Id} exited by itself: {string.Join(Environment.NewLine, c.Errors)}"));
            output.WriteLine($"all completed at {clock.Elapsed.TotalSeconds:F1} s");
            foreach (var child in children) Assert.Equal(0, await child.StopAsync());

            var logs = Enumerable.Range(0, 3).Select(n => ReadLog(LogPath(folder, n))).ToList();
            output.WriteLine($"handler runs per host: {string.Join(", ", logs.Select(l => l.Count))}");
            Assert.All(logs, log => Assert.NotEmpty(log)); // every host took part

            Assert.False(File.Exists(Path.Combine(running, "overlaps.log")),
                "two handlers of one key ran at once: " + (File.Exists(Path.Combine(running, "overlaps.log")) ? File.ReadAllText(Path.Combine(running, "overlaps.log")) : ""));
            var all = logs.SelectMany(l => l).ToList();
            Assert.Equal(jobs.Count, all.Count); // no crash, so no re-run
            Assert.Equal(jobs.Count, all.Select(l => l.Id).Distinct().Count());
            var byId = jobs.ToDictionary(j => j.Id);
            Assert.All(all, line => Assert.True(byId[line.Id].Key == line.Key && byId[line.Id].Seq == line.Seq && line.Attempt == 1, $"log line {line}"));
            await AssertCompletedOnceInKeyOrderAsync(storage.Schema, jobs);
            passed = true;
        }
        finally
        {
            foreach (var child in children) await child.DisposeAsync();
            Cleanup(folder, passed);
        }
    }

    [Fact]
    public async Task Killing_one_of_three_hosts_loses_nothing_and_reruns_only_its_jobs_in_flight()
    {
        await using var storage = new PostgreSqlStorage(server);
        var folder = NewFolder();
        var clock = Stopwatch.StartNew();
        var children = new List<TestHostProcess>();
        var passed = false;
        try
        {
            children.AddRange(await Task.WhenAll(Enumerable.Range(0, 3).Select(n => TestHostProcess.StartAsync(Arguments(storage.Schema, folder, n, workMs: 20, runningDir: null)))));
            var jobs = await EnqueueAsync(storage.Schema, total: 4_000, keys: 100);
            output.WriteLine($"3 hosts ready and {jobs.Count} jobs enqueued at {clock.Elapsed.TotalSeconds:F1} s");

            // Kill host 0 with SIGKILL once a third of the work is done, while it holds leases.
            var victim = children[0];
            await Eventually.TrueAsync(() => Enumerable.Range(0, 3).Sum(n => LineCount(LogPath(folder, n))) >= jobs.Count / 3 || victim.HasExited,
                "a third of the jobs to run", TimeSpan.FromMinutes(2));
            Assert.False(victim.HasExited, "host 0 exited by itself: " + string.Join(Environment.NewLine, victim.Errors));
            await victim.KillAsync();
            var inFlight = await IdsAsync(storage.Schema, "status = 1 AND lease_owner = 'host0'");
            var notCompleted = await CountAsync(storage.Schema, "status <> 2");
            output.WriteLine($"killed host 0 at {clock.Elapsed.TotalSeconds:F1} s: its jobs in flight {inFlight.Count}, jobs not completed {notCompleted}");
            Assert.True(notCompleted > 0, "the kill came after every job had completed");
            Assert.NotEmpty(inFlight);

            // The two survivors take the killed host's jobs over once their leases expire (3 s), and finish the rest.
            await Eventually.TrueAsync(async () => await CountAsync(storage.Schema, "status = 2") == jobs.Count || children.Skip(1).Any(c => c.HasExited),
                "all jobs to complete on the two surviving hosts", TimeSpan.FromMinutes(3));
            output.WriteLine($"all completed at {clock.Elapsed.TotalSeconds:F1} s");
            foreach (var child in children.Skip(1)) Assert.Equal(0, await child.StopAsync());

            var all = Enumerable.Range(0, 3).SelectMany(n => ReadLog(LogPath(folder, n))).ToList();
            var byId = jobs.ToDictionary(j => j.Id);
            var runs = all.GroupBy(l => l.Id).ToDictionary(g => g.Key, g => g.Count());
            Assert.True(jobs.All(j => runs.ContainsKey(j.Id)), "a job's handler never ran");
            Assert.All(all, line => Assert.True(byId[line.Id].Key == line.Key && byId[line.Id].Seq == line.Seq, $"log line {line}"));

            // Re-runs (and re-claims) only for the jobs the killed host had in flight.
            var rerun = runs.Where(r => r.Value > 1).Select(r => r.Key).ToList();
            var reclaimed = await IdsAsync(storage.Schema, "attempts > 1");
            output.WriteLine($"re-run by handlers: {rerun.Count}; claimed more than once: {reclaimed.Count}");
            Assert.All(rerun, id => Assert.Contains(id, inFlight));
            Assert.All(reclaimed, id => Assert.Contains(id, inFlight));

            // Taken over after lease expiry: each of them has a LeaseExpired attempt by host 0, then one completed attempt by a survivor.
            var expired = await IdsAsync(storage.Schema, "id IN (SELECT job_id FROM \"{0}\".job_attempts WHERE outcome = 4 AND worker = 'host0')");
            Assert.Equal(inFlight.Order(), expired.Order());
            await AssertCompletedOnceInKeyOrderAsync(storage.Schema, jobs);
            passed = true;
        }
        finally
        {
            foreach (var child in children) await child.DisposeAsync();
            Cleanup(folder, passed);
        }
    }

    private string[] Arguments(string schema, string folder, int n, int workMs, string? runningDir)
    {
        var arguments = new List<string>
        {
            "--storage", "postgres", "--connection", server.ConnectionString, "--schema", schema, "--queue", Queue,
            "--log", LogPath(folder, n), "--worker", "host" + n.ToString(CultureInfo.InvariantCulture),
            "--concurrency", "8", "--work-ms", workMs.ToString(CultureInfo.InvariantCulture),
            "--lease-ms", "3000", "--heartbeat-ms", "500", "--reaper-ms", "500",
        };
        if (runningDir is not null) arguments.AddRange(["--running-dir", runningDir]);
        return arguments.ToArray();
    }

    private static string LogPath(string folder, int n) => Path.Combine(folder, $"host{n}.log");

    /// <summary>
    /// Every job completed, with exactly one completed attempt (the final attempt, kept in the job row, and no completed
    /// attempt among the earlier ones); per key, completion times follow enqueue order (the next job of a key can only be
    /// claimed after the previous one's completion committed, and all hosts share this machine's clock).
    /// </summary>
    private async Task AssertCompletedOnceInKeyOrderAsync(string schema, IReadOnlyList<EnqueuedJob> jobs)
    {
        Assert.Equal(jobs.Count, await CountAsync(schema, "status = 2 AND final_outcome = 0"));
        Assert.Equal(0, await CountAsync(schema, $"id IN (SELECT job_id FROM \"{schema}\".job_attempts WHERE outcome = 0)"));
        await using var connection = await server.OpenAsync();
        await using var command = new NpgsqlCommand($"SELECT id, finished_at FROM \"{schema}\".jobs", connection);
        var finishedAt = new Dictionary<long, DateTime>();
        await using (var reader = await command.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync()) finishedAt[reader.GetInt64(0)] = reader.GetDateTime(1);
        }

        foreach (var key in jobs.Where(j => j.Key is not null).GroupBy(j => j.Key))
        {
            var seqs = key.OrderBy(j => finishedAt[j.Id]).Select(j => j.Seq).ToList();
            Assert.True(seqs.SequenceEqual(seqs.Order()), $"key {key.Key} completed out of order: {string.Join(",", seqs)}");
        }
    }

    private async Task<IReadOnlyList<EnqueuedJob>> EnqueueAsync(string schema, int total, int keys)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddInboxReliability().UsePostgreSql(server.ConnectionString, o => o.Schema = schema);
        var provider = services.BuildServiceProvider();
        await using (provider)
        {
            await provider.GetRequiredService<IJobStore>().MigrateAsync();
            var queue = provider.GetRequiredService<IJobQueue>();
            var jobs = new List<EnqueuedJob>(total);
            for (var start = 0; start < total; start += 1000)
            {
                var chunk = Enumerable.Range(start, Math.Min(1000, total - start)).Select(i =>
                {
                    var n = i / 2;
                    var (key, seq) = i % 2 == 0 ? ((string?)null, n) : ("k" + (n % keys).ToString(CultureInfo.InvariantCulture), n / keys);
                    return (Request: new JobRequest(Queue, $"{{\"seq\":{seq}}}") { Key = key }, Key: key, Seq: seq);
                }).ToList();
                var results = await queue.EnqueueBatchAsync(chunk.Select(c => c.Request).ToList());
                jobs.AddRange(results.Select((r, i) => new EnqueuedJob(r.Id, chunk[i].Key, chunk[i].Seq)));
            }

            return jobs;
        }
    }

    private async Task<long> CountAsync(string schema, string where)
    {
        await using var connection = await server.OpenAsync();
        await using var command = new NpgsqlCommand($"SELECT count(*) FROM \"{schema}\".jobs WHERE {where}", connection);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    private async Task<HashSet<long>> IdsAsync(string schema, string where)
    {
        await using var connection = await server.OpenAsync();
        await using var command = new NpgsqlCommand($"SELECT id FROM \"{schema}\".jobs WHERE {string.Format(CultureInfo.InvariantCulture, where, schema)}", connection);
        var ids = new HashSet<long>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync()) ids.Add(reader.GetInt64(0));
        return ids;
    }

    private static string NewFolder()
    {
        var folder = Path.Combine(Path.GetTempPath(), "inbox-pg-process-tests", Guid.NewGuid().ToString("n"));
        Directory.CreateDirectory(folder);
        return folder;
    }

    private void Cleanup(string folder, bool passed)
    {
        if (!passed)
        {
            output.WriteLine($"kept for inspection: {folder}");
            return;
        }

        try
        {
            Directory.Delete(folder, recursive: true);
        }
        catch (IOException)
        {
            // Temp folder; the OS cleans it eventually.
        }
    }

    private static byte[] ReadBytes(string path)
    {
        if (!File.Exists(path)) return [];
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var memory = new MemoryStream();
        file.CopyTo(memory);
        return memory.ToArray();
    }

    private static int LineCount(string path) => ReadBytes(path).Count(b => b == (byte)'\n');

    private static List<LogLine> ReadLog(string path)
    {
        var text = System.Text.Encoding.UTF8.GetString(ReadBytes(path));
        return text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line =>
        {
            var parts = line.Split(' ');
            return new LogLine(long.Parse(parts[0], CultureInfo.InvariantCulture), int.Parse(parts[1], CultureInfo.InvariantCulture),
                parts[2] == "-" ? null : parts[2], int.Parse(parts[3], CultureInfo.InvariantCulture));
        }).ToList();
    }
}
