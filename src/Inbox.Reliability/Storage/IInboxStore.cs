using Inbox.Reliability.Events;

namespace Inbox.Reliability.Storage;

/// <summary>
/// The storage contract of the webhook pipeline: raw webhooks, normalized events and instances. Storage packages
/// implement it beside <see cref="IJobStore"/>, on the same database, because capture and ingest write rows and
/// enqueue their follow-up jobs in ONE transaction.
/// </summary>
public interface IInboxStore
{
    /// <summary>
    /// Makes a raw webhook durable and enqueues its ingest job in the same transaction, then returns. The same body for the
    /// same provider and instance (a provider retry, same sha256) is stored once: its duplicate counter grows and the first
    /// row's id comes back with <see cref="CaptureOutcome.Duplicate"/> set. The ingest job's payload is set to the new row's id.
    /// Concurrent captures may share a transaction, and then one ingest job per instance: its payload is the highest new row id
    /// of that instance (ingest takes an instance's captured webhooks oldest first, so the job that reaches that row has taken
    /// the older ones with it).
    /// </summary>
    Task<CaptureOutcome> CaptureAsync(RawWebhook webhook, NewJob ingestJob, CancellationToken cancellationToken = default);

    /// <summary>Gets a raw webhook with its body, or null.</summary>
    Task<StoredRawWebhook?> GetRawWebhookAsync(long id, CancellationToken cancellationToken = default);

    /// <summary>
    /// Gets the oldest <paramref name="limit"/> raw webhooks of a provider and instance that are still captured (not yet
    /// ingested or failed), oldest first, with their bodies: ingest parses them in arrival order.
    /// </summary>
    Task<IReadOnlyList<StoredRawWebhook>> GetCapturedRawWebhooksAsync(string provider, string instance, int limit, CancellationToken cancellationToken = default);

    /// <summary>
    /// In one transaction: stores the events of a raw webhook (an event whose dedupe key exists is a duplicate: not stored,
    /// reported), gives each new event the next sequence number of its instance, enqueues the jobs that
    /// <paramref name="followUp"/> gives for each new event (called with the new event's id; its media status set to
    /// <see cref="MediaStatus.Pending"/> when it says so), updates the instance, and marks the raw webhook ingested.
    /// </summary>
    Task<IngestOutcome> SaveEventsAsync(long rawWebhookId, IReadOnlyList<InboxEvent> events, Func<long, InboxEvent, EventFollowUp> followUp, CancellationToken cancellationToken = default);

    /// <summary>Marks a raw webhook that is still captured failed with the reason (kept, reprocessable).</summary>
    Task MarkRawWebhookFailedAsync(long id, string reason, CancellationToken cancellationToken = default);

    /// <summary>Gets a stored event, or null.</summary>
    Task<StoredInboxEvent?> GetEventAsync(long id, CancellationToken cancellationToken = default);

    /// <summary>
    /// Records the state of an event's media (stored, failed, or still pending with the last error) and, in the same
    /// transaction, enqueues <paramref name="followUp"/> when given (a redelivery of an event dispatched before its media).
    /// </summary>
    Task SetMediaAsync(long eventId, EventMedia media, NewJob? followUp, CancellationToken cancellationToken = default);

    /// <summary>Counts events by media status (<see cref="MediaStatus.None"/> excluded).</summary>
    Task<IReadOnlyDictionary<MediaStatus, long>> CountMediaAsync(CancellationToken cancellationToken = default);

    /// <summary>Records the dispatch outcome of an event.</summary>
    Task MarkEventDispatchAsync(long id, EventDispatchStatus status, string? error, CancellationToken cancellationToken = default);

    /// <summary>
    /// Gets the events of one chat still waiting for dispatch (<see cref="EventDispatchStatus.Pending"/>), in sequence order,
    /// with their bodies: a chat's dispatch job delivers them one after another. An empty <paramref name="chatId"/> means the
    /// instance's events without a chat.
    /// </summary>
    Task<IReadOnlyList<StoredInboxEvent>> GetPendingEventsAsync(string provider, string instance, string chatId, int limit, CancellationToken cancellationToken = default);

    /// <summary>Records a failed delivery of an event (the error, one more attempt) and returns how many attempts it has had.</summary>
    Task<int> RecordDispatchFailureAsync(long id, string error, CancellationToken cancellationToken = default);

    /// <summary>
    /// Puts failed raw webhooks matching the filter back to captured and enqueues an ingest job for each (built by
    /// <paramref name="ingestJob"/>, its payload set to the row's id). Returns how many.
    /// </summary>
    Task<int> ReprocessRawWebhooksAsync(RawWebhookQuery filter, Func<StoredRawWebhook, NewJob> ingestJob, CancellationToken cancellationToken = default);

