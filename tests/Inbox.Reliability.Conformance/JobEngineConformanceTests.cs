using System.Collections.Concurrent;
using Inbox.Reliability.Jobs;
using Inbox.Reliability.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Xunit;

namespace Inbox.Reliability.Conformance;

/// <summary>The job engine end to end (hosted workers, handlers, leases, shutdown) on the storage under test.</summary>
public abstract class JobEngineConformanceTests : IAsyncLifetime
{
    private readonly List<EngineHarness> _hosts = new();
    private IStorageUnderTest _storage = null!;

    protected abstract IStorageUnderTest CreateStorage();

    public Task InitializeAsync()
    {
        _storage = CreateStorage();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        foreach (var host in _hosts) await host.DisposeAsync();
        await _storage.DisposeAsync();
    }

    private async Task<EngineHarness> Start(Func<JobContext, CancellationToken, Task> handler, Action<JobHandlerOptions>? configure = null, Action<InboxReliabilityOptions>? global = null)
    {
        var host = await EngineHarness.StartAsync(_storage, handler, configure, global);
        _hosts.Add(host);
        return host;
    }

    private static Task Forever(CancellationToken token) => new TaskCompletionSource().Task.WaitAsync(token);

    [Fact]
    public async Task An_enqueue_only_host_claims_nothing_and_a_processing_host_runs_its_jobs_once()
    {
        var runs = new ConcurrentBag<(string Payload, int Attempt)>();
        Task Record(JobContext job, CancellationToken token)
        {
            runs.Add((job.Payload, job.Attempt));
            return Task.CompletedTask;
        }

        // The web tier: ProcessJobs = false. Its queue workers end at startup without claiming (so the jobs it enqueues
        // stay pending for as long as it runs), and it does not listen for wake-ups.
        var web = await Start(Record, global: o => { o.ProcessJobs = false; o.WorkerName = "web"; });
        var workers = web.Host.Services.GetServices<IHostedService>().OfType<BackgroundService>().Where(s => s.GetType().Name is "QueueWorker" or "WakeupListener").ToList();
        Assert.Equal(2, workers.Count);
        await Eventually.TrueAsync(() => workers.All(w => w.ExecuteTask is { IsCompleted: true }), "the enqueue-only host's workers to end");
        var ids = new List<long>();
        for (var i = 0; i < 12; i++) ids.Add((await web.Enqueue($"job-{i}", key: i % 3 == 0 ? "k" : null)).Id);
        foreach (var id in ids) Assert.Equal((JobStatus.Pending, 0), ((await web.Job(id)).Status, (await web.Job(id)).Attempts));
        Assert.Empty(runs);
        await web.StopAsync();

        // A processing host on the same storage runs each of them once, on its first attempt.
        var worker = await Start(Record, global: o => o.WorkerName = "worker");
        foreach (var id in ids) await worker.WaitForStatus(id, JobStatus.Completed);
        Assert.Equal(Enumerable.Range(0, 12).Select(i => ($"job-{i}", 1)).OrderBy(r => r.Item1), runs.OrderBy(r => r.Payload));
        foreach (var id in ids) Assert.Equal("worker", Assert.Single(await worker.Queue.GetAttemptsAsync(id)).Worker);
    }

    [Fact]
    public async Task The_handler_gets_the_job_and_completing_completes_it()
    {
        var seen = new TaskCompletionSource<JobContext>(TaskCreationOptions.RunContinuationsAsynchronously);
        var host = await Start((job, _) => { seen.TrySetResult(job); return Task.CompletedTask; });
        var id = (await host.Enqueue("{\"text\":\"hi\"}", key: "chat-1", dedupe: "msg-1")).Id;

        var job = await Eventually.Within(seen.Task, "the handler to run");
        Assert.Equal(id, job.Id);
        Assert.Equal(EngineHarness.QueueName, job.Queue);
        Assert.Equal("{\"text\":\"hi\"}", job.Payload);
        Assert.Equal("hi", job.GetPayload<Dictionary<string, string>>()!["text"]);
        Assert.Equal("chat-1", job.Key);
        Assert.Equal(1, job.Attempt);
        Assert.Equal("msg-1", job.IdempotencyKey);
        await host.WaitForStatus(id, JobStatus.Completed);
        var attempt = Assert.Single(await host.Queue.GetAttemptsAsync(id));
        Assert.Equal((JobAttemptOutcome.Completed, "test-worker"), (attempt.Outcome, attempt.Worker));
    }

