namespace Inbox.Reliability.Jobs;

/// <summary>The lifecycle state of a job.</summary>
public enum JobStatus
{
    /// <summary>Waiting to run: ready, scheduled for later, waiting to retry, or behind another job of its key.</summary>
    Pending = 0,

    /// <summary>Leased by a worker and running.</summary>
    Processing = 1,

    /// <summary>Finished successfully.</summary>
    Completed = 2,

    /// <summary>Dead letter: failed fatally or ran out of attempts. Kept with its last error until requeued or purged.</summary>
    Failed = 3,

    /// <summary>Canceled before it completed.</summary>
    Canceled = 4,
}

/// <summary>A job to enqueue.</summary>
/// <param name="Queue">The queue the job belongs to; a handler registered with <c>AddJobHandler</c> for this name runs it.</param>
/// <param name="Payload">The job's payload, usually JSON. Stored as is.</param>
public sealed record JobRequest(string Queue, string Payload)
{
    /// <summary>
    /// Optional ordering key. Jobs of one queue that share a key run one at a time, in enqueue order;
    /// a job waiting to retry holds the jobs behind it. Jobs without a key run in parallel.
    /// </summary>
    public string? Key { get; init; }

    /// <summary>When the job may run at the earliest. Null means now.</summary>
    public DateTimeOffset? RunAt { get; init; }

    /// <summary>
    /// Optional dedupe key, unique per queue among live (pending or processing) jobs: enqueueing a job whose
    /// dedupe key matches a live job returns the existing job's id instead of adding a new one.
    /// </summary>
    public string? DedupeKey { get; init; }

    /// <summary>How many times the job may run before it fails for good. Null means the queue's default.</summary>
    public int? MaxAttempts { get; init; }

    /// <summary>Higher runs first among ready jobs of the queue. Default 0. Never overrides the order within a key.</summary>
    public int Priority { get; init; }
}

/// <summary>The outcome of an enqueue.</summary>
/// <param name="Id">The job's id.</param>
/// <param name="Duplicate">True when a live job with the same dedupe key already existed and its id was returned.</param>
public readonly record struct EnqueueResult(long Id, bool Duplicate);

/// <summary>A job as stored, for operations and audit.</summary>
public sealed record JobInfo
{
    /// <summary>The job's id.</summary>
    public required long Id { get; init; }

    /// <summary>The job's queue.</summary>
    public required string Queue { get; init; }

    /// <summary>The job's ordering key, if any.</summary>
    public string? Key { get; init; }

    /// <summary>The job's payload.</summary>
    public required string Payload { get; init; }

    /// <summary>The job's status.</summary>
    public required JobStatus Status { get; init; }

    /// <summary>The job's priority.</summary>
    public int Priority { get; init; }

    /// <summary>How many attempts have started.</summary>
    public int Attempts { get; init; }

    /// <summary>The most attempts the job may make.</summary>
    public int MaxAttempts { get; init; }

    /// <summary>The job's dedupe key, if any.</summary>
    public string? DedupeKey { get; init; }

    /// <summary>When the job may run next (pending jobs).</summary>
    public DateTimeOffset RunAt { get; init; }

    /// <summary>The error of the last failed attempt, if any.</summary>
    public string? LastError { get; init; }

    /// <summary>When the job was enqueued.</summary>
    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>When the last attempt started.</summary>
    public DateTimeOffset? StartedAt { get; init; }

    /// <summary>When the job reached a final status.</summary>
    public DateTimeOffset? FinishedAt { get; init; }

    /// <summary>The worker holding the lease, while processing.</summary>
    public string? LeaseOwner { get; init; }

    /// <summary>When the current lease expires, while processing.</summary>
    public DateTimeOffset? LeaseExpiresAt { get; init; }

    /// <summary>True when a cancel was requested while the job was processing.</summary>
    public bool CancelRequested { get; init; }
}

/// <summary>How one attempt of a job ended.</summary>
public enum JobAttemptOutcome
{
    /// <summary>The handler completed.</summary>
    Completed = 0,

    /// <summary>The handler failed and the job was scheduled to retry.</summary>
    Retried = 1,

    /// <summary>The handler failed fatally, or the last attempt failed: the job is dead-lettered.</summary>
    Failed = 2,

    /// <summary>The job was canceled while running.</summary>
    Canceled = 3,

    /// <summary>The worker's lease expired (the worker died or hung); the job went back to pending.</summary>
    LeaseExpired = 4,
}

/// <summary>One attempt of a job, kept for audit.</summary>
/// <param name="Attempt">The attempt number, from 1.</param>
/// <param name="StartedAt">When the attempt started.</param>
/// <param name="FinishedAt">When its outcome was recorded.</param>
/// <param name="Outcome">How it ended.</param>
/// <param name="Error">The error, for failed attempts.</param>
/// <param name="Worker">The worker that ran it.</param>
public sealed record JobAttemptInfo(int Attempt, DateTimeOffset StartedAt, DateTimeOffset FinishedAt, JobAttemptOutcome Outcome, string? Error, string? Worker)
{
    /// <summary>How long the attempt took.</summary>
    public TimeSpan Duration => FinishedAt - StartedAt;
}

/// <summary>A filter over jobs, with paging for lists.</summary>
public sealed record JobQuery
{
    /// <summary>Only jobs of this queue.</summary>
    public string? Queue { get; init; }

    /// <summary>Only jobs in this status.</summary>
    public JobStatus? Status { get; init; }

    /// <summary>Only jobs with this ordering key.</summary>
    public string? Key { get; init; }

    /// <summary>Only jobs created before this instant.</summary>
    public DateTimeOffset? CreatedBefore { get; init; }

    /// <summary>Lists: only jobs with an id lower than this one (keyset paging, newest first). Use <see cref="JobPage.NextBeforeId"/>.</summary>
    public long? BeforeId { get; init; }

    /// <summary>Lists: how many jobs per page (1 to 1,000). Default 100.</summary>
    public int Limit { get; init; } = 100;
}

/// <summary>A page of jobs, newest first.</summary>
/// <param name="Jobs">The jobs on this page.</param>
/// <param name="NextBeforeId">Pass as <see cref="JobQuery.BeforeId"/> to get the next page; null on the last page.</param>
public sealed record JobPage(IReadOnlyList<JobInfo> Jobs, long? NextBeforeId);

/// <summary>How many jobs of a queue are in each status.</summary>
public sealed record QueueStats
{
    /// <summary>The queue.</summary>
    public required string Queue { get; init; }

    /// <summary>Pending jobs (ready, scheduled, waiting to retry or behind their key).</summary>
    public long Pending { get; init; }

    /// <summary>Jobs running now.</summary>
    public long Processing { get; init; }

    /// <summary>Completed jobs still kept (see retention).</summary>
    public long Completed { get; init; }

    /// <summary>Dead-lettered jobs.</summary>
    public long Failed { get; init; }

    /// <summary>Canceled jobs still kept.</summary>
    public long Canceled { get; init; }
}

/// <summary>The outcome of a cancel request.</summary>
public enum CancelJobResult
{
    /// <summary>No job has that id.</summary>
    NotFound = 0,

    /// <summary>The pending job was canceled.</summary>
    Canceled = 1,

    /// <summary>The job is running: its handler's CancellationToken was signalled; it ends canceled when the handler stops.</summary>
    CancellationRequested = 2,

    /// <summary>The job had already finished; nothing changed.</summary>
    AlreadyFinished = 3,
}
