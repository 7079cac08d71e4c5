using System.Globalization;
using Inbox.Reliability.Capture;
using Inbox.Reliability.Diagnostics;
using Inbox.Reliability.Ingest;
using Inbox.Reliability.Jobs;
using Inbox.Reliability.Media;
using Inbox.Reliability.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Inbox.Reliability.Dispatch;

/// <summary>
/// Delivers one stored event to every registered <see cref="IInboxEventHandler"/>, in the job's scope. An event whose
/// media is still downloading is put back (its chat waits behind it) until the media ends or <c>Media.DispatchWait</c>
/// runs out; then it goes with its media pending, and a media update follows when the download ends.
/// </summary>
internal sealed class DispatchHandler(IInboxStore store, IServiceProvider services, TimeProvider time, IOptions<InboxPipelineOptions> options, QueueSignals signals, ILogger<DispatchHandler> logger) : IJobHandler
{
    private static readonly TimeSpan MinMediaPoll = TimeSpan.FromMilliseconds(50);
    private static readonly TimeSpan MaxMediaPoll = TimeSpan.FromSeconds(2);

    public async Task HandleAsync(JobContext job, CancellationToken cancellationToken)
    {
        var payload = job.Payload;
        var isMediaUpdate = payload.EndsWith(IngestHandler.MediaUpdateSuffix, StringComparison.Ordinal);
        var eventId = long.Parse(isMediaUpdate ? payload[..^IngestHandler.MediaUpdateSuffix.Length] : payload, NumberStyles.None, CultureInfo.InvariantCulture);
        var stored = await store.GetEventAsync(eventId, cancellationToken).ConfigureAwait(false);
        if (stored is null) return; // purged

        var settings = options.Value;
        var withoutMedia = false;
        if (!isMediaUpdate && stored.Media.Status == MediaStatus.Pending)
        {
            var now = time.GetUtcNow();
            var deadline = stored.CreatedAt + settings.Media.DispatchWait;
            if (now < deadline)
            {
                // Poll the media's state more slowly the longer it takes; never past the deadline.
                var waited = now - stored.CreatedAt;
                var poll = TimeSpan.FromTicks(Math.Clamp(waited.Ticks / 4, MinMediaPoll.Ticks, MaxMediaPoll.Ticks));
                throw new JobSnoozedException(now + poll < deadline ? now + poll : deadline);
            }

            MediaLog.DispatchedWithoutMedia(logger, eventId, settings.Media.DispatchWait);
            withoutMedia = true;
        }

        var context = new InboxEventContext(stored.Id, stored.Sequence, stored.Event, job.Attempt, stored.Media, isMediaUpdate, services.GetService<IMediaStore>(), settings.Media.ReadUrlExpiry);
        try
        {
            foreach (var handler in services.GetServices<IInboxEventHandler>())
            {
                await handler.HandleAsync(context, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (job.Attempt >= job.MaxAttempts && ex is not OperationCanceledException)
        {
            CaptureLog.DispatchFailed(logger, eventId, stored.Event.DedupeKey, job.Attempt, ex);
            if (!isMediaUpdate) await store.MarkEventDispatchAsync(eventId, EventDispatchStatus.Failed, ex.GetType().Name + ": " + ex.Message, CancellationToken.None).ConfigureAwait(false);
            throw;
        }

        if (isMediaUpdate) return;
        await store.MarkEventDispatchAsync(eventId, EventDispatchStatus.Dispatched, null, cancellationToken).ConfigureAwait(false);
        InboxTelemetry.EventsDispatched.Add(1, new KeyValuePair<string, object?>("provider", stored.Event.Provider));

        // Delivered without its media: if the download ended meanwhile, the media handler may have looked before this event
        // was marked dispatched, so enqueue the update from here (the media handler does the same check from its side).
        if (withoutMedia && settings.Media.RedeliverLateMedia)
        {
            var after = await store.GetEventAsync(eventId, cancellationToken).ConfigureAwait(false);
            if (after is { Media.Status: MediaStatus.Stored or MediaStatus.Failed })
            {
                await store.SetMediaAsync(eventId, after.Media, IngestHandler.MediaUpdateJob(eventId, stored.Event, settings.DispatchMaxAttempts, time.GetUtcNow()), CancellationToken.None).ConfigureAwait(false);
                signals.Set(InboxQueues.Dispatch);
            }
        }
    }
}
