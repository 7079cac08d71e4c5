using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Inbox.Reliability.Diagnostics;

/// <summary>The names of the library's <see cref="Meter"/> and <see cref="ActivitySource"/>: subscribe to them in OpenTelemetry.</summary>
public static class InboxTelemetry
{
    /// <summary>The name of the meter and of the activity source: <c>Inbox.Reliability</c>.</summary>
    public const string Name = "Inbox.Reliability";

    internal static readonly ActivitySource ActivitySource = new(Name);
    internal static readonly Meter Meter = new(Name);

    internal static readonly Counter<long> JobsEnqueued = Meter.CreateCounter<long>("inbox.jobs.enqueued", "{job}", "Jobs added to a queue (duplicates excluded)");
    internal static readonly Counter<long> JobsStarted = Meter.CreateCounter<long>("inbox.jobs.started", "{job}", "Job attempts started");
    internal static readonly Counter<long> JobsCompleted = Meter.CreateCounter<long>("inbox.jobs.completed", "{job}", "Jobs completed");
    internal static readonly Counter<long> JobsRetried = Meter.CreateCounter<long>("inbox.jobs.retried", "{job}", "Job attempts that failed and were scheduled to retry");
    internal static readonly Counter<long> JobsFailed = Meter.CreateCounter<long>("inbox.jobs.failed", "{job}", "Jobs dead-lettered");
    internal static readonly Counter<long> JobsCanceled = Meter.CreateCounter<long>("inbox.jobs.canceled", "{job}", "Jobs canceled while running");
    internal static readonly Counter<long> LeasesLost = Meter.CreateCounter<long>("inbox.jobs.leases_lost", "{job}", "Attempts whose lease was lost before the outcome was recorded");
    internal static readonly Histogram<double> JobDuration = Meter.CreateHistogram<double>("inbox.jobs.duration", "s", "How long handlers ran");
    internal static readonly Counter<long> WebhooksCaptured = Meter.CreateCounter<long>("inbox.webhooks.captured", "{webhook}", "Webhooks made durable");
    internal static readonly Counter<long> WebhookDuplicates = Meter.CreateCounter<long>("inbox.webhooks.duplicates", "{webhook}", "Webhooks whose body was already stored (provider retries)");
    internal static readonly Counter<long> WebhooksRejected = Meter.CreateCounter<long>("inbox.webhooks.rejected", "{webhook}", "Webhooks refused: signature, size, empty body, unknown provider");
    internal static readonly Counter<long> WebhooksFailed = Meter.CreateCounter<long>("inbox.webhooks.storage_failures", "{webhook}", "Webhooks answered 503 because storage failed");
    internal static readonly Counter<long> EventsIngested = Meter.CreateCounter<long>("inbox.events.ingested", "{event}", "Events stored by ingest");
    internal static readonly Counter<long> EventDuplicates = Meter.CreateCounter<long>("inbox.events.duplicates", "{event}", "Events whose dedupe key was already stored");
    internal static readonly Counter<long> EventsDispatched = Meter.CreateCounter<long>("inbox.events.dispatched", "{event}", "Events delivered to every handler");
    internal static readonly Counter<long> MediaBytes = Meter.CreateCounter<long>("inbox.media.bytes", "By", "Media bytes written to the media store");
    internal static readonly Counter<long> MediaFailed = Meter.CreateCounter<long>("inbox.media.failed", "{media}", "Media that failed for good (the event went on with a placeholder)");
    internal static readonly Histogram<double> StartDelay = Meter.CreateHistogram<double>("inbox.jobs.start_delay", "s", "From when a job was due to when its attempt started");
}