    [Fact]
    public async Task The_idempotency_key_is_stable_across_attempts()
    {
        var keys = new ConcurrentQueue<string>();
        var host = await Start((job, _) =>
        {
            keys.Enqueue(job.IdempotencyKey);
            return job.Attempt < 3 ? throw new InvalidOperationException("transient") : Task.CompletedTask;
        }, o => { o.Backoff.Base = TimeSpan.FromSeconds(1); o.Backoff.Jitter = 0; });
        var id = (await host.Enqueue()).Id;
        await host.WaitForStatus(id, JobStatus.Completed, step: TimeSpan.FromMilliseconds(500));
        Assert.Equal(Enumerable.Repeat($"job-{id}", 3), keys);
    }

    [Fact]
    public async Task Failures_retry_with_exponential_backoff_then_complete()
    {
        var failuresAt = new ConcurrentQueue<DateTimeOffset>();
        EngineHarness host = null!;
        host = await Start((job, _) =>
        {
            if (job.Attempt >= 3) return Task.CompletedTask;
            failuresAt.Enqueue(host.Time.GetUtcNow());
            throw new HttpRequestException("provider returned 503");
        }, o =>
        {
            o.Backoff.Base = TimeSpan.FromSeconds(10);
            o.Backoff.Factor = 3;
            o.Backoff.Jitter = 0;
        });
        var id = (await host.Enqueue()).Id;

        await Eventually.TrueAsync(async () => (await host.Job(id)) is { Status: JobStatus.Pending, Attempts: 1 }, "the first retry to be scheduled");
        var afterFirst = await host.Job(id);
        Assert.Equal(failuresAt.Single() + TimeSpan.FromSeconds(10), afterFirst.RunAt);
        Assert.Contains("provider returned 503", afterFirst.LastError, StringComparison.Ordinal);

        // Move the clock only while the job waits for its retry, never while an attempt runs: the retry time is computed
        // from the clock when the attempt fails.
        var current = afterFirst;
        await Eventually.TrueAsync(async () => (current = await host.Job(id)) is { Status: JobStatus.Pending, Attempts: 2 }, "the second retry",
            between: () => { if (current is { Status: JobStatus.Pending, Attempts: 1 }) host.Time.Advance(TimeSpan.FromSeconds(1)); });
        var afterSecond = await host.Job(id);
        Assert.Equal(failuresAt.Last() + TimeSpan.FromSeconds(30), afterSecond.RunAt);

        await host.WaitForStatus(id, JobStatus.Completed, step: TimeSpan.FromSeconds(1));
        var attempts = await host.Queue.GetAttemptsAsync(id);
        Assert.Equal([JobAttemptOutcome.Retried, JobAttemptOutcome.Retried, JobAttemptOutcome.Completed], attempts.Select(a => a.Outcome));
    }

    [Fact]
    public async Task Fatal_errors_fail_at_once_and_the_worker_goes_on()
    {
        var host = await Start((job, _) => job.Payload switch
        {
            "\"fatal\"" => throw new FatalJobException("unknown message type"),
            "\"configured\"" => throw new UriFormatException("corrupt"),
            _ => Task.CompletedTask,
        }, o => o.FatalExceptions.Add(typeof(FormatException))); // subclasses count too
        var fatal = (await host.Enqueue("\"fatal\"")).Id;
        var configured = (await host.Enqueue("\"configured\"")).Id;
        var good = (await host.Enqueue("\"ok\"")).Id;

        await host.WaitForStatus(fatal, JobStatus.Failed);
        await host.WaitForStatus(configured, JobStatus.Failed);
        await host.WaitForStatus(good, JobStatus.Completed);
        var failed = await host.Job(fatal);
        Assert.Equal(1, failed.Attempts);
        Assert.Contains("unknown message type", failed.LastError, StringComparison.Ordinal);
        Assert.Equal(1, (await host.Job(configured)).Attempts);
    }

