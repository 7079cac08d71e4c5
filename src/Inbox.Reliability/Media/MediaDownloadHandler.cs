using System.Globalization;
using Inbox.Reliability.Capture;
using Inbox.Reliability.Diagnostics;
using Inbox.Reliability.Dispatch;
using Inbox.Reliability.Events;
using Inbox.Reliability.Ingest;
using Inbox.Reliability.Jobs;
using Inbox.Reliability.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Inbox.Reliability.Media;

/// <summary>
/// One media job per event with media: the provider's downloader opens the file as a stream, the media store writes it
/// under <c>{instance}/{yyyy}/{MM}/{dd}/{eventId}.{ext}</c>, and the event records where it is. Retryable failures
/// (timeouts, connection errors, 5xx, 429 after its Retry-After) go back to the queue's backoff; fatal ones
/// (401/403/404/410, too large, hash mismatch) and the last attempt mark the media failed, visibly.
/// </summary>
internal sealed class MediaDownloadHandler(
    IInboxStore store,
    IMediaStore media,
    IEnumerable<IMediaDownloader> downloaders,
    TimeProvider time,
    IOptions<InboxPipelineOptions> options,
    QueueSignals signals,
    ILogger<MediaDownloadHandler> logger) : IJobHandler
{
    public async Task HandleAsync(JobContext job, CancellationToken cancellationToken)
    {
        var eventId = long.Parse(job.Payload, NumberStyles.None, CultureInfo.InvariantCulture);
        var stored = await store.GetEventAsync(eventId, cancellationToken).ConfigureAwait(false);
        if (stored is null || stored.Media.Status is MediaStatus.Stored or MediaStatus.Failed) return; // purged, or done by an earlier run
        var inboxEvent = stored.Event;
        var reference = inboxEvent.Media;
        if (reference is null)
        {
            await FinishAsync(stored, new EventMedia(MediaStatus.Failed, Error: "The event has no media reference."), cancellationToken).ConfigureAwait(false);
            return;
        }

        var settings = options.Value.Media;
        var downloader = downloaders.FirstOrDefault(d => string.Equals(d.Provider, inboxEvent.Provider, StringComparison.OrdinalIgnoreCase));
        if (downloader is null)
        {
            await FailAsync(stored, job, $"No media downloader is registered for provider \"{inboxEvent.Provider}\".", cancellationToken).ConfigureAwait(false);
            return;
        }

        var key = MediaKeys.For(inboxEvent.Instance, stored.CreatedAt, eventId, reference.MimeType);
        try
        {
            // An object under this event's key was written whole by an earlier run (puts are atomic): keep it when it
            // matches the provider's hash, or when the provider gives none.
            var existing = await media.GetAsync(key, cancellationToken).ConfigureAwait(false);
            if (existing is not null && HashMatches(reference.Sha256, existing.Sha256) != false)
            {
                await StoredAsync(stored, existing, reference.MimeType, cancellationToken).ConfigureAwait(false);
                return;
            }

            var download = await downloader.OpenAsync(new MediaDownloadRequest(inboxEvent.Instance, inboxEvent, reference, job.Attempt), cancellationToken).ConfigureAwait(false);
            MediaObject written;
            string? expectedHash;
            await using (download.ConfigureAwait(false))
            {
                if (download.Length > settings.MaxBytes) throw new MediaTooLargeException(settings.MaxBytes);
                var mime = reference.MimeType ?? download.ContentType;
                var limited = new MediaSizeLimitStream(download.Content, settings.MaxBytes);
                written = await media.PutAsync(key, limited, mime, cancellationToken).ConfigureAwait(false);
                expectedHash = download.Sha256Base64 ?? reference.Sha256;
            }

            if (HashMatches(expectedHash, written.Sha256) == false)
            {
                await media.DeleteAsync(key, CancellationToken.None).ConfigureAwait(false);
                await FailAsync(stored, job, "The downloaded file does not match the SHA-256 the provider gave.", cancellationToken).ConfigureAwait(false);
                return;
            }

            InboxTelemetry.MediaBytes.Add(written.Size, new KeyValuePair<string, object?>("provider", inboxEvent.Provider));
            await StoredAsync(stored, written, reference.MimeType, cancellationToken).ConfigureAwait(false);
        }
        catch (MediaTooLargeException ex)
        {
            await FailAsync(stored, job, ex.Message, cancellationToken).ConfigureAwait(false);
        }
        catch (MediaDownloadException ex) when (!ex.Retryable)
        {
            await FailAsync(stored, job, ex.Message, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            // Retryable: a timeout, a connection error, 5xx, 429, or the media store being down.
            var reason = Describe(ex);
            if (job.Attempt >= job.MaxAttempts)
            {
                await FailAsync(stored, job, $"Gave up after {job.Attempt} attempts: {reason}", cancellationToken).ConfigureAwait(false);
                return;
            }

            MediaLog.Retrying(logger, eventId, inboxEvent.Provider, job.Attempt, job.MaxAttempts, reason);
            await store.SetMediaAsync(eventId, new EventMedia(MediaStatus.Pending, MimeType: reference.MimeType, Error: reason), null, CancellationToken.None).ConfigureAwait(false);
            throw new JobRetryLaterException(ex is MediaDownloadException { RetryAfter: { } after } ? after : TimeSpan.Zero, reason, ex);
        }
    }

    /// <summary>True or false when both hashes are known (the provider's base64 or hex against the store's hex), null otherwise.</summary>
    internal static bool? HashMatches(string? providerHash, string? storedHex)
    {
        if (string.IsNullOrWhiteSpace(providerHash) || string.IsNullOrEmpty(storedHex)) return null;
        var expected = providerHash.Trim();
        if (expected.Length == 64 && expected.All(Uri.IsHexDigit)) return string.Equals(expected, storedHex, StringComparison.OrdinalIgnoreCase);
        try
        {
            return string.Equals(Convert.ToHexString(Convert.FromBase64String(expected)), storedHex, StringComparison.OrdinalIgnoreCase);
        }
        catch (FormatException)
        {
            return null; // not a hash we can read: nothing to compare
        }
    }

    private Task StoredAsync(StoredInboxEvent stored, MediaObject written, string? mime, CancellationToken cancellationToken)
    {
        MediaLog.Stored(logger, stored.Id, stored.Event.Provider, written.Size);
        return FinishAsync(stored, new EventMedia(MediaStatus.Stored, written.Key, written.Size, mime ?? written.ContentType, written.Sha256), cancellationToken);
    }

    private async Task FailAsync(StoredInboxEvent stored, JobContext job, string reason, CancellationToken cancellationToken)
    {
        MediaLog.Failed(logger, stored.Id, stored.Event.Provider, job.Attempt, reason);
        InboxTelemetry.MediaFailed.Add(1, new KeyValuePair<string, object?>("provider", stored.Event.Provider));
        await FinishAsync(stored, new EventMedia(MediaStatus.Failed, MimeType: stored.Event.Media?.MimeType, Error: reason), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Records the media's end state. When the event was already dispatched after its wait ran out (so without it), the
    /// update is delivered again in chat order; dispatch does the same check from its side after delivering without the
    /// media, so one of the two always sees the other (both may: the update's dedupe key keeps it single while pending).
    /// </summary>
    private async Task FinishAsync(StoredInboxEvent stored, EventMedia result, CancellationToken cancellationToken)
    {
        await store.SetMediaAsync(stored.Id, result, null, CancellationToken.None).ConfigureAwait(false);
        var settings = options.Value;
        if (!settings.Media.RedeliverLateMedia) return;
        if (time.GetUtcNow() < stored.CreatedAt + settings.Media.DispatchWait) return; // dispatch is still waiting for it
        var now = await store.GetEventAsync(stored.Id, cancellationToken).ConfigureAwait(false);
        if (now is { DispatchStatus: EventDispatchStatus.Dispatched })
        {
            await store.SetMediaAsync(stored.Id, result, IngestHandler.MediaUpdateJob(stored.Id, stored.Event, settings.DispatchMaxAttempts, time.GetUtcNow()), CancellationToken.None).ConfigureAwait(false);
            signals.Set(InboxQueues.Dispatch);
        }
    }

    private static string Describe(Exception ex)
    {
        var text = ex is MediaDownloadException or MediaObjectNotFoundException ? ex.Message : ex.GetType().Name + ": " + ex.Message;
        return text.Length <= 500 ? text : text[..500];
    }
}
