using Inbox.Reliability.Jobs;

namespace Inbox.Reliability.Storage;

/// <summary>
/// The storage contract of the job engine. Storage packages implement it (<c>UseSqlite</c>, <c>UsePostgreSql</c>);
/// host apps use <see cref="IJobQueue"/> instead. Every implementation must pass the storage conformance suite.
/// Implementations read the current time from the <see cref="TimeProvider"/> registered in DI.
/// </summary>
/// <remarks>
/// Rules every implementation keeps:
/// <list type="bullet">
/// <item>Within a queue, jobs sharing a key are claimable one at a time, in id (enqueue) order: only the oldest
/// live (pending or processing) job of a key may be claimed, and only when it is pending and due.</item>
/// <item>A claim increments the job's attempts and its fencing token; every outcome and lease extension must
/// present the token and succeeds only while the lease is unexpired and the token current.</item>
/// <item>Ids grow with enqueue order and are never reused.</item>
/// </list>
/// </remarks>
public interface IJobStore
{
    /// <summary>Creates or upgrades the schema. Idempotent; safe when several processes start together.</summary>
    Task MigrateAsync(CancellationToken cancellationToken = default);

    /// <summary>Adds jobs in one transaction, in list order. A job whose dedupe key matches a live job of its queue is not added; that job's id comes back with <see cref="EnqueueResult.Duplicate"/> set.</summary>
    Task<IReadOnlyList<EnqueueResult>> EnqueueAsync(IReadOnlyList<NewJob> jobs, CancellationToken cancellationToken = default);

    /// <summary>Leases up to <paramref name="maxJobs"/> due jobs of a queue, highest priority first, then oldest run-at, then id.</summary>
    Task<IReadOnlyList<ClaimedJob>> ClaimAsync(string queue, int maxJobs, string owner, TimeSpan leaseDuration, CancellationToken cancellationToken = default);

    /// <summary>Records the outcome of an attempt. Returns false when the lease was lost (expired, or the token is stale): nothing changed.</summary>
    Task<bool> FinishAsync(JobLease lease, JobOutcome outcome, CancellationToken cancellationToken = default);

    /// <summary>Extends the leases of running jobs to now + <paramref name="leaseDuration"/>; one renewal per lease, in order.</summary>
    Task<IReadOnlyList<LeaseRenewal>> ExtendLeasesAsync(IReadOnlyList<JobLease> leases, TimeSpan leaseDuration, CancellationToken cancellationToken = default);

    /// <summary>Returns jobs whose lease expired to pending (the attempt counts), or fails them when out of attempts. Returns how many.</summary>
    Task<int> ReapExpiredLeasesAsync(CancellationToken cancellationToken = default);

    /// <summary>Gets one job, or null.</summary>
    Task<JobInfo?> GetJobAsync(long id, CancellationToken cancellationToken = default);

    /// <summary>Gets a job's attempts, oldest first.</summary>
    Task<IReadOnlyList<JobAttemptInfo>> GetAttemptsAsync(long id, CancellationToken cancellationToken = default);

    /// <summary>Lists jobs matching a filter, newest (highest id) first.</summary>
    Task<JobPage> ListJobsAsync(JobQuery query, CancellationToken cancellationToken = default);

    /// <summary>Counts jobs per queue and status.</summary>
    Task<IReadOnlyList<QueueStats>> GetStatsAsync(CancellationToken cancellationToken = default);

    /// <summary>Cancels a pending job, or flags a processing one (renewals then report <see cref="LeaseRenewal.CancelRequested"/>).</summary>
    Task<CancelJobResult> CancelAsync(long id, CancellationToken cancellationToken = default);

    /// <summary>Requeues failed (and, for a single id, canceled) jobs: pending, attempts reset, due now. Returns how many.</summary>
    Task<int> RequeueAsync(long? id, JobQuery? filter, CancellationToken cancellationToken = default);

    /// <summary>Deletes non-processing jobs matching the filter, with their attempts. Returns how many.</summary>
    Task<int> PurgeAsync(JobQuery filter, CancellationToken cancellationToken = default);

    /// <summary>Deletes completed and canceled jobs finished before <paramref name="finishedBefore"/>, with their attempts. Returns how many.</summary>
    Task<int> DeleteFinishedAsync(DateTimeOffset finishedBefore, CancellationToken cancellationToken = default);
}