    /// <summary>Lists raw webhooks (without bodies), newest first.</summary>
    Task<IReadOnlyList<StoredRawWebhook>> ListRawWebhooksAsync(RawWebhookQuery filter, CancellationToken cancellationToken = default);

    /// <summary>Gets an instance's state, or null when no webhook or check has named it yet.</summary>
    Task<InstanceState?> GetInstanceAsync(string provider, string instance, CancellationToken cancellationToken = default);
}

/// <summary>A webhook as received, before any parsing.</summary>
/// <param name="Provider">The provider name from the URL.</param>
/// <param name="Instance">The instance from the URL.</param>
/// <param name="ReceivedAt">When it was received.</param>
/// <param name="Sha256">The SHA-256 of the body.</param>
/// <param name="Body">The raw body.</param>
/// <param name="ContentType">The Content-Type header, if any.</param>
/// <param name="Headers">The headers kept for parsing and audit (never secrets).</param>
public sealed record RawWebhook(string Provider, string Instance, DateTimeOffset ReceivedAt, byte[] Sha256, ReadOnlyMemory<byte> Body, string? ContentType, IReadOnlyDictionary<string, string> Headers);

/// <summary>The result of storing a raw webhook.</summary>
/// <param name="RawWebhookId">The stored row (the first one, for a duplicate).</param>
/// <param name="Duplicate">True when the same body was already stored for this provider and instance.</param>
public readonly record struct CaptureOutcome(long RawWebhookId, bool Duplicate)
{
    /// <summary>The storage handed the webhook's ingest job to this process's ingest worker (already leased): no wake-up needed.</summary>
    internal bool IngestHandedOver { get; init; }

    /// <summary>Equal when they name the same row the same way (<see cref="IngestHandedOver"/>, a wake-up hint, is not compared).</summary>
    public bool Equals(CaptureOutcome other) => RawWebhookId == other.RawWebhookId && Duplicate == other.Duplicate;

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(RawWebhookId, Duplicate);
}

/// <summary>The state of a raw webhook.</summary>
public enum RawWebhookStatus
{
    /// <summary>Stored; its ingest job is pending.</summary>
    Captured = 0,

    /// <summary>Parsed into events.</summary>
    Ingested = 1,

    /// <summary>No adapter could parse it; kept with the reason, reprocessable.</summary>
    Failed = 2,
}

/// <summary>A stored raw webhook.</summary>
public sealed record StoredRawWebhook
{
    /// <summary>The row id.</summary>
    public required long Id { get; init; }

    /// <summary>The provider.</summary>
    public required string Provider { get; init; }

    /// <summary>The instance.</summary>
    public required string Instance { get; init; }

    /// <summary>When it was first received.</summary>
    public DateTimeOffset ReceivedAt { get; init; }

    /// <summary>The body's SHA-256.</summary>
    public byte[] Sha256 { get; init; } = [];

    /// <summary>The body (empty in lists).</summary>
    public ReadOnlyMemory<byte> Body { get; init; }

    /// <summary>The Content-Type.</summary>
    public string? ContentType { get; init; }

    /// <summary>The kept headers.</summary>
    public IReadOnlyDictionary<string, string> Headers { get; init; } = new Dictionary<string, string>();

    /// <summary>The status.</summary>
    public RawWebhookStatus Status { get; init; }

    /// <summary>Why it failed.</summary>
    public string? Error { get; init; }

    /// <summary>How many times the same body was delivered again.</summary>
    public int Duplicates { get; init; }

    /// <summary>How many events it produced.</summary>
    public int EventCount { get; init; }

    /// <summary>When it was ingested or failed.</summary>
    public DateTimeOffset? ProcessedAt { get; init; }
}

/// <summary>A filter over raw webhooks.</summary>
public sealed record RawWebhookQuery
{
    /// <summary>Only this provider.</summary>
    public string? Provider { get; init; }

    /// <summary>Only this instance.</summary>
    public string? Instance { get; init; }

    /// <summary>Only this status.</summary>
    public RawWebhookStatus? Status { get; init; }

    /// <summary>At most this many (lists). Default 100.</summary>
    public int Limit { get; init; } = 100;
}

