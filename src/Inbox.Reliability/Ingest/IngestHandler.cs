using System.Globalization;
using System.Runtime.ExceptionServices;
using System.Security.Cryptography;
using System.Text;
using Inbox.Reliability.Capture;
using Inbox.Reliability.Diagnostics;
using Inbox.Reliability.Events;
using Inbox.Reliability.Jobs;
using Inbox.Reliability.Media;
using Inbox.Reliability.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Inbox.Reliability.Ingest;

/// <summary>
/// Turns raw webhooks into events: the provider's adapter parses them; a webhook's events, their sequence numbers, their
/// dispatch jobs and the webhook's new status are stored in one transaction (which a batch of webhooks shares). A payload
/// no adapter understands is marked failed with the reason and kept (reprocessable); storage errors retry the job.
/// </summary>
/// <remarks>
/// Arrival order and batches: in one process, one ingest job at a time works on an instance (<see cref="IngestGates"/>). It
/// reads every webhook of the instance that is still captured, oldest first (up to <see cref="BatchSize"/> at a time), parses
/// them and hands their saves to the storage in that order, until its own webhook is among them or behind them. The jobs of
/// the webhooks it took along find theirs no longer captured and end at once. So a burst is parsed and stored in batches
/// (one transaction holds many webhooks), and an instance's events reach dispatch in arrival order. Storages that implement
/// <see cref="IOrderedEventSaves"/> get a batch as one request (at most <see cref="MaxRowsPerSave"/> rows), so a write that
/// fails midway cannot let a later webhook's events commit before an earlier one's; a webhook whose events the storage
/// refuses for their data is marked failed there and the others go on. Across hosts the storage keeps the order: a save
/// of a webhook no longer captured (another host got there first) is a no-op.
/// </remarks>
internal sealed class IngestHandler(IInboxStore store, IEnumerable<IWebhookProvider> providers, QueueSignals signals, TimeProvider time, IOptions<InboxPipelineOptions> options, ILogger<IngestHandler> logger, IServiceProvider services, IngestGates gates)
    : IJobHandler
{
    /// <summary>Media is downloaded only when a media store is configured; otherwise references stay in the events as they came.</summary>
    private readonly bool _mediaEnabled = services.GetService(typeof(IMediaStore)) is not null;

    internal const int BatchSize = 500;

    public async Task HandleAsync(JobContext job, CancellationToken cancellationToken)
    {
        var rawId = long.Parse(job.Payload, NumberStyles.None, CultureInfo.InvariantCulture);
        string provider, instance;
        IReadOnlyList<StoredRawWebhook>? first = null;
        if (store is ICapturedBatchReads reads && !gates.AnyHeld)
        {
            // No ingest runs here now: read the webhook's instance's captured batch before taking its gate, in one round trip
            // (nothing when the webhook is no longer captured). While one runs, this job will likely wait for that instance's
            // gate, and whatever it read now would be read again then: it reads only the webhook.
            first = await reads.GetCapturedBatchOfAsync(rawId, BatchSize, cancellationToken).ConfigureAwait(false);
            if (first.Count == 0) return;
            (provider, instance) = (first[0].Provider, first[0].Instance);
        }
        else
        {
            var raw = await store.GetRawWebhookAsync(rawId, cancellationToken).ConfigureAwait(false);
            if (raw is not { Status: RawWebhookStatus.Captured }) return;
            (provider, instance) = (raw.Provider, raw.Instance);
        }

        var gate = gates.For(provider, instance);
        var entered = gate.WaitAsync(cancellationToken);

        // Another job of the instance had the gate: what was read before may be ingested by now, so read again. (A batch read
        // before a gate that was free is saved as read: a webhook another host ingested meanwhile is skipped by the store.)
        if (!entered.IsCompleted) first = null;
        await entered.ConfigureAwait(false);
        gates.Entered();
        try
        {
            while (true)
            {
                var batch = first ?? await store.GetCapturedRawWebhooksAsync(provider, instance, BatchSize, cancellationToken).ConfigureAwait(false);
                first = null;
                if (batch.Count > 0) await IngestInOrderAsync(batch, cancellationToken).ConfigureAwait(false);

                // Done once this job's webhook was in the batch or behind it (taken by an earlier batch, here or elsewhere).
                if (batch.Count < BatchSize || batch[^1].Id >= rawId) return;
            }
        }
        finally
        {
            gates.Leaving();
            gate.Release();
        }
    }

    private async Task IngestInOrderAsync(IReadOnlyList<StoredRawWebhook> batch, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var marks = new List<Task>();
        var parsed = new List<(StoredRawWebhook Raw, IReadOnlyList<InboxEvent> Events)>(batch.Count);
        foreach (var raw in batch)
        {
            var (events, failed) = Parse(raw, cancellationToken);
            if (events is not null) parsed.Add((raw, events));
            else marks.Add(failed!);
        }

        Exception? error = null;
        if (store is IOrderedEventSaves ordered)
        {
            // One request per chunk, so a failed write cannot let a later webhook's events in ahead of an earlier one's.
            for (var start = 0; start < parsed.Count && error is null;)
            {
                var end = start;
                for (var rows = 0; end < parsed.Count && (end == start || rows + 1 + parsed[end].Events.Count <= MaxRowsPerSave); end++) rows += 1 + parsed[end].Events.Count;
                var chunk = parsed.GetRange(start, end - start);
                IReadOnlyList<EventSaveResult> results;
                try
                {
                    results = await ordered.SaveEventsInOrderAsync(
                        chunk.Select(p => new EventSave(p.Raw.Id, p.Events, (id, e) => FollowUp(id, e, now))).ToList(), cancellationToken).ConfigureAwait(false);
                }
                catch (Exception ex)
                {
                    error = ex;
                    break;
                }

                for (var i = 0; i < chunk.Count; i++)
                {
                    var result = results[i];
                    if (result.Outcome is { } outcome) Report(chunk[i].Raw, outcome);
                    else if (result.MarkedFailed) CaptureLog.StorageRefused(logger, chunk[i].Raw.Id, chunk[i].Raw.Provider, chunk[i].Raw.Instance, result.Error?.Message ?? "");
                    else error ??= result.Error;
                }

                start = end;
            }
        }
        else
        {
            // Submitted one after another without waiting: the storage keeps their order (and may commit them together).
            var saves = parsed.Select(p => ReportAsync(p.Raw, store.SaveEventsAsync(p.Raw.Id, p.Events, (id, e) => FollowUp(id, e, now), cancellationToken))).ToList();
            try
            {
                await Task.WhenAll(saves).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                error = ex;
            }
        }

        await Task.WhenAll(marks).ConfigureAwait(false);
        if (error is not null) ExceptionDispatchInfo.Throw(error);
    }

    /// <summary>The most rows (a webhook and its events) ingest hands to the storage in one ordered request.</summary>
    internal const int MaxRowsPerSave = 2000;

    /// <summary>The webhook's events, or, when it cannot be parsed, the write that marks its raw row failed with the reason.</summary>
    private (IReadOnlyList<InboxEvent>? Events, Task? MarkedFailed) Parse(StoredRawWebhook raw, CancellationToken cancellationToken)
    {
        var adapter = providers.FirstOrDefault(p => string.Equals(p.Name, raw.Provider, StringComparison.OrdinalIgnoreCase));
        if (adapter is null)
        {
            CaptureLog.ProviderMissing(logger, raw.Id, raw.Provider);
            return (null, store.MarkRawWebhookFailedAsync(raw.Id, $"No webhook provider named \"{raw.Provider}\" is registered.", cancellationToken));
        }

        try
        {
            return (adapter.Parse(new WebhookRequest(raw.Provider, raw.Instance, raw.Body, raw.ReceivedAt) { Headers = raw.Headers }), null);
        }
        catch (WebhookParseException ex)
        {
            CaptureLog.ParseFailed(logger, raw.Id, raw.Provider, raw.Instance, ex.Message);
            return (null, store.MarkRawWebhookFailedAsync(raw.Id, ex.Message, cancellationToken));
        }
    }

    private EventFollowUp FollowUp(long id, InboxEvent e, DateTimeOffset now)
    {
        if (_mediaEnabled && HasMedia(e)) return new EventFollowUp([MediaJob(id, options.Value.Media.MaxAttempts, now)], true) { Drain = ChatJob(e, now) };
        return new EventFollowUp([], false) { Drain = ChatJob(e, now) };
    }

    private async Task ReportAsync(StoredRawWebhook raw, Task<IngestOutcome> saved) => Report(raw, await saved.ConfigureAwait(false));

    private void Report(StoredRawWebhook raw, IngestOutcome outcome)
    {
        var tags = new KeyValuePair<string, object?>("provider", raw.Provider);
        InboxTelemetry.EventsIngested.Add(outcome.Stored.Count, tags);
        foreach (var duplicate in outcome.Duplicates)
        {
            InboxTelemetry.EventDuplicates.Add(1, tags);
            CaptureLog.DuplicateEvent(logger, duplicate.DedupeKey, ContentHash(duplicate), raw.Id);
        }

        if (outcome.Stored.Count > 0 && !outcome.DispatchHandedOver) signals.Set(InboxQueues.Dispatch);
        if (_mediaEnabled && outcome.Stored.Any(e => e.Media.Status == MediaStatus.Pending)) signals.Set(InboxQueues.Media);
    }

    /// <summary>Dispatch keeps per-chat order: the ordering key is the provider, the instance and the chat (empty for events without a chat).</summary>
    internal static string ChatKey(InboxEvent inboxEvent) => inboxEvent.Provider + "|" + inboxEvent.Instance + "|" + (inboxEvent.ChatId ?? "");

    /// <summary>
    /// The job that delivers a chat's pending events in order (payload <see cref="ChatPayload"/>, key <see cref="ChatKey"/>):
    /// enqueued with an event unless one is still pending, so a chat that receives faster than it is delivered is
    /// delivered in runs, one job for many events. Failed deliveries are counted on the event, not the job, which retries
    /// only for storage errors (and never gives up: its events would wait for the chat's next message otherwise).
    /// </summary>
    internal static NewJob ChatJob(InboxEvent inboxEvent, DateTimeOffset now) =>
        new(InboxQueues.Dispatch, ChatPayload, ChatKey(inboxEvent), now, null, int.MaxValue, 0);

    internal const string ChatPayload = "chat";

    /// <summary>One event's delivery (a media update): same chat key, so in order with the chat's runs.</summary>
    internal static NewJob DispatchJob(long eventId, InboxEvent inboxEvent, int maxAttempts, DateTimeOffset now) => new(
        InboxQueues.Dispatch,
        eventId.ToString(CultureInfo.InvariantCulture),
        ChatKey(inboxEvent),
        now,
        null,
        maxAttempts,
        0);

    /// <summary>A media download job for a stored event.</summary>
    internal static NewJob MediaJob(long eventId, int maxAttempts, DateTimeOffset now) => new(
        InboxQueues.Media, eventId.ToString(CultureInfo.InvariantCulture), null, now, "media:" + eventId.ToString(CultureInfo.InvariantCulture), maxAttempts, 0);

    /// <summary>A second delivery of an event whose media ended after the event went out without it; same chat key, so in order.</summary>
    internal static NewJob MediaUpdateJob(long eventId, InboxEvent inboxEvent, int maxAttempts, DateTimeOffset now) =>
        DispatchJob(eventId, inboxEvent, maxAttempts, now) with
        {
            Payload = eventId.ToString(CultureInfo.InvariantCulture) + MediaUpdateSuffix,
            DedupeKey = "media-update:" + eventId.ToString(CultureInfo.InvariantCulture),
        };

    internal const string MediaUpdateSuffix = ":media";

    /// <summary>True for a message whose media the pipeline downloads.</summary>
    internal static bool HasMedia(InboxEvent inboxEvent) => inboxEvent.Kind == InboxEventKind.Message && inboxEvent.Media is not null;

    private static string ContentHash(InboxEvent inboxEvent) =>
        Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(InboxEventSerializer.Serialize(inboxEvent))))[..16].ToLowerInvariant();
}
