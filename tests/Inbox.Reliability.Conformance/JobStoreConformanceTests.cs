using Inbox.Reliability.Jobs;
using Inbox.Reliability.Storage;
using Xunit;

namespace Inbox.Reliability.Conformance;

/// <summary>
/// The storage contract of the job engine. A storage provider is done when a subclass of this (and of
/// <see cref="JobEngineConformanceTests"/>) passes against a real server.
/// </summary>
public abstract class JobStoreConformanceTests : IAsyncLifetime
{
    private static readonly TimeSpan Lease = TimeSpan.FromSeconds(30);
    private StoreHarness _harness = null!;
    private IStorageUnderTest _storage = null!;

    protected abstract IStorageUnderTest CreateStorage();

    protected IJobStore Store => _harness.Store;

    protected IJobQueue Queue => _harness.Queue;

    protected ManualTimeProvider Time => _harness.Time;

    public async Task InitializeAsync()
    {
        _storage = CreateStorage();
        _harness = await StoreHarness.CreateAsync(_storage);
    }

    public async Task DisposeAsync()
    {
        await _harness.DisposeAsync();
        await _storage.DisposeAsync();
    }

    private Task<EnqueueResult> Enqueue(string queue = "q", string payload = "{}", string? key = null, string? dedupe = null, int? maxAttempts = null, int priority = 0, DateTimeOffset? runAt = null) =>
        Queue.EnqueueAsync(new JobRequest(queue, payload) { Key = key, DedupeKey = dedupe, MaxAttempts = maxAttempts, Priority = priority, RunAt = runAt });

    private Task<IReadOnlyList<ClaimedJob>> Claim(int max = 100, string queue = "q", string owner = "w1", TimeSpan? lease = null) =>
        Store.ClaimAsync(queue, max, owner, lease ?? Lease);

    private static long[] Ids(IEnumerable<ClaimedJob> jobs) => jobs.Select(j => j.Lease.JobId).ToArray();

    [Fact]
    public async Task Migrate_is_idempotent()
    {
        await Store.MigrateAsync();
        await Store.MigrateAsync();
        var id = (await Enqueue()).Id;
        Assert.NotNull(await Store.GetJobAsync(id));
    }

    [Fact]
    public async Task Enqueue_stores_every_field_and_ids_grow_in_enqueue_order()
    {
        var runAt = Time.GetUtcNow().AddMinutes(5);
        var a = await Queue.EnqueueAsync(new JobRequest("mail", "{\"to\":\"x\"}") { Key = "k1", DedupeKey = "d1", MaxAttempts = 3, Priority = 7, RunAt = runAt });
        var b = await Enqueue("mail");
        Assert.False(a.Duplicate);
        Assert.True(b.Id > a.Id);

        var job = await Store.GetJobAsync(a.Id);
        Assert.NotNull(job);
        Assert.Equal("mail", job.Queue);
        Assert.Equal("{\"to\":\"x\"}", job.Payload);
        Assert.Equal("k1", job.Key);
        Assert.Equal("d1", job.DedupeKey);
        Assert.Equal(3, job.MaxAttempts);
        Assert.Equal(7, job.Priority);
        Assert.Equal(runAt, job.RunAt);
        Assert.Equal(JobStatus.Pending, job.Status);
        Assert.Equal(0, job.Attempts);
        Assert.Equal(Time.GetUtcNow(), job.CreatedAt);
        Assert.Null(await Store.GetJobAsync(b.Id + 1000));
    }

    [Fact]
    public async Task Batch_enqueue_returns_one_result_per_job_in_order()
    {
        var requests = Enumerable.Range(0, 1000).Select(i => new JobRequest("q", $"{{\"i\":{i}}}") { Key = i % 2 == 0 ? "even" : null }).ToList();
        var results = await Queue.EnqueueBatchAsync(requests);
        Assert.Equal(1000, results.Count);
        Assert.Equal(results.Select(r => r.Id).OrderBy(x => x), results.Select(r => r.Id));
        Assert.Equal("{\"i\":999}", (await Store.GetJobAsync(results[999].Id))!.Payload);
        var stats = Assert.Single(await Store.GetStatsAsync());
        Assert.Equal(1000, stats.Pending);
    }

