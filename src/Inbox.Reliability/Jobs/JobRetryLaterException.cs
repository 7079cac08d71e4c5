namespace Inbox.Reliability.Jobs;

/// <summary>
/// Thrown by an internal handler to retry its job no sooner than <see cref="Delay"/> from now (a provider's Retry-After),
/// or after the queue's backoff when that is longer. Counts an attempt like any failure.
/// </summary>
internal sealed class JobRetryLaterException(TimeSpan delay, string message, Exception? innerException = null) : Exception(message, innerException)
{
    public TimeSpan Delay { get; } = delay;
}
