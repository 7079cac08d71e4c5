using System.Globalization;
using Inbox.Reliability.Capture;
using Inbox.Reliability.Diagnostics;
using Inbox.Reliability.Jobs;
using Inbox.Reliability.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Inbox.Reliability.Dispatch;

/// <summary>Delivers one stored event to every registered <see cref="IInboxEventHandler"/>, in the job's scope.</summary>
internal sealed class DispatchHandler(IInboxStore store, IServiceProvider services, ILogger<DispatchHandler> logger) : IJobHandler
{
    public async Task HandleAsync(JobContext job, CancellationToken cancellationToken)
    {
        var eventId = long.Parse(job.Payload, NumberStyles.None, CultureInfo.InvariantCulture);
        var stored = await store.GetEventAsync(eventId, cancellationToken).ConfigureAwait(false);
        if (stored is null) return; // purged
        var context = new InboxEventContext(stored.Id, stored.Sequence, stored.Event, job.Attempt);
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
            await store.MarkEventDispatchAsync(eventId, EventDispatchStatus.Failed, ex.GetType().Name + ": " + ex.Message, CancellationToken.None).ConfigureAwait(false);
            throw;
        }

        await store.MarkEventDispatchAsync(eventId, EventDispatchStatus.Dispatched, null, cancellationToken).ConfigureAwait(false);
        InboxTelemetry.EventsDispatched.Add(1, new KeyValuePair<string, object?>("provider", stored.Event.Provider));
    }
}
