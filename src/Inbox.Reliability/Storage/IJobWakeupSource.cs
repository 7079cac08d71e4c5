namespace Inbox.Reliability.Storage;

/// <summary>
/// Optional, for stores shared by several processes (PostgreSQL LISTEN/NOTIFY): tells this process's workers that
/// another process enqueued jobs, so they claim at once instead of waiting for their next poll. A hint only:
/// workers still poll as a backstop, so a lost notification delays a job, never loses it.
/// </summary>
public interface IJobWakeupSource
{
    /// <summary>
    /// The idle poll interval workers may use while notifications flow (their backstop); null keeps each queue's
    /// <c>MaxPollInterval</c>. Workers never poll less often than this.
    /// </summary>
    TimeSpan? BackstopPollInterval { get; }

    /// <summary>
    /// Listens until <paramref name="cancellationToken"/> fires, calling <paramref name="wake"/> with a queue name
    /// whenever jobs of that queue became ready in another process. Reconnects by itself after failures.
    /// </summary>
    Task ListenAsync(Action<string> wake, CancellationToken cancellationToken);
}