    [Fact]
    public async Task Live_duplicate_returns_the_existing_id_and_a_finished_one_does_not_block()
    {
        var first = await Enqueue(dedupe: "order-1");
        var again = await Enqueue(dedupe: "order-1", payload: "{\"other\":1}");
        Assert.Equal(first.Id, again.Id);
        Assert.True(again.Duplicate);
        Assert.Equal("{}", (await Store.GetJobAsync(first.Id))!.Payload);

        // Another queue has its own dedupe keys; a batch dedupes within itself too.
        var otherQueue = await Enqueue(queue: "other", dedupe: "order-1");
        Assert.False(otherQueue.Duplicate);
        var batch = await Queue.EnqueueBatchAsync([new JobRequest("q", "{}") { DedupeKey = "b" }, new JobRequest("q", "{}") { DedupeKey = "b" }]);
        Assert.Equal(batch[0].Id, batch[1].Id);
        Assert.True(batch[1].Duplicate);

        // While processing the job is still live.
        var claimed = (await Claim()).Single(j => j.Lease.JobId == first.Id);
        Assert.True((await Enqueue(dedupe: "order-1")).Duplicate);
        Assert.True(await Store.FinishAsync(claimed.Lease, JobOutcome.Completed));
        var afterCompletion = await Enqueue(dedupe: "order-1");
        Assert.False(afterCompletion.Duplicate);
        Assert.NotEqual(first.Id, afterCompletion.Id);
    }

    [Fact]
    public async Task Claim_leases_due_jobs_with_a_fencing_token_and_counts_the_attempt()
    {
        var id = (await Enqueue(payload: "{\"a\":1}", maxAttempts: 4)).Id;
        var job = Assert.Single(await Claim(owner: "worker-a"));
        Assert.Equal(id, job.Lease.JobId);
        Assert.Equal(1, job.Attempt);
        Assert.Equal(4, job.MaxAttempts);
        Assert.Equal("{\"a\":1}", job.Payload);
        Assert.Empty(await Claim());

        var info = (await Store.GetJobAsync(id))!;
        Assert.Equal(JobStatus.Processing, info.Status);
        Assert.Equal("worker-a", info.LeaseOwner);
        Assert.Equal(Time.GetUtcNow() + Lease, info.LeaseExpiresAt);
        Assert.Equal(1, info.Attempts);
    }

    [Fact]
    public async Task Claim_respects_the_batch_size_priority_and_run_at()
    {
        var low = (await Enqueue(priority: 0)).Id;
        var high = (await Enqueue(priority: 5)).Id;
        var later = (await Enqueue(runAt: Time.GetUtcNow().AddSeconds(10), priority: 9)).Id;
        var other = (await Enqueue(queue: "elsewhere")).Id;

        var first = Assert.Single(await Claim(max: 1));
        Assert.Equal(high, first.Lease.JobId);
        Assert.Equal([low], Ids(await Claim()));
        Assert.Empty(await Claim());

        Time.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal([later], Ids(await Claim()));
        Assert.Equal([other], Ids(await Claim(queue: "elsewhere")));
    }

    [Fact]
    public async Task Per_key_fifo_claims_only_the_head_of_each_key_and_unkeyed_jobs_in_parallel()
    {
        var a1 = (await Enqueue(key: "A")).Id;
        var a2 = (await Enqueue(key: "A")).Id;
        var b1 = (await Enqueue(key: "B")).Id;
        var a3 = (await Enqueue(key: "A", priority: 100)).Id; // priority never jumps the key's order
        var u1 = (await Enqueue()).Id;
        var u2 = (await Enqueue()).Id;

        var first = await Claim();
        Assert.Equal(new[] { a1, b1, u1, u2 }.Order(), Ids(first).Order());
        Assert.Empty(await Claim());

        Assert.True(await Store.FinishAsync(first.Single(j => j.Lease.JobId == a1).Lease, JobOutcome.Completed));
        var second = await Claim();
        Assert.Equal([a2], Ids(second));
        Assert.True(await Store.FinishAsync(second[0].Lease, JobOutcome.Completed));
        Assert.Equal([a3], Ids(await Claim()));
    }