/// <summary>A job to add, with defaults already resolved.</summary>
/// <param name="Queue">The queue.</param>
/// <param name="Payload">The payload.</param>
/// <param name="Key">The ordering key, or null.</param>
/// <param name="RunAt">When it may run.</param>
/// <param name="DedupeKey">The dedupe key, or null.</param>
/// <param name="MaxAttempts">The most attempts.</param>
/// <param name="Priority">The priority (higher first).</param>
public sealed record NewJob(string Queue, string Payload, string? Key, DateTimeOffset RunAt, string? DedupeKey, int MaxAttempts, int Priority);

/// <summary>The proof of a lease: the job id and the fencing token its claim returned.</summary>
/// <param name="JobId">The job's id.</param>
/// <param name="Token">The fencing token.</param>
public readonly record struct JobLease(long JobId, long Token);

/// <summary>A job leased to a worker.</summary>
public sealed record ClaimedJob
{
    /// <summary>The lease to present with every outcome.</summary>
    public required JobLease Lease { get; init; }

    /// <summary>The queue.</summary>
    public required string Queue { get; init; }

    /// <summary>The ordering key, if any.</summary>
    public string? Key { get; init; }

    /// <summary>The payload.</summary>
    public required string Payload { get; init; }

    /// <summary>This attempt's number, from 1.</summary>
    public int Attempt { get; init; }

    /// <summary>The most attempts.</summary>
    public int MaxAttempts { get; init; }

    /// <summary>The dedupe key, if any.</summary>
    public string? DedupeKey { get; init; }

    /// <summary>The priority.</summary>
    public int Priority { get; init; }

    /// <summary>When the job was enqueued.</summary>
    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>When the job became due.</summary>
    public DateTimeOffset RunAt { get; init; }

    /// <summary>When this attempt started (the claim time).</summary>
    public DateTimeOffset StartedAt { get; init; }
}

/// <summary>What became of an attempt.</summary>
public enum JobOutcomeKind
{
    /// <summary>Completed.</summary>
    Completed = 0,

    /// <summary>Failed; pending again at <see cref="JobOutcome.RetryAt"/>.</summary>
    Retry = 1,

    /// <summary>Failed for good (dead letter).</summary>
    Failed = 2,

    /// <summary>Canceled while running.</summary>
    Canceled = 3,

    /// <summary>
    /// Given back unfinished (graceful shutdown, or put back on purpose): pending again at <see cref="JobOutcome.RetryAt"/>
    /// when it is later than the job's due time, else at once; the attempt not counted, no attempt recorded; a keyed job
    /// stays its key's head.
    /// </summary>
    Released = 4,

    /// <summary>
    /// Completed, and deleted at once with its attempt history instead of kept for retention (the queue's
    /// <see cref="Jobs.JobHandlerOptions.RemoveOnComplete"/>): a keyed job's key passes to its next job as after
    /// <see cref="Completed"/>; a live dedupe key is free again.
    /// </summary>
    Removed = 5,
}

/// <summary>The outcome of an attempt.</summary>
/// <param name="Kind">What happened.</param>
/// <param name="Error">The error, for failures.</param>
/// <param name="RetryAt">For <see cref="JobOutcomeKind.Retry"/>: when to run again.</param>
public readonly record struct JobOutcome(JobOutcomeKind Kind, string? Error = null, DateTimeOffset? RetryAt = null)
{
    /// <summary>A completed attempt.</summary>
    public static JobOutcome Completed => new(JobOutcomeKind.Completed);

    /// <summary>A completed attempt whose job is deleted rather than kept (<see cref="JobOutcomeKind.Removed"/>).</summary>
    public static JobOutcome Removed => new(JobOutcomeKind.Removed);

    /// <summary>A released (unfinished, not counted) attempt.</summary>
    public static JobOutcome Released => new(JobOutcomeKind.Released);
}

/// <summary>The result of extending one lease.</summary>
public enum LeaseRenewal
{
    /// <summary>Extended.</summary>
    Extended = 0,

    /// <summary>Extended, and a cancel was requested for the job.</summary>
    CancelRequested = 1,

    /// <summary>The lease is no longer held (expired or taken over): stop and do not write outcomes.</summary>
    Lost = 2,
}
