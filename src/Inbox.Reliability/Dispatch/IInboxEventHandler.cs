using Inbox.Reliability.Events;

namespace Inbox.Reliability.Dispatch;

/// <summary>
/// Receives inbound events (messages, statuses, connection changes, others) in strict per-chat order, at least once.
/// Register with <c>builder.AddEventHandler&lt;THandler&gt;()</c>; a new DI scope per event. Throw to retry the event
/// (the chat's later events wait for it); after the last attempt the event is marked failed, visibly.
/// </summary>
public interface IInboxEventHandler
{
    /// <summary>Handles one event.</summary>
    Task HandleAsync(InboxEventContext context, CancellationToken cancellationToken);
}

/// <summary>An event handed to a handler.</summary>
public sealed class InboxEventContext
{
    internal InboxEventContext(long eventId, long sequence, InboxEvent inboxEvent, int attempt)
    {
        EventId = eventId;
        Sequence = sequence;
        Event = inboxEvent;
        Attempt = attempt;
    }

    /// <summary>The stored event's id.</summary>
    public long EventId { get; }

    /// <summary>The event's sequence number within its instance.</summary>
    public long Sequence { get; }

    /// <summary>The normalized event.</summary>
    public InboxEvent Event { get; }

    /// <summary>This delivery attempt, from 1.</summary>
    public int Attempt { get; }

    /// <summary>The same on every delivery of this event (its dedupe key): use it to make side effects idempotent.</summary>
    public string IdempotencyKey => Event.DedupeKey;
}