    [Fact]
    public async Task After_max_attempts_the_job_is_dead_lettered_with_its_last_error()
    {
        var host = await Start((job, _) => throw new InvalidOperationException($"attempt {job.Attempt} failed"), o =>
        {
            o.MaxAttempts = 3;
            o.Backoff.Base = TimeSpan.FromSeconds(1);
            o.Backoff.Jitter = 0;
        });
        var id = (await host.Enqueue()).Id;
        await host.WaitForStatus(id, JobStatus.Failed, step: TimeSpan.FromSeconds(1));
        var job = await host.Job(id);
        Assert.Equal(3, job.Attempts);
        Assert.Equal(3, job.MaxAttempts);
        Assert.Contains("attempt 3 failed", job.LastError, StringComparison.Ordinal);
        Assert.Equal([JobAttemptOutcome.Retried, JobAttemptOutcome.Retried, JobAttemptOutcome.Failed], (await host.Queue.GetAttemptsAsync(id)).Select(a => a.Outcome));

        // Requeued by an operator, it runs again with fresh attempts.
        Assert.True(await host.Queue.RequeueAsync(id));
        await Eventually.TrueAsync(async () => (await host.Queue.GetAttemptsAsync(id)).Count >= 4, "the requeued job to run");
    }

    [Fact]
    public async Task Jobs_of_a_key_run_one_at_a_time_in_enqueue_order_while_unkeyed_jobs_run_in_parallel()
    {
        var running = new ConcurrentDictionary<string, int>();
        var order = new ConcurrentDictionary<string, ConcurrentQueue<int>>();
        var overlaps = 0;
        var maxUnkeyed = 0;
        var unkeyedNow = 0;
        var host = await Start(async (job, _) =>
        {
            var payload = job.GetPayload<int[]>()!;
            if (job.Key is null)
            {
                var now = Interlocked.Increment(ref unkeyedNow);
                InterlockedMax(ref maxUnkeyed, now);
                await Task.Yield();
                Interlocked.Decrement(ref unkeyedNow);
                return;
            }

            if (running.AddOrUpdate(job.Key, 1, (_, n) => n + 1) > 1) Interlocked.Increment(ref overlaps);
            order.GetOrAdd(job.Key, _ => new ConcurrentQueue<int>()).Enqueue(payload[1]);
            await Task.Yield();
            running.AddOrUpdate(job.Key, 0, (_, n) => n - 1);
            if (payload[1] % 7 == 3 && job.Attempt == 1) throw new InvalidOperationException("transient"); // retries hold the key
        }, o =>
        {
            o.Concurrency = 8;
            o.BatchSize = 16;
            o.Backoff.Base = TimeSpan.FromMilliseconds(200);
            o.Backoff.Jitter = 0;
        });

        var requests = new List<JobRequest>();
        for (var i = 0; i < 240; i++) requests.Add(new JobRequest(EngineHarness.QueueName, $"[{i % 6},{i / 6}]") { Key = "chat-" + (i % 6) });
        for (var i = 0; i < 60; i++) requests.Add(new JobRequest(EngineHarness.QueueName, $"[-1,{i}]"));
        var ids = (await host.Queue.EnqueueBatchAsync(requests)).Select(r => r.Id).ToList();

        await Eventually.TrueAsync(async () => (await host.Queue.GetStatsAsync()).Single().Completed == 300, "all 300 jobs to complete",
            between: () => host.Time.Advance(TimeSpan.FromMilliseconds(100)));
        Assert.Equal(0, overlaps);
        foreach (var (key, seen) in order)
        {
            // A job that failed once shows twice, consecutively: the key waited for its retry.
            var distinct = seen.Aggregate(new List<int>(), (list, n) => { if (list.Count == 0 || list[^1] != n) list.Add(n); return list; });
            Assert.Equal(Enumerable.Range(0, 40), distinct);
        }

        Assert.True(maxUnkeyed > 1, $"unkeyed jobs ran one at a time (max {maxUnkeyed})");
    }

