using Inbox.Reliability.Events;
using Inbox.Reliability.Media;
using Inbox.Reliability.Storage;

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
    private readonly IMediaStore? _mediaStore;
    private readonly TimeSpan _urlExpiry;

    internal InboxEventContext(long eventId, long sequence, InboxEvent inboxEvent, int attempt)
        : this(eventId, sequence, inboxEvent, attempt, EventMedia.None, false, null, TimeSpan.FromHours(1))
    {
    }

    internal InboxEventContext(long eventId, long sequence, InboxEvent inboxEvent, int attempt, EventMedia media, bool isMediaUpdate, IMediaStore? mediaStore, TimeSpan urlExpiry)
    {
        EventId = eventId;
        Sequence = sequence;
        Event = inboxEvent;
        Attempt = attempt;
        Media = media;
        IsMediaUpdate = isMediaUpdate;
        _mediaStore = mediaStore;
        _urlExpiry = urlExpiry;
    }

    /// <summary>The stored event's id.</summary>
    public long EventId { get; }

    /// <summary>The event's sequence number within its instance.</summary>
    public long Sequence { get; }

    /// <summary>The normalized event.</summary>
    public InboxEvent Event { get; }

    /// <summary>This delivery attempt, from 1.</summary>
    public int Attempt { get; }

    /// <summary>
    /// The same on every delivery of this event (its dedupe key; with <c>#media</c> appended for a media update): use it
    /// to make side effects idempotent.
    /// </summary>
    public string IdempotencyKey => IsMediaUpdate ? Event.DedupeKey + "#media" : Event.DedupeKey;

    /// <summary>
    /// The event's media as downloaded: <see cref="MediaStatus.Stored"/> (with its key, size, type and SHA-256),
    /// <see cref="MediaStatus.Failed"/> (with the reason: show a placeholder), <see cref="MediaStatus.Pending"/> (the chat's
    /// wait ran out while it downloads: show a placeholder; a media update follows when it ends), or
    /// <see cref="MediaStatus.None"/> (no media, or no media store configured).
    /// </summary>
    public EventMedia Media { get; }

    /// <summary>
    /// True when this delivery is a media update: the event was delivered before (with <see cref="Media"/> pending) and its
    /// media has now ended, stored or failed.
    /// </summary>
    public bool IsMediaUpdate { get; }

    /// <summary>
    /// A fresh read URL for the stored media (S3 presigned, or a signed link for the file system), valid for
    /// <paramref name="expiresIn"/> (default <c>Media.ReadUrlExpiry</c>); null when the media is not stored.
    /// </summary>
    public async Task<Uri?> GetMediaUrlAsync(TimeSpan? expiresIn = null, CancellationToken cancellationToken = default)
    {
        if (Media.Status != MediaStatus.Stored || Media.Key is null || _mediaStore is null) return null;
        return await _mediaStore.GetReadUrlAsync(Media.Key, expiresIn ?? _urlExpiry, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Opens the stored media for reading (the caller disposes the stream); null when the media is not stored.</summary>
    public async Task<Stream?> OpenMediaAsync(CancellationToken cancellationToken = default)
    {
        if (Media.Status != MediaStatus.Stored || Media.Key is null || _mediaStore is null) return null;
        return await _mediaStore.OpenReadAsync(Media.Key, cancellationToken).ConfigureAwait(false);
    }
}