    [Fact]
    public async Task A_job_waiting_to_retry_holds_its_key_but_not_other_keys()
    {
        var a1 = (await Enqueue(key: "A")).Id;
        var a2 = (await Enqueue(key: "A")).Id;
        var claimed = Assert.Single(await Claim());
        Assert.True(await Store.FinishAsync(claimed.Lease, new JobOutcome(JobOutcomeKind.Retry, "boom", Time.GetUtcNow().AddSeconds(10))));

        // 200 jobs over other keys are not held up by the blocked key.
        var others = (await Queue.EnqueueBatchAsync(Enumerable.Range(0, 200).Select(i => new JobRequest("q", "{}") { Key = "K" + i }).ToList())).Select(r => r.Id).ToHashSet();
        var got = await Claim(max: 500);
        Assert.Equal(others.Order(), Ids(got).Order());
        Assert.DoesNotContain(a2, Ids(got));

        Time.Advance(TimeSpan.FromSeconds(10));
        var retry = Assert.Single(await Claim());
        Assert.Equal(a1, retry.Lease.JobId);
        Assert.Equal(2, retry.Attempt);
        Assert.Equal("boom", (await Store.GetJobAsync(a1))!.LastError);
        Assert.True(await Store.FinishAsync(retry.Lease, JobOutcome.Completed));
        Assert.Equal([a2], Ids(await Claim()));
    }

    [Fact]
    public async Task A_dead_lettered_job_keeps_its_error_and_lets_its_key_move_on()
    {
        var a1 = (await Enqueue(key: "A")).Id;
        var a2 = (await Enqueue(key: "A")).Id;
        var claimed = Assert.Single(await Claim());
        Assert.True(await Store.FinishAsync(claimed.Lease, new JobOutcome(JobOutcomeKind.Failed, "bad payload")));

        var failed = (await Store.GetJobAsync(a1))!;
        Assert.Equal(JobStatus.Failed, failed.Status);
        Assert.Equal("bad payload", failed.LastError);
        Assert.Equal(Time.GetUtcNow(), failed.FinishedAt);
        Assert.Equal([a2], Ids(await Claim()));
    }

    [Fact]
    public async Task A_removed_job_is_deleted_with_its_history_its_key_moves_on_and_its_dedupe_key_is_free()
    {
        var a1 = (await Enqueue(key: "A", dedupe: "d-1", maxAttempts: 3)).Id;
        var a2 = (await Enqueue(key: "A")).Id;
        var other = (await Enqueue(payload: "{\"kept\":true}")).Id;

        // A retry first, so the job has attempt history; then it completes and is removed.
        var claimed = await Claim();
        Assert.Equal([a1, other], Ids(claimed).Order());
        Assert.True(await Store.FinishAsync(claimed.Single(j => j.Lease.JobId == a1).Lease, new JobOutcome(JobOutcomeKind.Retry, "flaky", Time.GetUtcNow())));
        Assert.True(await Store.FinishAsync(claimed.Single(j => j.Lease.JobId == other).Lease, JobOutcome.Completed));
        var second = Assert.Single(await Claim());
        Assert.Equal(a1, second.Lease.JobId);
        Assert.True(await Store.FinishAsync(second.Lease, JobOutcome.Removed));
        Assert.False(await Store.FinishAsync(second.Lease, JobOutcome.Removed)); // twice is once

        Assert.Null(await Store.GetJobAsync(a1));
        Assert.Empty(await Store.GetAttemptsAsync(a1));
        Assert.DoesNotContain(a1, (await Queue.ListAsync(new JobQuery { Queue = "q" })).Jobs.Select(j => j.Id));
        var stats = Assert.Single(await Queue.GetStatsAsync(), s => s.Queue == "q");
        Assert.Equal((1, 1, 0, 0), (stats.Pending, stats.Completed, stats.Processing, stats.Failed)); // a2 pending, the kept one completed
        Assert.Equal(JobStatus.Completed, (await Store.GetJobAsync(other))!.Status);

        // The key passed to its next job, and the dedupe key no longer names a live job.
        Assert.Equal([a2], Ids(await Claim()));
        var again = await Enqueue(dedupe: "d-1");
        Assert.False(again.Duplicate);
        Assert.NotEqual(a1, again.Id);
    }

