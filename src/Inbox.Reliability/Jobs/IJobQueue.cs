namespace Inbox.Reliability.Jobs;

/// <summary>
/// Enqueues jobs and operates on them: stats, lists, requeue, cancel, purge. Resolve it from DI after
/// <c>AddInboxReliability()</c>. Thread-safe.
/// </summary>
public interface IJobQueue
{
    /// <summary>Enqueues one job. Returns once the job is durable.</summary>
    /// <exception cref="ArgumentException">The request is invalid (the message says what to fix).</exception>
    Task<EnqueueResult> EnqueueAsync(JobRequest job, CancellationToken cancellationToken = default);

    /// <summary>Enqueues many jobs in one transaction: all are durable when it returns, or none is.</summary>
    Task<IReadOnlyList<EnqueueResult>> EnqueueBatchAsync(IReadOnlyList<JobRequest> jobs, CancellationToken cancellationToken = default);

    /// <summary>Gets one job, or null.</summary>
    Task<JobInfo?> GetAsync(long id, CancellationToken cancellationToken = default);

    /// <summary>Gets a job's attempt history, oldest first.</summary>
    Task<IReadOnlyList<JobAttemptInfo>> GetAttemptsAsync(long id, CancellationToken cancellationToken = default);

    /// <summary>Lists jobs matching a filter, newest first, one page at a time.</summary>
    Task<JobPage> ListAsync(JobQuery query, CancellationToken cancellationToken = default);

    /// <summary>Counts jobs per queue and status.</summary>
    Task<IReadOnlyList<QueueStats>> GetStatsAsync(CancellationToken cancellationToken = default);

    /// <summary>Cancels a pending job, or asks a running one to stop through its CancellationToken.</summary>
    Task<CancelJobResult> CancelAsync(long id, CancellationToken cancellationToken = default);

    /// <summary>Puts a failed or canceled job back to pending with a fresh set of attempts. Returns false when the job is not failed or canceled.</summary>
    Task<bool> RequeueAsync(long id, CancellationToken cancellationToken = default);

    /// <summary>Requeues every failed job matching the filter (its <see cref="JobQuery.Status"/> is ignored). Returns how many.</summary>
    Task<int> RequeueFailedAsync(JobQuery filter, CancellationToken cancellationToken = default);

    /// <summary>Deletes the jobs matching the filter, except running ones. Returns how many.</summary>
    Task<int> PurgeAsync(JobQuery filter, CancellationToken cancellationToken = default);

    /// <summary>
    /// Deletes completed and canceled jobs that finished longer ago than the configured retention;
    /// failed jobs are kept. Runs by itself periodically; call it to run it now. Returns how many were deleted.
    /// </summary>
    Task<int> ApplyRetentionAsync(CancellationToken cancellationToken = default);
}
