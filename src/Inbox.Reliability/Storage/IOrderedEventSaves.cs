using Inbox.Reliability.Events;

namespace Inbox.Reliability.Storage;

/// <summary>
/// Saves of several raw webhooks of one instance handed to the storage as one request, so a failure cannot reorder them:
/// implemented by the storage packages, used by ingest when present (otherwise each webhook goes through
/// <see cref="IInboxStore.SaveEventsAsync"/>).
/// </summary>
/// <remarks>
/// Saved separately, a later webhook's events could commit while an earlier one's write failed (a connection lost
/// between two group commits), and the earlier one, ingested again later, would get later sequence numbers: its chat
/// would see its messages out of order. Here the saves commit together (possibly with other requests). When one of them
/// is refused by the database for its own data, they are written one by one, in order: the refused one is marked failed
/// with the reason (kept, reprocessable) and the others are stored. When the database fails otherwise (unreachable,
/// restarting, out of disk), none of the saves after the failed one is written.
/// </remarks>
internal interface IOrderedEventSaves
{
    /// <summary>Saves the events of each raw webhook as <see cref="IInboxStore.SaveEventsAsync"/> does, in the given order; one result per save.</summary>
    Task<IReadOnlyList<EventSaveResult>> SaveEventsInOrderAsync(IReadOnlyList<EventSave> saves, CancellationToken cancellationToken = default);
}

/// <summary>One raw webhook's events to save (see <see cref="IInboxStore.SaveEventsAsync"/>).</summary>
internal sealed record EventSave(long RawWebhookId, IReadOnlyList<InboxEvent> Events, Func<long, InboxEvent, EventFollowUp> FollowUp);

/// <summary>
/// The result of one save: its outcome, or the error that kept it from being stored. <see cref="MarkedFailed"/> is true when
/// the database refused this webhook's events and its raw row was marked failed with the reason instead.
/// </summary>
internal sealed record EventSaveResult(IngestOutcome? Outcome, Exception? Error, bool MarkedFailed = false)
{
    public static EventSaveResult Stored(IngestOutcome outcome) => new(outcome, null);
}
