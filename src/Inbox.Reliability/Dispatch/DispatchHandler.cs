using System.Globalization;
using Inbox.Reliability.Capture;
using Inbox.Reliability.Diagnostics;
using Inbox.Reliability.Ingest;
using Inbox.Reliability.Jobs;
using Inbox.Reliability.Media;
using Inbox.Reliability.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Inbox.Reliability.Dispatch;

/// <summary>
/// Delivers events to every registered <see cref="IInboxEventHandler"/>, in the job's scope. A chat's job
/// (<see cref="IngestHandler.ChatJob"/>) delivers the chat's pending events one after another, oldest first, until none is
/// left; a job for one event delivers a media update. An event whose media is still downloading holds its chat (the job
/// is put back) until the media ends or <c>Media.DispatchWait</c> runs out; then it goes with its media pending, and a
/// media update follows when the download ends. A failed delivery is counted on the event and holds the chat (the job is
/// put back for the dispatch queue's backoff) until it succeeds or, after <c>DispatchMaxAttempts</c>, is marked failed
/// and the chat goes on.
/// </summary>
internal sealed class DispatchHandler(
    IInboxStore store,
    IServiceProvider services,
    TimeProvider time,
    IOptions<InboxPipelineOptions> options,
    QueueSignals signals,
    IEnumerable<JobHandlerRegistration> registrations,
    ILogger<DispatchHandler> logger) : IJobHandler
{
    private const int RunBatch = 50;
    private static readonly TimeSpan MinMediaPoll = TimeSpan.FromMilliseconds(50);
    private static readonly TimeSpan MaxMediaPoll = TimeSpan.FromSeconds(2);

    public async Task HandleAsync(JobContext job, CancellationToken cancellationToken)
    {
        if (job.Payload == IngestHandler.ChatPayload)
        {
            await DeliverChatAsync(job, cancellationToken).ConfigureAwait(false);
            return;
        }

        var payload = job.Payload;
        var isMediaUpdate = payload.EndsWith(IngestHandler.MediaUpdateSuffix, StringComparison.Ordinal);
        var eventId = long.Parse(isMediaUpdate ? payload[..^IngestHandler.MediaUpdateSuffix.Length] : payload, NumberStyles.None, CultureInfo.InvariantCulture);
        var stored = await store.GetEventAsync(eventId, cancellationToken).ConfigureAwait(false);
        if (stored is null) return; // purged
        if (!isMediaUpdate && stored.DispatchStatus != EventDispatchStatus.Pending) return; // delivered by its chat's job

        var withoutMedia = !isMediaUpdate && HoldForMedia(stored);
        try
        {
            await DeliverAsync(stored, job.Attempt, isMediaUpdate, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (job.Attempt >= job.MaxAttempts && ex is not OperationCanceledException)
        {
            CaptureLog.DispatchFailed(logger, eventId, stored.Event.DedupeKey, job.Attempt, ex);
            if (!isMediaUpdate) await store.MarkEventDispatchAsync(eventId, EventDispatchStatus.Failed, Describe(ex), CancellationToken.None).ConfigureAwait(false);
            throw;
        }

        if (!isMediaUpdate) await DeliveredAsync(stored, withoutMedia, cancellationToken).ConfigureAwait(false);
    }

    private async Task DeliverChatAsync(JobContext job, CancellationToken cancellationToken)
    {
        var (provider, instance, chatId) = ParseChatKey(job.Key);
        var settings = options.Value;

        // A long run yields (put back at once, nothing counted, still the chat's head) well before the attempt's timeout.
        var yieldAt = time.GetUtcNow() + RunBudget;
        while (true)
        {
            var pending = await store.GetPendingEventsAsync(provider, instance, chatId, RunBatch, cancellationToken).ConfigureAwait(false);
            if (pending.Count == 0) return;
            foreach (var stored in pending)
            {
                if (time.GetUtcNow() >= yieldAt) throw new JobSnoozedException(time.GetUtcNow());
                var withoutMedia = HoldForMedia(stored);
                var attempt = stored.DispatchAttempts + 1;
                try
                {
                    await DeliverAsync(stored, attempt, false, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is not OperationCanceledException || services.GetService<IHostApplicationLifetime>()?.ApplicationStopping.IsCancellationRequested != true)
                {
                    // Counted on the event (a timeout too); a shutdown puts the job back without counting anything.
                    var error = Describe(ex);
                    var attempts = await store.RecordDispatchFailureAsync(stored.Id, error, CancellationToken.None).ConfigureAwait(false);
                    if (attempts >= settings.DispatchMaxAttempts)
                    {
                        CaptureLog.DispatchFailed(logger, stored.Id, stored.Event.DedupeKey, attempts, ex);
                        await store.MarkEventDispatchAsync(stored.Id, EventDispatchStatus.Failed, error, CancellationToken.None).ConfigureAwait(false);
                        continue;
                    }

                    var retryAt = time.GetUtcNow() + Backoff.DelayFor(attempts, Random.Shared.NextDouble());
                    CaptureLog.DispatchRetrying(logger, stored.Id, stored.Event.DedupeKey, attempts, settings.DispatchMaxAttempts, retryAt, ex);
                    throw new JobSnoozedException(retryAt);
                }

                await DeliveredAsync(stored, withoutMedia, cancellationToken).ConfigureAwait(false);
            }

            if (pending.Count < RunBatch) return;
        }
    }

    private readonly JobHandlerOptions _queueOptions = registrations.FirstOrDefault(r => r.Queue == InboxQueues.Dispatch)?.Options ?? new JobHandlerOptions();

    /// <summary>The dispatch queue's backoff (<c>AddWebhookPipeline</c> sets it up), used between failed deliveries of one event.</summary>
    private RetryBackoffOptions Backoff => _queueOptions.Backoff;

    /// <summary>How long one run of a chat goes on: 30 seconds, or half the dispatch queue's attempt timeout when that is shorter.</summary>
    private TimeSpan RunBudget => _queueOptions.Timeout == Timeout.InfiniteTimeSpan || _queueOptions.Timeout > MaxRun * 2 ? MaxRun : _queueOptions.Timeout / 2;

    private static readonly TimeSpan MaxRun = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Puts the job back while the event's media is pending and <c>Media.DispatchWait</c> has not run out; returns true
    /// when the event goes without its media (the wait ran out).
    /// </summary>
    private bool HoldForMedia(StoredInboxEvent stored)
    {
        if (stored.Media.Status != MediaStatus.Pending) return false;
        var wait = options.Value.Media.DispatchWait;
        var now = time.GetUtcNow();
        var deadline = stored.CreatedAt + wait;
        if (now < deadline)
        {
            // Poll the media's state more slowly the longer it takes; never past the deadline.
            var waited = now - stored.CreatedAt;
            var poll = TimeSpan.FromTicks(Math.Clamp(waited.Ticks / 4, MinMediaPoll.Ticks, MaxMediaPoll.Ticks));
            throw new JobSnoozedException(now + poll < deadline ? now + poll : deadline);
        }

        MediaLog.DispatchedWithoutMedia(logger, stored.Id, wait);
        return true;
    }

    private async Task DeliverAsync(StoredInboxEvent stored, int attempt, bool isMediaUpdate, CancellationToken cancellationToken)
    {
        var settings = options.Value;
        var context = new InboxEventContext(stored.Id, stored.Sequence, stored.Event, attempt, stored.Media, isMediaUpdate, services.GetService<IMediaStore>(), settings.Media.ReadUrlExpiry);

        // Each event in a scope of its own, as if it had a job of its own.
        var scope = services.GetRequiredService<IServiceScopeFactory>().CreateAsyncScope();
        await using (scope.ConfigureAwait(false))
        {
            foreach (var handler in scope.ServiceProvider.GetServices<IInboxEventHandler>())
            {
                await handler.HandleAsync(context, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private async Task DeliveredAsync(StoredInboxEvent stored, bool withoutMedia, CancellationToken cancellationToken)
    {
        var settings = options.Value;
        await store.MarkEventDispatchAsync(stored.Id, EventDispatchStatus.Dispatched, null, cancellationToken).ConfigureAwait(false);
        InboxTelemetry.EventsDispatched.Add(1, new KeyValuePair<string, object?>("provider", stored.Event.Provider));

        // Delivered without its media: if the download ended meanwhile, the media handler may have looked before this event
        // was marked dispatched, so enqueue the update from here (the media handler does the same check from its side).
        if (withoutMedia && settings.Media.RedeliverLateMedia)
        {
            var after = await store.GetEventAsync(stored.Id, cancellationToken).ConfigureAwait(false);
            if (after is { Media.Status: MediaStatus.Stored or MediaStatus.Failed })
            {
                await store.SetMediaAsync(stored.Id, after.Media, IngestHandler.MediaUpdateJob(stored.Id, stored.Event, settings.DispatchMaxAttempts, time.GetUtcNow()), CancellationToken.None).ConfigureAwait(false);
                signals.Set(InboxQueues.Dispatch);
            }
        }
    }

    private static string Describe(Exception ex) => ex.GetType().Name + ": " + ex.Message;

    /// <summary>Splits <see cref="IngestHandler.ChatKey"/>: provider and instance names cannot hold '|'; the chat id is the rest.</summary>
    private static (string Provider, string Instance, string ChatId) ParseChatKey(string? key)
    {
        var parts = (key ?? throw new InvalidOperationException("A chat dispatch job has no key.")).Split('|', 3);
        if (parts.Length != 3) throw new InvalidOperationException($"A chat dispatch job's key is not provider|instance|chat (was \"{key}\").");
        return (parts[0], parts[1], parts[2]);
    }
}
