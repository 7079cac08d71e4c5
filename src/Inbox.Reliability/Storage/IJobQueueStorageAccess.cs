using Inbox.Reliability.Jobs;

namespace Inbox.Reliability.Storage;

/// <summary>
/// For storage packages: implemented by the library's <see cref="IJobQueue"/>, so a storage can add jobs in a way only it
/// knows (for example inside the caller's own database transaction) with the same validation and defaults as
/// <see cref="IJobQueue.EnqueueBatchAsync"/>. Host apps do not need it.
/// </summary>
public interface IJobQueueStorageAccess
{
    /// <summary>The storage this queue reads and writes.</summary>
    IJobStore Store { get; }

    /// <summary>
    /// Validates the requests and resolves their defaults (run-at now, the queue's max attempts) exactly as
    /// <see cref="IJobQueue.EnqueueBatchAsync"/> does, without storing anything.
    /// </summary>
    /// <exception cref="ArgumentException">A request is invalid (the message says what to fix).</exception>
    IReadOnlyList<NewJob> Prepare(IReadOnlyList<JobRequest> jobs);
}
