using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Inbox.Reliability.Capture;
using Inbox.Reliability.Diagnostics;
using Inbox.Reliability.Events;
using Inbox.Reliability.Jobs;
using Inbox.Reliability.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Inbox.Reliability.Ingest;

/// <summary>
/// Turns one raw webhook into events: the provider's adapter parses it; events, their sequence numbers and their
/// dispatch jobs are stored in one transaction. A payload no adapter understands is marked failed with the reason and
/// kept (reprocessable); storage errors retry the job.
/// </summary>
internal sealed class IngestHandler(IInboxStore store, IEnumerable<IWebhookProvider> providers, QueueSignals signals, TimeProvider time, IOptions<InboxPipelineOptions> options, ILogger<IngestHandler> logger)
    : IJobHandler
{
    public async Task HandleAsync(JobContext job, CancellationToken cancellationToken)
    {
        var rawId = long.Parse(job.Payload, NumberStyles.None, CultureInfo.InvariantCulture);
        var raw = await store.GetRawWebhookAsync(rawId, cancellationToken).ConfigureAwait(false);
        if (raw is null || raw.Status != RawWebhookStatus.Captured) return; // purged, or already done by an earlier attempt

        var adapter = providers.FirstOrDefault(p => string.Equals(p.Name, raw.Provider, StringComparison.OrdinalIgnoreCase));
        if (adapter is null)
        {
            CaptureLog.ProviderMissing(logger, rawId, raw.Provider);
            await store.MarkRawWebhookFailedAsync(rawId, $"No webhook provider named \"{raw.Provider}\" is registered.", cancellationToken).ConfigureAwait(false);
            return;
        }

        IReadOnlyList<InboxEvent> events;
        try
        {
            events = adapter.Parse(new WebhookRequest(raw.Provider, raw.Instance, raw.Body, raw.ReceivedAt) { Headers = raw.Headers });
        }
        catch (WebhookParseException ex)
        {
            CaptureLog.ParseFailed(logger, rawId, raw.Provider, raw.Instance, ex.Message);
            await store.MarkRawWebhookFailedAsync(rawId, ex.Message, cancellationToken).ConfigureAwait(false);
            return;
        }

        var maxAttempts = options.Value.DispatchMaxAttempts;
        var now = time.GetUtcNow();
        var outcome = await store.SaveEventsAsync(rawId, events, (id, e) => DispatchJob(id, e, maxAttempts, now), cancellationToken).ConfigureAwait(false);
        var tags = new KeyValuePair<string, object?>("provider", raw.Provider);
        InboxTelemetry.EventsIngested.Add(outcome.Stored.Count, tags);
        foreach (var duplicate in outcome.Duplicates)
        {
            InboxTelemetry.EventDuplicates.Add(1, tags);
            CaptureLog.DuplicateEvent(logger, duplicate.DedupeKey, ContentHash(duplicate), rawId);
        }

        if (outcome.Stored.Count > 0) signals.Set(InboxQueues.Dispatch);
    }

    /// <summary>Dispatch keeps per-chat order: the ordering key is the instance and the chat (the instance alone for events without a chat).</summary>
    internal static NewJob DispatchJob(long eventId, InboxEvent inboxEvent, int maxAttempts, DateTimeOffset now) => new(
        InboxQueues.Dispatch,
        eventId.ToString(CultureInfo.InvariantCulture),
        inboxEvent.Provider + "|" + inboxEvent.Instance + "|" + (inboxEvent.ChatId ?? ""),
        now,
        null,
        maxAttempts,
        0);

    private static string ContentHash(InboxEvent inboxEvent) =>
        Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(InboxEventSerializer.Serialize(inboxEvent))))[..16].ToLowerInvariant();
}