    [Fact]
    public async Task With_remove_on_complete_completed_jobs_are_deleted_in_key_order_and_failed_ones_are_kept()
    {
        var order = new ConcurrentDictionary<string, ConcurrentQueue<int>>();
        var runs = 0;
        var host = await Start((job, _) =>
        {
            Interlocked.Increment(ref runs);
            var n = job.GetPayload<int>();
            if (n < 0) throw new FatalJobException("bad payload");
            if (job.Key is not null) order.GetOrAdd(job.Key, _ => new ConcurrentQueue<int>()).Enqueue(n);
            return Task.CompletedTask;
        }, o => o.RemoveOnComplete = true);

        var requests = Enumerable.Range(0, 60).Select(i => new JobRequest(EngineHarness.QueueName, i.ToString(System.Globalization.CultureInfo.InvariantCulture)) { Key = i % 2 == 0 ? "chat-" + (i % 3) : null }).ToList();
        requests.Add(new JobRequest(EngineHarness.QueueName, "-1") { Key = "chat-0" });
        requests.Add(new JobRequest(EngineHarness.QueueName, "60") { Key = "chat-0" });
        var ids = (await host.Queue.EnqueueBatchAsync(requests)).Select(r => r.Id).ToList();

        await Eventually.TrueAsync(async () => (await host.Queue.GetStatsAsync()).Single() is { Pending: 0, Processing: 0, Failed: 1 }, "every job to finish");
        Assert.Equal(62, runs);
        var stats = (await host.Queue.GetStatsAsync()).Single();
        Assert.Equal(0, stats.Completed);
        var failed = Assert.Single((await host.Queue.ListAsync(new JobQuery { Queue = EngineHarness.QueueName })).Jobs);
        Assert.Equal((ids[60], JobStatus.Failed), (failed.Id, failed.Status));
        foreach (var id in ids.Where(id => id != ids[60])) Assert.Null(await host.Queue.GetAsync(id));
        foreach (var (key, seen) in order)
        {
            var expected = Enumerable.Range(0, 60).Where(i => i % 2 == 0 && "chat-" + (i % 3) == key).ToList();
            if (key == "chat-0") expected.Add(60); // after the failed job, in order
            Assert.Equal(expected, seen);
        }
    }

    [Fact]
    public async Task Unkeyed_jobs_run_concurrently_up_to_the_configured_concurrency()
    {
        var started = 0;
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var host = await Start(async (_, ct) =>
        {
            Interlocked.Increment(ref started);
            await gate.Task.WaitAsync(ct);
        }, o => { o.Concurrency = 4; o.Prefetch = 0; });
        var ids = new List<long>();
        for (var i = 0; i < 6; i++) ids.Add((await host.Enqueue()).Id);

        await Eventually.TrueAsync(() => Volatile.Read(ref started) == 4, "four handlers to run at once");
        Assert.Equal(4, (await host.Queue.GetStatsAsync()).Single().Processing);
        gate.SetResult();
        foreach (var id in ids) await host.WaitForStatus(id, JobStatus.Completed);
        Assert.Equal(6, started);
    }

    [Fact]
    public async Task Canceling_a_running_job_signals_its_token_and_ends_it_canceled()
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var host = await Start(async (_, ct) =>
        {
            started.TrySetResult();
            await Forever(ct);
        });
        var id = (await host.Enqueue(key: "k")).Id;
        var next = (await host.Enqueue(key: "k")).Id;
        await Eventually.Within(started.Task.ContinueWith(_ => true), "the handler to start");