    [Fact]
    public async Task A_stale_token_cannot_remove_a_job_and_a_failure_is_never_removed()
    {
        var id = (await Enqueue(maxAttempts: 1)).Id;
        var first = Assert.Single(await Claim(owner: "old", lease: TimeSpan.FromSeconds(10)));
        Time.Advance(TimeSpan.FromSeconds(11));
        Assert.False(await Store.FinishAsync(first.Lease, JobOutcome.Removed));
        Assert.Equal(JobStatus.Processing, (await Store.GetJobAsync(id))!.Status);

        Assert.Equal(1, await Store.ReapExpiredLeasesAsync()); // out of attempts: failed, and kept
        Assert.False(await Store.FinishAsync(first.Lease, JobOutcome.Removed));
        Assert.Equal(JobStatus.Failed, (await Store.GetJobAsync(id))!.Status);
    }

    [Fact]
    public async Task A_stale_token_cannot_complete_fail_or_extend_after_the_lease_expired()
    {
        var id = (await Enqueue()).Id;
        var first = Assert.Single(await Claim(owner: "old", lease: TimeSpan.FromSeconds(10)));
        Time.Advance(TimeSpan.FromSeconds(11));

        // Expired but not yet reaped: the old holder already lost it.
        Assert.False(await Store.FinishAsync(first.Lease, JobOutcome.Completed));
        Assert.Equal([LeaseRenewal.Lost], await Store.ExtendLeasesAsync([first.Lease], Lease));

        Assert.Equal(1, await Store.ReapExpiredLeasesAsync());
        var second = Assert.Single(await Claim(owner: "new"));
        Assert.Equal(id, second.Lease.JobId);
        Assert.NotEqual(first.Lease.Token, second.Lease.Token);
        Assert.Equal(2, second.Attempt);

        Assert.False(await Store.FinishAsync(first.Lease, JobOutcome.Completed));
        Assert.False(await Store.FinishAsync(first.Lease, new JobOutcome(JobOutcomeKind.Failed, "late")));
        Assert.False(await Store.FinishAsync(first.Lease, JobOutcome.Released));
        Assert.Equal([LeaseRenewal.Lost], await Store.ExtendLeasesAsync([first.Lease], Lease));
        Assert.Equal(JobStatus.Processing, (await Store.GetJobAsync(id))!.Status);

        Assert.True(await Store.FinishAsync(second.Lease, JobOutcome.Completed));
        Assert.False(await Store.FinishAsync(second.Lease, JobOutcome.Completed)); // twice is once
        var attempts = await Store.GetAttemptsAsync(id);
        Assert.Equal([JobAttemptOutcome.LeaseExpired, JobAttemptOutcome.Completed], attempts.Select(a => a.Outcome));
        Assert.Equal(["old", "new"], attempts.Select(a => a.Worker));
    }

    [Fact]
    public async Task Extending_a_lease_keeps_the_job_and_reports_a_cancel_request()
    {
        var id = (await Enqueue()).Id;
        var job = Assert.Single(await Claim(lease: TimeSpan.FromSeconds(10)));
        for (var i = 0; i < 5; i++)
        {
            Time.Advance(TimeSpan.FromSeconds(6));
            Assert.Equal([LeaseRenewal.Extended], await Store.ExtendLeasesAsync([job.Lease], TimeSpan.FromSeconds(10)));
            Assert.Equal(0, await Store.ReapExpiredLeasesAsync());
        }

        Assert.Equal(CancelJobResult.CancellationRequested, await Store.CancelAsync(id));
        Assert.True((await Store.GetJobAsync(id))!.CancelRequested);
        Assert.Equal([LeaseRenewal.CancelRequested], await Store.ExtendLeasesAsync([job.Lease], TimeSpan.FromSeconds(10)));
        Assert.True(await Store.FinishAsync(job.Lease, new JobOutcome(JobOutcomeKind.Canceled, "stopped")));
        Assert.Equal(JobStatus.Canceled, (await Store.GetJobAsync(id))!.Status);
    }

