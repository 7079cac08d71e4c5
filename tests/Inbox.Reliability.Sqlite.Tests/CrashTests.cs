using System.Globalization;
using Inbox.Reliability.Conformance;
using Inbox.Reliability.Jobs;
using Inbox.Reliability.Storage;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace Inbox.Reliability.Sqlite.Tests;

/// <summary>
/// Crash test: a child process (tests/Inbox.Reliability.TestHost) runs 2,000 jobs, half of them keyed over 50 keys,
/// whose handler appends "jobId attempt key seq" to a durable log. It is killed with SIGKILL at three random points
/// and restarted each time. Real processes and real time: waits are on conditions, never fixed sleeps.
/// Set INBOX_CRASH_SEED to replay the kill points of a run (the seed is printed).
/// </summary>
[Collection(CrashTestsCollection.Name)]
public sealed class CrashTests(ITestOutputHelper output)
{
    private const string Queue = "crash";
    private const int Unkeyed = 1000;
    private const int Keys = 50;
    private const int PerKey = 20;
    private const int Total = Unkeyed + (Keys * PerKey);
    private const int Kills = 3;

    /// <summary>
    /// The kill thresholds are drawn from this range of log lines (10% to 80% of the jobs), one in each third, so the
    /// kills are spread and increasing.
    /// </summary>
    private const int FirstThreshold = 200;
    private const int LastThreshold = 1600;

    /// <summary>
    /// Simulated work per job in the child (its handler's Task.Delay). It paces the child at roughly 250 jobs a second,
    /// so the run lasts several seconds and a test process descheduled for a while (busy CI machine) still kills the
    /// child well before every job is done. With 2 ms the child ran about 1,200 jobs a second, and a 1-second stall of
    /// the test process, seen on a loaded 2-core machine, let it run up to 800 lines past a threshold.
    /// </summary>
    private const int WorkMs = 30;

    /// <summary>
    /// The child's lease: short so a restarted child takes over the jobs a killed one left processing within seconds
    /// (its startup reaper only returns expired leases), with heartbeats every 500 ms leaving 2.5 s of slack before a
    /// starved but living child would lose a lease.
    /// </summary>
    private const int LeaseMs = 3000;

    private static readonly TimeSpan RunTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan CompletionTimeout = TimeSpan.FromSeconds(45);

    private sealed record EnqueuedJob(long Id, string? Key, int Seq);

    private sealed record LogLine(long Id, int Attempt, string? Key, int Seq);