        Assert.Equal(CancelJobResult.CancellationRequested, await host.Queue.CancelAsync(id));
        await host.WaitForStatus(id, JobStatus.Canceled);
        Assert.Equal(JobAttemptOutcome.Canceled, Assert.Single(await host.Queue.GetAttemptsAsync(id)).Outcome);
        await host.WaitForStatus(next, JobStatus.Processing); // the key moves on
        Assert.Equal(CancelJobResult.CancellationRequested, await host.Queue.CancelAsync(next));
        await host.WaitForStatus(next, JobStatus.Canceled);
    }

    [Fact]
    public async Task Heartbeats_keep_the_lease_of_a_long_handler()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var host = await Start((_, ct) => release.Task.WaitAsync(ct), o =>
        {
            o.LeaseDuration = TimeSpan.FromSeconds(3);
            o.HeartbeatInterval = TimeSpan.FromSeconds(1);
            o.Timeout = Timeout.InfiniteTimeSpan;
        }, g => g.LeaseReaperInterval = TimeSpan.FromSeconds(1));
        var id = (await host.Enqueue()).Id;
        await host.WaitForStatus(id, JobStatus.Processing);

        // Twenty seconds pass, far past the 3-second lease renewed every second. The clock moves in small steps,
        // and only while the lease has more than 1.5 s left, so a renewal that is slow in real time is waited for.
        var until = host.Time.GetUtcNow() + TimeSpan.FromSeconds(20);
        var job = await host.Job(id);
        await Eventually.TrueAsync(async () =>
        {
            job = await host.Job(id);
            Assert.Equal((JobStatus.Processing, 1), (job.Status, job.Attempts));
            return host.Time.GetUtcNow() >= until;
        }, "20 seconds of heartbeats", between: () =>
        {
            if (job.LeaseExpiresAt - host.Time.GetUtcNow() > TimeSpan.FromSeconds(1.5)) host.Time.Advance(TimeSpan.FromMilliseconds(100));
        });

        Assert.Equal((JobStatus.Processing, 1), (job.Status, job.Attempts));
        release.SetResult();
        await host.WaitForStatus(id, JobStatus.Completed);
        Assert.Single(await host.Queue.GetAttemptsAsync(id));
    }

    [Fact]
    public async Task A_hung_handler_times_out_is_abandoned_and_the_worker_goes_on()
    {
        var host = await Start((job, _) => job.Payload == "\"hang\"" ? new TaskCompletionSource().Task : Task.CompletedTask, o =>
        {
            o.Concurrency = 1;
            o.Prefetch = 0; // the hung job holds the only slot; the next is claimed once it is freed
            o.Timeout = TimeSpan.FromSeconds(5);
            o.Backoff.Base = TimeSpan.FromHours(1);
            o.LeaseDuration = TimeSpan.FromHours(1); // the clock races ahead below: keep the lease out of the picture
        });
        var hung = (await host.Enqueue("\"hang\"")).Id;
        var after = (await host.Enqueue("\"ok\"")).Id;
        await host.WaitForStatus(hung, JobStatus.Processing);

        // Timeout (5 s), then the cancellation grace (5 s): the single slot is freed for the next job.
        await host.WaitForStatus(after, JobStatus.Completed, step: TimeSpan.FromSeconds(1));
        await host.WaitForStatus(hung, JobStatus.Pending, step: TimeSpan.FromSeconds(1)); // written after its slot was freed
        var job = await host.Job(hung);
        Assert.Equal(JobStatus.Pending, job.Status);
        Assert.Contains("timed out", job.LastError, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(JobAttemptOutcome.Retried, Assert.Single(await host.Queue.GetAttemptsAsync(hung)).Outcome);
    }

    [Fact]
    public async Task A_handler_that_honours_its_token_after_a_timeout_is_retried()
    {
        var host = await Start((job, ct) => job.Attempt == 1 ? Forever(ct) : Task.CompletedTask, o =>
        {
            o.Timeout = TimeSpan.FromSeconds(5);
            o.Backoff.Base = TimeSpan.FromSeconds(1);
            o.Backoff.Jitter = 0;
        });
        var id = (await host.Enqueue()).Id;
        await host.WaitForStatus(id, JobStatus.Completed, step: TimeSpan.FromSeconds(1));
        Assert.Equal([JobAttemptOutcome.Retried, JobAttemptOutcome.Completed], (await host.Queue.GetAttemptsAsync(id)).Select(a => a.Outcome));
    }

    [Fact]
    public async Task Shutdown_lets_running_handlers_finish_within_the_grace_period()
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var finish = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var host = await Start(async (_, _) =>
        {
            started.TrySetResult();
            await finish.Task;
        }, global: g => g.ShutdownGracePeriod = TimeSpan.FromSeconds(30));
        var id = (await host.Enqueue()).Id;
        await Eventually.Within(started.Task.ContinueWith(_ => true), "the handler to start");

        var stop = host.Host.StopAsync();
        Assert.False(stop.IsCompleted);
        finish.SetResult();
        await Eventually.Within(stop.ContinueWith(_ => true), "the host to stop");
        Assert.Equal(JobStatus.Completed, (await host.Job(id)).Status);
        Assert.Equal(JobStatus.Completed, (await host.Store.GetJobAsync(id))!.Status);
    }

    [Fact]
    public async Task Shutdown_past_the_grace_period_releases_running_jobs_without_counting_the_attempt()
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var harness = EngineHarness.Build(_storage, async (_, ct) =>
        {
            started.TrySetResult();
            await Forever(ct);
        }, o => o.LeaseDuration = TimeSpan.FromHours(1), // the clock races through the grace period below
           global: g => g.ShutdownGracePeriod = TimeSpan.FromSeconds(10));
        await harness.StartAsync();
        var id = (await harness.Enqueue()).Id;
        await Eventually.Within(started.Task.ContinueWith(_ => true), "the handler to start");

        await harness.StopAsync(step: TimeSpan.FromSeconds(1));
        var store = harness.Store;
        var job = (await store.GetJobAsync(id))!;
        Assert.Equal((JobStatus.Pending, 0), (job.Status, job.Attempts));
        Assert.Empty(await store.GetAttemptsAsync(id));
        harness.Host.Dispose();
    }

    [Fact]
    public async Task Startup_returns_expired_leases_of_a_previous_run_and_runs_them()
    {
        var runs = new ConcurrentQueue<int>();
        var harness = EngineHarness.Build(_storage, (job, _) => { runs.Enqueue(job.Attempt); return Task.CompletedTask; });
        _hosts.Add(harness);
        await harness.Store.MigrateAsync();
        var id = (await harness.Enqueue()).Id;
        var claimed = Assert.Single(await harness.Store.ClaimAsync(EngineHarness.QueueName, 10, "crashed-worker", TimeSpan.FromSeconds(30)));
        harness.Time.Advance(TimeSpan.FromSeconds(31)); // the previous process died holding the lease

        await harness.StartAsync();
        await harness.WaitForStatus(id, JobStatus.Completed);
        Assert.Equal([2], runs);
        Assert.False(await harness.Store.FinishAsync(claimed.Lease, JobOutcome.Completed));
        Assert.Equal([JobAttemptOutcome.LeaseExpired, JobAttemptOutcome.Completed], (await harness.Queue.GetAttemptsAsync(id)).Select(a => a.Outcome));
    }

    [Fact]
    public async Task An_enqueue_in_this_process_wakes_an_idle_worker_without_waiting_for_a_poll()
    {
        var host = await Start((_, _) => Task.CompletedTask, o =>
        {
            o.MinPollInterval = TimeSpan.FromHours(1);
            o.MaxPollInterval = TimeSpan.FromHours(1);
        });
        // The clock never moves in this test: only the in-process signal can start the jobs.
        for (var i = 0; i < 3; i++)
        {
            var id = (await host.Enqueue()).Id;
            await host.WaitForStatus(id, JobStatus.Completed);
        }

        var keyed1 = (await host.Enqueue(key: "k")).Id;
        var keyed2 = (await host.Enqueue(key: "k")).Id;
        await host.WaitForStatus(keyed1, JobStatus.Completed);
        await host.WaitForStatus(keyed2, JobStatus.Completed);
    }

    [Fact]
    public async Task Startup_fails_listing_every_configuration_problem()
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        var inbox = builder.Services.AddInboxReliability(o => o.Retention = TimeSpan.Zero);
        _storage.Configure(inbox);
        inbox.AddJobHandler<ScriptedHandler>("a", o => { o.Concurrency = 0; o.BatchSize = 5000; })
             .AddJobHandler<ScriptedHandler>("b", o => o.Backoff.Factor = 0.5)
             .AddJobHandler<ScriptedHandler>("b");
        builder.Services.AddSingleton(new HandlerScript((_, _) => Task.CompletedTask));
        using var host = builder.Build();
        var error = await Assert.ThrowsAsync<InboxConfigurationException>(() => host.StartAsync());
        Assert.Equal(5, error.Errors.Count);
        Assert.Contains("Retention", error.Message, StringComparison.Ordinal);
        Assert.Contains("Concurrency", error.Message, StringComparison.Ordinal);
        Assert.Contains("BatchSize", error.Message, StringComparison.Ordinal);
        Assert.Contains("Backoff.Factor", error.Message, StringComparison.Ordinal);
        Assert.Contains("one handler per queue", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Startup_without_storage_says_what_to_call()
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Services.AddInboxReliability().AddJobHandler<ScriptedHandler>("a");
        builder.Services.AddSingleton(new HandlerScript((_, _) => Task.CompletedTask));
        using var host = builder.Build();
        var error = await Assert.ThrowsAsync<InboxConfigurationException>(() => host.StartAsync());
        Assert.Contains("no storage configured", error.Message, StringComparison.Ordinal);
        Assert.Contains("UseSqlite", error.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidOperationException>(() => host.Services.GetRequiredService<IJobQueue>());
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int current;
        while ((current = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, current) != current)
        {
        }
    }
}