    [Fact]
    public async Task Lease_expiry_returns_the_job_to_pending_counting_the_attempt_and_fails_it_when_out_of_attempts()
    {
        var id = (await Enqueue(maxAttempts: 2, key: "K")).Id;
        var next = (await Enqueue(key: "K")).Id;
        Assert.Single(await Claim(lease: TimeSpan.FromSeconds(5)));
        Time.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(1, await Store.ReapExpiredLeasesAsync());
        var job = (await Store.GetJobAsync(id))!;
        Assert.Equal(JobStatus.Pending, job.Status);
        Assert.Equal(1, job.Attempts);
        Assert.Null(job.LeaseExpiresAt);

        var again = Assert.Single(await Claim(lease: TimeSpan.FromSeconds(5)));
        Assert.Equal(id, again.Lease.JobId);
        Time.Advance(TimeSpan.FromSeconds(6));
        Assert.Equal(1, await Store.ReapExpiredLeasesAsync());
        job = (await Store.GetJobAsync(id))!;
        Assert.Equal(JobStatus.Failed, job.Status);
        Assert.Contains("lease expired", job.LastError, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(2, (await Store.GetAttemptsAsync(id)).Count);

        // The dead letter no longer holds its key.
        Assert.Equal([next], Ids(await Claim()));
    }

    [Fact]
    public async Task Released_jobs_go_back_to_pending_without_counting_the_attempt()
    {
        var id = (await Enqueue(key: "K")).Id;
        var behind = (await Enqueue(key: "K")).Id;
        var job = Assert.Single(await Claim());
        Assert.True(await Store.FinishAsync(job.Lease, JobOutcome.Released));
        var info = (await Store.GetJobAsync(id))!;
        Assert.Equal(JobStatus.Pending, info.Status);
        Assert.Equal(0, info.Attempts);
        Assert.Empty(await Store.GetAttemptsAsync(id));

        var again = Assert.Single(await Claim());
        Assert.Equal(id, again.Lease.JobId); // still first in its key
        Assert.Equal(1, again.Attempt);
        Assert.NotEqual(behind, again.Lease.JobId);
    }

    [Fact]
    public async Task A_release_with_a_due_time_holds_the_job_and_its_key_until_then_without_counting_an_attempt()
    {
        var id = (await Enqueue(key: "K")).Id;
        var behind = (await Enqueue(key: "K")).Id;
        var other = (await Enqueue()).Id;
        var job = Assert.Single(await Claim(max: 1));
        Assert.Equal(id, job.Lease.JobId);
        Assert.True(await Store.FinishAsync(job.Lease, new JobOutcome(JobOutcomeKind.Released, null, Time.GetUtcNow() + TimeSpan.FromSeconds(2))));
        var info = (await Store.GetJobAsync(id))!;
        Assert.Equal((JobStatus.Pending, 0), (info.Status, info.Attempts));
        Assert.Empty(await Store.GetAttemptsAsync(id));

        // Not due yet: neither it nor the job behind it in its key is claimable; other keys are.
        Assert.Equal([other], Ids(await Claim()));
        Time.Advance(TimeSpan.FromSeconds(2));
        var again = Assert.Single(await Claim());
        Assert.Equal((id, 1), (again.Lease.JobId, again.Attempt));
        Assert.True(await Store.FinishAsync(again.Lease, JobOutcome.Completed));
        Assert.Equal([behind], Ids(await Claim()));
    }

    [Fact]
    public async Task Attempt_history_records_when_outcome_and_error()
    {
        var id = (await Enqueue(maxAttempts: 3)).Id;
        var attempt1 = Assert.Single(await Claim());
        Time.Advance(TimeSpan.FromSeconds(2));
        Assert.True(await Store.FinishAsync(attempt1.Lease, new JobOutcome(JobOutcomeKind.Retry, "timeout talking to provider", Time.GetUtcNow())));
        var attempt2 = Assert.Single(await Claim());
        Time.Advance(TimeSpan.FromSeconds(1));
        Assert.True(await Store.FinishAsync(attempt2.Lease, JobOutcome.Completed));

        var attempts = await Queue.GetAttemptsAsync(id);
        Assert.Equal(2, attempts.Count);
        Assert.Equal((1, JobAttemptOutcome.Retried, "timeout talking to provider"), (attempts[0].Attempt, attempts[0].Outcome, attempts[0].Error));
        Assert.Equal(TimeSpan.FromSeconds(2), attempts[0].Duration);
        Assert.Equal((2, JobAttemptOutcome.Completed, (string?)null), (attempts[1].Attempt, attempts[1].Outcome, attempts[1].Error));
        Assert.Equal(TimeSpan.FromSeconds(1), attempts[1].Duration);
        Assert.Equal(JobStatus.Completed, (await Store.GetJobAsync(id))!.Status);
    }

    [Fact]
    public async Task Cancel_covers_pending_processing_finished_and_missing_jobs()
    {
        var head = (await Enqueue(key: "K")).Id;
        var behind = (await Enqueue(key: "K")).Id;
        Assert.Equal(CancelJobResult.Canceled, await Queue.CancelAsync(head));
        Assert.Equal(JobStatus.Canceled, (await Store.GetJobAsync(head))!.Status);

        // Canceling the head lets the next job of the key run.
        var running = Assert.Single(await Claim());
        Assert.Equal(behind, running.Lease.JobId);
        Assert.Equal(CancelJobResult.CancellationRequested, await Queue.CancelAsync(behind));
        Assert.True(await Store.FinishAsync(running.Lease, JobOutcome.Completed)); // finished before it saw the request
        Assert.Equal(CancelJobResult.AlreadyFinished, await Queue.CancelAsync(behind));
        Assert.Equal(CancelJobResult.NotFound, await Queue.CancelAsync(behind + 999));
    }

    [Fact]
    public async Task Stats_count_jobs_per_queue_and_status()
    {
        await Enqueue("a");
        await Enqueue("a");
        await Enqueue("b");
        var claimed = await Claim(queue: "a", max: 1);
        Assert.True(await Store.FinishAsync(claimed[0].Lease, new JobOutcome(JobOutcomeKind.Failed, "x")));
        await Claim(queue: "b");

        var stats = await Queue.GetStatsAsync();
        Assert.Equal(["a", "b"], stats.Select(s => s.Queue));
        Assert.Equal((1L, 0L, 1L), (stats[0].Pending, stats[0].Processing, stats[0].Failed));
        Assert.Equal((0L, 1L), (stats[1].Pending, stats[1].Processing));
    }

    [Fact]
    public async Task List_filters_and_pages_newest_first()
    {
        var ids = new List<long>();
        for (var i = 0; i < 25; i++) ids.Add((await Enqueue(queue: i % 2 == 0 ? "even" : "odd", key: i < 5 ? "first" : null)).Id);
        var page1 = await Queue.ListAsync(new JobQuery { Queue = "even", Limit = 10 });
        Assert.Equal(ids.Where((_, i) => i % 2 == 0).Reverse().Take(10), page1.Jobs.Select(j => j.Id));
        Assert.NotNull(page1.NextBeforeId);
        var page2 = await Queue.ListAsync(new JobQuery { Queue = "even", Limit = 10, BeforeId = page1.NextBeforeId });
        Assert.Equal(3, page2.Jobs.Count);
        Assert.Null(page2.NextBeforeId);

        Assert.Equal(5, (await Queue.ListAsync(new JobQuery { Key = "first" })).Jobs.Count);
        Assert.Equal(25, (await Queue.ListAsync(new JobQuery { Status = JobStatus.Pending })).Jobs.Count);
        Assert.Empty((await Queue.ListAsync(new JobQuery { Status = JobStatus.Failed })).Jobs);
        Time.Advance(TimeSpan.FromMinutes(1));
        var late = (await Enqueue(queue: "even")).Id;
        var old = await Queue.ListAsync(new JobQuery { CreatedBefore = Time.GetUtcNow() });
        Assert.DoesNotContain(late, old.Jobs.Select(j => j.Id));
        Assert.Equal(25, old.Jobs.Count);
        await Assert.ThrowsAsync<ArgumentException>(() => Queue.ListAsync(new JobQuery { Limit = 0 }));
    }

    [Fact]
    public async Task Requeue_brings_back_one_failed_job_or_all_matching_with_fresh_attempts()
    {
        var ids = new List<long>();
        for (var i = 0; i < 3; i++) ids.Add((await Enqueue(queue: i == 2 ? "other" : "q", maxAttempts: 1)).Id);
        foreach (var queue in new[] { "q", "other" })
        {
            foreach (var job in await Claim(queue: queue)) Assert.True(await Store.FinishAsync(job.Lease, new JobOutcome(JobOutcomeKind.Failed, "down")));
        }

        Assert.True(await Queue.RequeueAsync(ids[0]));
        Assert.False(await Queue.RequeueAsync(ids[0])); // pending now: nothing to requeue
        var info = (await Store.GetJobAsync(ids[0]))!;
        Assert.Equal((JobStatus.Pending, 0), (info.Status, info.Attempts));

        Assert.Equal(1, await Queue.RequeueFailedAsync(new JobQuery { Queue = "q" }));
        Assert.Equal(JobStatus.Failed, (await Store.GetJobAsync(ids[2]))!.Status);
        Assert.Equal(1, await Queue.RequeueFailedAsync(new JobQuery()));
        var again = await Claim(queue: "q");
        Assert.Equal([ids[0], ids[1]], Ids(again));
        Assert.Equal(1, again[0].Attempt);
    }

    [Fact]
    public async Task A_requeued_keyed_job_waits_for_the_running_job_of_its_key()
    {
        var a1 = (await Enqueue(key: "K", maxAttempts: 1)).Id;
        var a2 = (await Enqueue(key: "K")).Id;
        var first = Assert.Single(await Claim());
        Assert.True(await Store.FinishAsync(first.Lease, new JobOutcome(JobOutcomeKind.Failed, "x")));
        var second = Assert.Single(await Claim());
        Assert.Equal(a2, second.Lease.JobId);

        Assert.True(await Queue.RequeueAsync(a1));
        Assert.Empty(await Claim()); // one job per key at a time
        Assert.True(await Store.FinishAsync(second.Lease, JobOutcome.Completed));
        Assert.Equal([a1], Ids(await Claim()));
    }

    [Fact]
    public async Task Purge_deletes_matching_jobs_except_running_ones_and_unblocks_keys()
    {
        var head = (await Enqueue(key: "K", queue: "p")).Id;
        var behind = (await Enqueue(key: "K", queue: "p")).Id;
        var running = (await Enqueue(queue: "r")).Id;
        Assert.Single(await Claim(queue: "r"));

        Assert.Equal(0, await Queue.PurgeAsync(new JobQuery { Queue = "r" }));
        Assert.Equal(2, await Queue.PurgeAsync(new JobQuery { Queue = "p" }));
        Assert.Null(await Store.GetJobAsync(head));
        Assert.Null(await Store.GetJobAsync(behind));
        Assert.NotNull(await Store.GetJobAsync(running));
        await Assert.ThrowsAsync<ArgumentException>(() => Queue.PurgeAsync(new JobQuery { Status = JobStatus.Processing }));
    }

    [Fact]
    public async Task Purging_the_head_of_a_key_lets_the_next_job_run()
    {
        var head = (await Enqueue(key: "K", payload: "{\"n\":1}")).Id;
        Time.Advance(TimeSpan.FromSeconds(1));
        var behind = (await Enqueue(key: "K", payload: "{\"n\":2}")).Id;
        var job = Assert.Single(await Claim());
        Assert.True(await Store.FinishAsync(job.Lease, new JobOutcome(JobOutcomeKind.Retry, "later", Time.GetUtcNow().AddHours(1))));

        var page = await Queue.ListAsync(new JobQuery { Key = "K" });
        Assert.Equal(2, page.Jobs.Count);
        Assert.Equal(1, await Queue.PurgeAsync(new JobQuery { Key = "K", Queue = "q", CreatedBefore = Time.GetUtcNow() }));
        Assert.Null(await Store.GetJobAsync(head));
        Assert.Equal([behind], Ids(await Claim()));
    }

    [Fact]
    public async Task Retention_deletes_old_completed_and_canceled_jobs_and_keeps_failed_ones()
    {
        var done = (await Enqueue()).Id;
        var failed = (await Enqueue()).Id;
        var canceled = (await Enqueue(queue: "c")).Id;
        foreach (var job in await Claim())
        {
            Assert.True(await Store.FinishAsync(job.Lease, job.Lease.JobId == done ? JobOutcome.Completed : new JobOutcome(JobOutcomeKind.Failed, "x")));
        }

        Assert.Equal(CancelJobResult.Canceled, await Store.CancelAsync(canceled));
        Time.Advance(TimeSpan.FromDays(8));
        var recent = (await Enqueue()).Id;
        var recentJob = Assert.Single(await Claim());
        Assert.True(await Store.FinishAsync(recentJob.Lease, JobOutcome.Completed));

        Assert.Equal(2, await Queue.ApplyRetentionAsync()); // default retention: 7 days
        Assert.Null(await Store.GetJobAsync(done));
        Assert.Null(await Store.GetJobAsync(canceled));
        Assert.Empty(await Store.GetAttemptsAsync(done));
        Assert.Equal(JobStatus.Failed, (await Store.GetJobAsync(failed))!.Status);
        Assert.Equal(JobStatus.Completed, (await Store.GetJobAsync(recent))!.Status);
    }

    [Fact]
    public async Task Ids_are_never_reused_after_deletes()
    {
        var first = (await Enqueue()).Id;
        var job = Assert.Single(await Claim());
        Assert.True(await Store.FinishAsync(job.Lease, JobOutcome.Completed));
        Time.Advance(TimeSpan.FromDays(30));
        Assert.Equal(1, await Queue.ApplyRetentionAsync());
        var second = (await Enqueue()).Id;
        Assert.True(second > first);
    }

    [Fact]
    public async Task Concurrent_enqueues_are_all_stored_once()
    {
        var results = await Task.WhenAll(Enumerable.Range(0, 16).Select(async caller =>
        {
            var ids = new List<long>();
            for (var i = 0; i < 100; i++) ids.Add((await Enqueue(key: "k" + (i % 7), payload: $"{{\"c\":{caller},\"i\":{i}}}")).Id);
            return ids;
        }));
        var all = results.SelectMany(x => x).ToList();
        Assert.Equal(1600, all.Distinct().Count());
        Assert.Equal(1600, Assert.Single(await Store.GetStatsAsync()).Pending);

        // Each caller's jobs of one key keep that caller's order.
        var claimedOrder = new List<long>();
        while (true)
        {
            var jobs = await Claim(max: 1000);
            if (jobs.Count == 0) break;
            Assert.True(jobs.Select(j => j.Key).Distinct().Count() == jobs.Count, "one job per key at a time");
            foreach (var job in jobs)
            {
                claimedOrder.Add(job.Lease.JobId);
                Assert.True(await Store.FinishAsync(job.Lease, JobOutcome.Completed));
            }
        }

        Assert.Equal(1600, claimedOrder.Count);
        foreach (var ids in results)
        {
            var positions = ids.Select(id => claimedOrder.IndexOf(id)).ToList();
            for (var k = 0; k < 7; k++)
            {
                var ofKey = positions.Where((_, i) => i % 7 == k).ToList();
                Assert.Equal(ofKey.Order(), ofKey);
            }
        }
    }

    [Fact]
    public async Task Invalid_requests_get_clear_errors_and_store_nothing()
    {
        var error = await Assert.ThrowsAsync<ArgumentException>(() => Queue.EnqueueAsync(new JobRequest("", "{}")));
        Assert.Contains("queue name", error.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<ArgumentException>(() => Queue.EnqueueAsync(new JobRequest("q", null!)));
        await Assert.ThrowsAsync<ArgumentException>(() => Queue.EnqueueAsync(new JobRequest("q", "{}") { MaxAttempts = 0 }));
        await Assert.ThrowsAsync<ArgumentException>(() => Queue.EnqueueBatchAsync([new JobRequest("q", "{}"), new JobRequest("q", "{}") { Key = "" }]));
        Assert.Empty(await Store.GetStatsAsync());
    }
}