/// <summary>What ingest stored.</summary>
/// <param name="Stored">The new events, with their ids and sequence numbers, in payload order.</param>
/// <param name="Duplicates">The events whose dedupe key already existed.</param>
public sealed record IngestOutcome(IReadOnlyList<StoredInboxEvent> Stored, IReadOnlyList<InboxEvent> Duplicates)
{
    /// <summary>The storage enqueued no dispatch job that waits to be claimed (it handed them to this process's worker): no wake-up needed.</summary>
    internal bool DispatchHandedOver { get; init; }

    /// <summary>Equal when they hold the same events (<see cref="DispatchHandedOver"/>, a wake-up hint, is not compared).</summary>
    public bool Equals(IngestOutcome? other) => other is not null && Equals(Stored, other.Stored) && Equals(Duplicates, other.Duplicates);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Stored, Duplicates);
}

/// <summary>Where an event is in dispatch.</summary>
public enum EventDispatchStatus
{
    /// <summary>Waiting for (or in) dispatch.</summary>
    Pending = 0,

    /// <summary>Every handler ran.</summary>
    Dispatched = 1,

    /// <summary>Dispatch failed after its last attempt.</summary>
    Failed = 2,
}

/// <summary>A stored event.</summary>
/// <param name="Id">The event's id.</param>
/// <param name="Sequence">Its sequence number within its instance (1, 2, 3...).</param>
/// <param name="RawWebhookId">The raw webhook it came from.</param>
/// <param name="Event">The normalized event.</param>
/// <param name="DispatchStatus">Its dispatch status.</param>
public sealed record StoredInboxEvent(long Id, long Sequence, long RawWebhookId, InboxEvent Event, EventDispatchStatus DispatchStatus)
{
    /// <summary>When it was stored (ingested).</summary>
    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>Its media's state: <see cref="MediaStatus.None"/> when it has no media or the media pipeline is off.</summary>
    public EventMedia Media { get; init; } = EventMedia.None;

    /// <summary>How many deliveries of it failed so far.</summary>
    public int DispatchAttempts { get; init; }
}

/// <summary>What ingest does after storing an event.</summary>
/// <param name="Jobs">The jobs to enqueue with it (media).</param>
/// <param name="MediaPending">True when a media job was enqueued: the event's media starts <see cref="MediaStatus.Pending"/>.</param>
public sealed record EventFollowUp(IReadOnlyList<NewJob> Jobs, bool MediaPending)
{
    /// <summary>
    /// The job that delivers the event's chat (its queue, key and payload name the chat): enqueued with the event unless a
    /// job with the same queue, key and payload is still pending (not started yet), which will deliver this event too. The
    /// check and the enqueue happen under locks that keep a worker from starting that pending job meanwhile.
    /// </summary>
    public NewJob? Drain { get; init; }
}

/// <summary>Where an event's media is.</summary>
public enum MediaStatus
{
    /// <summary>No media, or the media pipeline is not enabled.</summary>
    None = 0,

    /// <summary>Being downloaded (or waiting to retry).</summary>
    Pending = 1,

    /// <summary>Stored in the media store.</summary>
    Stored = 2,

    /// <summary>Failed for good; the event went on with a placeholder.</summary>
    Failed = 3,
}

/// <summary>An event's media as stored.</summary>
/// <param name="Status">Where it is.</param>
/// <param name="Key">The media store key, once stored.</param>
/// <param name="Size">The size in bytes, once stored.</param>
/// <param name="MimeType">The MIME type.</param>
/// <param name="Sha256">The SHA-256 (lowercase hex), once stored.</param>
/// <param name="Error">Why it failed (or the last retryable error while pending).</param>
public sealed record EventMedia(MediaStatus Status, string? Key = null, long? Size = null, string? MimeType = null, string? Sha256 = null, string? Error = null)
{
    /// <summary>No media.</summary>
    public static EventMedia None { get; } = new(MediaStatus.None);
}

/// <summary>The connection state of an instance, as webhooks and checks report it.</summary>
public enum InstanceStatus
{
    /// <summary>Not known yet.</summary>
    Unknown = 0,

    /// <summary>Connected.</summary>
    Connected = 1,

    /// <summary>Reachable but not healthy.</summary>
    Degraded = 2,

    /// <summary>Disconnected.</summary>
    Disconnected = 3,
}

/// <summary>An instance's state.</summary>
/// <param name="Provider">The provider.</param>
/// <param name="Instance">The instance.</param>
/// <param name="Status">Its status.</param>
/// <param name="ChangedAt">When the status last changed.</param>
/// <param name="LastWebhookAt">When its last webhook was ingested.</param>
public sealed record InstanceState(string Provider, string Instance, InstanceStatus Status, DateTimeOffset ChangedAt, DateTimeOffset? LastWebhookAt);