    [Fact]
    public async Task Kill_9_three_times_loses_no_job_reruns_only_jobs_in_flight_and_keeps_per_key_order()
    {
        var seed = Environment.GetEnvironmentVariable("INBOX_CRASH_SEED") is { Length: > 0 } fixedSeed
            ? int.Parse(fixedSeed, CultureInfo.InvariantCulture)
            : Random.Shared.Next();
        var random = new Random(seed);
        var segment = (LastThreshold - FirstThreshold) / Kills;
        var thresholds = Enumerable.Range(0, Kills).Select(i => random.Next(FirstThreshold + (i * segment), FirstThreshold + ((i + 1) * segment))).ToArray();
        output.WriteLine($"seed {seed} (INBOX_CRASH_SEED={seed} replays it); kill thresholds (log lines): {string.Join(", ", thresholds)}");

        var folder = Path.Combine(Path.GetTempPath(), "inbox-crash-tests", Guid.NewGuid().ToString("n"));
        Directory.CreateDirectory(folder);
        var database = Path.Combine(folder, "inbox.db");
        var logPath = Path.Combine(folder, "handler.log");
        var passed = false;
        var started = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            var jobs = await EnqueueAsync($"Data Source={database}");
            Assert.Equal(Total, jobs.Count);
            output.WriteLine($"enqueued {jobs.Count} jobs in {started.Elapsed.TotalSeconds:F1} s");

            string[] childArguments =
            [
                "--storage", "sqlite", "--connection", $"Data Source={database}", "--log", logPath, "--queue", Queue,
                "--concurrency", "8", "--work-ms", WorkMs.ToString(CultureInfo.InvariantCulture),
                "--lease-ms", LeaseMs.ToString(CultureInfo.InvariantCulture), "--heartbeat-ms", "500", "--reaper-ms", "500",
            ];

            var inFlightAtKills = new HashSet<long>();
            TestHostProcess? child = null;
            try
            {
                child = await TestHostProcess.StartAsync(childArguments);
                output.WriteLine($"child {child.Id} ready at {started.Elapsed.TotalSeconds:F2} s, log lines {LogLineCount(logPath)}");
                for (var kill = 0; kill < Kills; kill++)
                {
                    var threshold = thresholds[kill];
                    var running = child;
                    await Eventually.TrueAsync(() => LogLineCount(logPath) >= threshold || running.HasExited, $"the handler log to reach {threshold} lines", RunTimeout);
                    Assert.False(running.HasExited, $"The test host exited by itself (code {(running.HasExited ? running.ExitCode : 0)}) before kill {kill + 1}: {string.Join(Environment.NewLine, running.Errors)}");

                    await child.KillAsync();
                    var (inFlight, notCompleted) = ReadStateAfterKill(database);
                    output.WriteLine(
                        $"kill {kill + 1} (pid {child.Id}) at {started.Elapsed.TotalSeconds:F1} s: threshold {threshold}, log lines {LogLineCount(logPath)}, " +
                        $"jobs in flight (processing) {inFlight.Count}, jobs not completed {notCompleted}");
                    child.WriteErrors(output.WriteLine);
                    Assert.True(notCompleted > 0, $"Kill {kill + 1} came after every job had completed: it did not hit a running queue.");
                    inFlightAtKills.UnionWith(inFlight);

                    await child.DisposeAsync();
                    child = null;
                    child = await TestHostProcess.StartAsync(childArguments);
                    output.WriteLine($"child {child.Id} ready at {started.Elapsed.TotalSeconds:F2} s, log lines {LogLineCount(logPath)}");
                }

                await Eventually.TrueAsync(() => CompletedCount(database) == Total, $"all {Total} jobs to complete", CompletionTimeout);
                var exitCode = await child.StopAsync();
                child.WriteErrors(output.WriteLine);
                Assert.Equal(0, exitCode);
            }
            finally
            {
                if (child is not null) await child.DisposeAsync();
            }

            output.WriteLine($"all jobs completed and the child stopped at {started.Elapsed.TotalSeconds:F1} s");
            AssertOutcome(jobs, database, logPath, inFlightAtKills);
            passed = true;
        }
        finally
        {
            if (passed) TryDelete(folder);
            else output.WriteLine($"kept for inspection: {folder}");
        }
    }

    private void AssertOutcome(IReadOnlyList<EnqueuedJob> jobs, string database, string logPath, HashSet<long> inFlightAtKills)
    {
        var enqueued = jobs.ToDictionary(j => j.Id);

        // Every job completed, exactly once.
        var stored = ReadJobs(database);
        Assert.Equal(Total, stored.Count);
        Assert.Equal(enqueued.Keys.Order(), stored.Keys.Order());
        var notCompleted = stored.Where(j => j.Value.Status != (int)JobStatus.Completed).Select(j => $"{j.Key}:{(JobStatus)j.Value.Status}").ToList();
        Assert.True(notCompleted.Count == 0, $"Jobs not completed: {string.Join(", ", notCompleted)}");
        var completions = CompletedAttemptsPerJob(database);
        var notOnce = enqueued.Keys.Where(id => completions.GetValueOrDefault(id) != 1).Select(id => $"{id}:{completions.GetValueOrDefault(id)}").ToList();
        Assert.True(notOnce.Count == 0, $"Jobs without exactly one completed attempt (id:count): {string.Join(", ", notOnce)}");

        // No job lost: every job's handler ran and logged; the log holds nothing else.
        var log = ReadLog(logPath);
        var runs = log.GroupBy(l => l.Id).ToDictionary(g => g.Key, g => g.ToList());
        var missing = enqueued.Keys.Where(id => !runs.ContainsKey(id)).ToList();
        Assert.True(missing.Count == 0, $"Jobs the handler never ran: {string.Join(", ", missing)}");
        var unknown = runs.Keys.Where(id => !enqueued.ContainsKey(id)).ToList();
        Assert.True(unknown.Count == 0, $"The log holds jobs never enqueued: {string.Join(", ", unknown)}");
        foreach (var line in log)
        {
            var job = enqueued[line.Id];
            Assert.True(job.Key == line.Key && job.Seq == line.Seq, $"Log line {line} does not match job {job}.");
        }

        // A handler ran twice (or its job was claimed again) only for jobs in flight at a kill.
        var reruns = runs.Where(r => r.Value.Count > 1).Select(r => r.Key).Order().ToList();
        var reclaimed = stored.Where(j => j.Value.Attempts > 1).Select(j => j.Key).Order().ToList();
        output.WriteLine($"jobs in flight at the kills: {inFlightAtKills.Count}; handler re-runs: {reruns.Count} (extra runs {log.Count - Total}); jobs claimed more than once: {reclaimed.Count}");
        var rerunOutsideKills = reruns.Where(id => !inFlightAtKills.Contains(id)).Select(id => $"{id} (attempts {string.Join("/", runs[id].Select(r => r.Attempt))})").ToList();
        Assert.True(rerunOutsideKills.Count == 0, $"Handlers ran more than once for jobs not in flight at any kill: {string.Join(", ", rerunOutsideKills)}");
        var reclaimedOutsideKills = reclaimed.Where(id => !inFlightAtKills.Contains(id)).Select(id => $"{id} (attempts {stored[id].Attempts})").ToList();
        Assert.True(reclaimedOutsideKills.Count == 0, $"Jobs claimed more than once though not in flight at any kill: {string.Join(", ", reclaimedOutsideKills)}");

        // Each job's runs carry increasing attempt numbers, the last being the attempt that completed it.
        foreach (var (id, jobRuns) in runs)
        {
            var attempts = jobRuns.Select(r => r.Attempt).ToList();
            Assert.True(attempts.Zip(attempts.Skip(1)).All(p => p.First < p.Second) && attempts[^1] == stored[id].Attempts,
                $"Job {id}: logged attempts {string.Join(",", attempts)}, stored attempts {stored[id].Attempts}.");
        }

        // Per-key order: each key's sequence numbers, consecutive repeats (re-runs) collapsed, are 0..19 in order.
        var expected = Enumerable.Range(0, PerKey).ToList();
        for (var k = 0; k < Keys; k++)
        {
            var key = "k" + k.ToString(CultureInfo.InvariantCulture);
            var seqs = log.Where(l => l.Key == key).Select(l => l.Seq).ToList();
            var collapsed = seqs.Where((s, i) => i == 0 || s != seqs[i - 1]).ToList();
            Assert.True(expected.SequenceEqual(collapsed), $"Key {key} ran out of order: {string.Join(",", seqs)}");
        }
    }

    /// <summary>Enqueues the jobs through the public API: unkeyed and keyed interleaved; keyed ones carry their per-key sequence number.</summary>
    private static async Task<IReadOnlyList<EnqueuedJob>> EnqueueAsync(string connectionString)
    {
        var requests = new List<(JobRequest Request, string? Key, int Seq)>(Total);
        for (var i = 0; i < Total; i++)
        {
            var n = i / 2;
            var (key, seq) = i % 2 == 0 ? ((string?)null, n) : ("k" + (n % Keys).ToString(CultureInfo.InvariantCulture), n / Keys);
            var payload = "{\"seq\":" + seq.ToString(CultureInfo.InvariantCulture) + "}";
            requests.Add((new JobRequest(Queue, payload) { Key = key }, key, seq));
        }

        var services = new ServiceCollection();
        services.AddLogging();
        services.AddInboxReliability().UseSqlite(connectionString);
        var provider = services.BuildServiceProvider();
        await using (provider)
        {
            await provider.GetRequiredService<IJobStore>().MigrateAsync();
            var results = await provider.GetRequiredService<IJobQueue>().EnqueueBatchAsync(requests.Select(r => r.Request).ToList());
            return results.Select((r, i) => new EnqueuedJob(r.Id, requests[i].Key, requests[i].Seq)).ToList();
        }
    }

    private static SqliteConnection Open(string database)
    {
        // Read-only queries on a plain connection, not pooled so nothing stays open on the file between checks.
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = database, Pooling = false, DefaultTimeout = 30 }.ToString());
        connection.Open();
        return connection;
    }

    private static long Scalar(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return (long)command.ExecuteScalar()!;
    }

    /// <summary>Right after a kill: the jobs it left processing (in flight), and how many were not completed.</summary>
    private static (HashSet<long> InFlight, long NotCompleted) ReadStateAfterKill(string database)
    {
        using var connection = Open(database);
        var inFlight = new HashSet<long>();
        using (var command = connection.CreateCommand())
        {
            command.CommandText = "SELECT id FROM inbox_jobs WHERE status = 1";
            using var reader = command.ExecuteReader();
            while (reader.Read()) inFlight.Add(reader.GetInt64(0));
        }

        return (inFlight, Scalar(connection, "SELECT COUNT(*) FROM inbox_jobs WHERE status <> 2"));
    }

    private static long CompletedCount(string database)
    {
        using var connection = Open(database);
        return Scalar(connection, "SELECT COUNT(*) FROM inbox_jobs WHERE status = 2");
    }

    private static Dictionary<long, (int Status, int Attempts)> ReadJobs(string database)
    {
        using var connection = Open(database);
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT id, status, attempts FROM inbox_jobs";
        using var reader = command.ExecuteReader();
        var jobs = new Dictionary<long, (int, int)>();
        while (reader.Read()) jobs[reader.GetInt64(0)] = (reader.GetInt32(1), reader.GetInt32(2));
        return jobs;
    }

    private static Dictionary<long, long> CompletedAttemptsPerJob(string database)
    {
        using var connection = Open(database);
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT job_id, COUNT(*) FROM inbox_job_attempts WHERE outcome = $completed GROUP BY job_id";
        command.Parameters.AddWithValue("$completed", (int)JobAttemptOutcome.Completed);
        using var reader = command.ExecuteReader();
        var counts = new Dictionary<long, long>();
        while (reader.Read()) counts[reader.GetInt64(0)] = reader.GetInt64(1);
        return counts;
    }

    private static byte[] ReadLogBytes(string logPath)
    {
        if (!File.Exists(logPath)) return [];
        using var file = new FileStream(logPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var memory = new MemoryStream();
        file.CopyTo(memory);
        return memory.ToArray();
    }

    /// <summary>Complete lines only (a line is complete once its newline is written).</summary>
    private static int LogLineCount(string logPath) => ReadLogBytes(logPath).Count(b => b == (byte)'\n');

    private static List<LogLine> ReadLog(string logPath)
    {
        var text = System.Text.Encoding.UTF8.GetString(ReadLogBytes(logPath));
        Assert.True(text.Length == 0 || text[^1] == '\n', "The handler log ends with a partial line.");
        var lines = new List<LogLine>();
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = line.Split(' ');
            Assert.True(parts.Length == 4, $"Malformed log line: \"{line}\"");
            lines.Add(new LogLine(
                long.Parse(parts[0], CultureInfo.InvariantCulture),
                int.Parse(parts[1], CultureInfo.InvariantCulture),
                parts[2] == "-" ? null : parts[2],
                int.Parse(parts[3], CultureInfo.InvariantCulture)));
        }

        return lines;
    }


    private static void TryDelete(string folder)
    {
        try
        {
            Directory.Delete(folder, recursive: true);
        }
        catch (IOException)
        {
            // Temp folder; the OS cleans it eventually.
        }
    }
}

/// <summary>The crash tests run alone, after the parallel tests: they time real processes, and CPU contention from other tests only makes them slower.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class CrashTestsCollection
{
    public const string Name = "Crash tests";
}
