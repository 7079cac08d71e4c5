using Microsoft.Extensions.Logging;

namespace Inbox.Reliability.Diagnostics;

/// <summary>Event ids of the library's log messages, for filtering and alerting.</summary>
public static class InboxEventIds
{
    /// <summary>A job attempt failed and will be retried.</summary>
    public const int JobRetrying = 1001;
    /// <summary>A job failed for good (dead letter).</summary>
    public const int JobFailed = 1002;
    /// <summary>A worker lost the lease of a job it was running.</summary>
    public const int LeaseLost = 1003;
    /// <summary>A handler timed out.</summary>
    public const int JobTimedOut = 1004;
    /// <summary>A handler ignored cancellation and was abandoned.</summary>
    public const int HandlerAbandoned = 1005;
    /// <summary>Storage failed during a worker operation; the worker backs off and retries.</summary>
    public const int StorageError = 1006;
    /// <summary>Expired leases were returned to pending.</summary>
    public const int LeasesReaped = 1007;
    /// <summary>Retention deleted finished jobs.</summary>
    public const int RetentionApplied = 1008;
    /// <summary>A job was canceled while running.</summary>
    public const int JobCanceled = 1009;
    /// <summary>Running jobs were released at shutdown.</summary>
    public const int JobsReleased = 1010;
    /// <summary>Storage migrations ran at startup.</summary>
    public const int Migrated = 1011;
    /// <summary>An outcome could not be recorded.</summary>
    public const int OutcomeNotRecorded = 1012;
    /// <summary>This process runs no job workers (<see cref="InboxReliabilityOptions.ProcessJobs"/> is false).</summary>
    public const int JobsNotProcessed = 1013;
}

internal static partial class Log
{
    [LoggerMessage(InboxEventIds.JobRetrying, LogLevel.Warning, "Job {JobId} of queue {Queue} failed on attempt {Attempt} of {MaxAttempts}; retrying at {RetryAt:O}")]
    public static partial void JobRetrying(ILogger logger, long jobId, string queue, int attempt, int maxAttempts, DateTimeOffset retryAt, Exception? exception);

    [LoggerMessage(InboxEventIds.JobFailed, LogLevel.Error, "Job {JobId} of queue {Queue} failed for good on attempt {Attempt} of {MaxAttempts} ({Reason})")]
    public static partial void JobFailed(ILogger logger, long jobId, string queue, int attempt, int maxAttempts, string reason, Exception? exception);

    [LoggerMessage(InboxEventIds.LeaseLost, LogLevel.Warning, "Job {JobId} of queue {Queue}: the lease was lost (expired or taken over); its outcome was not recorded and the job will run again")]
    public static partial void LeaseLost(ILogger logger, long jobId, string queue);

    [LoggerMessage(InboxEventIds.JobTimedOut, LogLevel.Warning, "Job {JobId} of queue {Queue} timed out after {Timeout}")]
    public static partial void JobTimedOut(ILogger logger, long jobId, string queue, TimeSpan timeout);

    [LoggerMessage(InboxEventIds.HandlerAbandoned, LogLevel.Error, "The handler of job {JobId} of queue {Queue} did not stop within {Grace} of cancellation; it was abandoned and its slot freed")]
    public static partial void HandlerAbandoned(ILogger logger, long jobId, string queue, TimeSpan grace);

    [LoggerMessage(InboxEventIds.StorageError, LogLevel.Error, "Storage failed while {Operation} for queue {Queue}; retrying in {Delay}")]
    public static partial void StorageError(ILogger logger, string operation, string queue, TimeSpan delay, Exception exception);

    [LoggerMessage(InboxEventIds.LeasesReaped, LogLevel.Warning, "{Count} jobs whose lease expired were returned to pending")]
    public static partial void LeasesReaped(ILogger logger, int count);

    [LoggerMessage(InboxEventIds.RetentionApplied, LogLevel.Information, "Retention deleted {Count} jobs that finished before {Before:O}")]
    public static partial void RetentionApplied(ILogger logger, int count, DateTimeOffset before);

    [LoggerMessage(InboxEventIds.JobCanceled, LogLevel.Information, "Job {JobId} of queue {Queue} was canceled while running")]
    public static partial void JobCanceled(ILogger logger, long jobId, string queue);

    [LoggerMessage(InboxEventIds.JobsReleased, LogLevel.Information, "Shutdown: {Count} running jobs of queue {Queue} did not finish within the grace period and were released to pending")]
    public static partial void JobsReleased(ILogger logger, int count, string queue);

    [LoggerMessage(InboxEventIds.Migrated, LogLevel.Information, "Storage is ready ({Storage})")]
    public static partial void StorageReady(ILogger logger, string storage);

    [LoggerMessage(InboxEventIds.OutcomeNotRecorded, LogLevel.Error, "The outcome {Outcome} of job {JobId} of queue {Queue} could not be recorded; the job will run again after its lease expires")]
    public static partial void OutcomeNotRecorded(ILogger logger, Storage.JobOutcomeKind outcome, long jobId, string queue, Exception exception);

    [LoggerMessage(InboxEventIds.JobsNotProcessed, LogLevel.Information, "This process runs no job workers (ProcessJobs = false): it enqueues jobs, and hosts sharing its storage with ProcessJobs = true process them")]
    public static partial void JobsNotProcessed(ILogger logger);
}
