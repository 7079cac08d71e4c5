namespace Inbox.Reliability.Media;

/// <summary>
/// How inbound media is downloaded and how long a chat waits for it. Set through
/// <c>AddWebhookPipeline(o =&gt; o.Media...)</c>; used once a media store is configured (<c>UseFileSystemMediaStore</c>,
/// <c>UseS3MediaStore</c>).
/// </summary>
public sealed class InboxMediaOptions
{
    /// <summary>The largest media accepted, in bytes; a larger one fails (visibly) without being stored. Default 100 MB (Meta's document limit).</summary>
    public long MaxBytes { get; set; } = 100L * 1024 * 1024;

    /// <summary>Download attempts before a media fails for good (retryable errors only; 401/403/404/410, too large and hash mismatches fail at once), with exponential backoff from 1 second. Default 10 (about 17 minutes).</summary>
    public int MaxAttempts { get; set; } = 10;

    /// <summary>The delay before a retry (a provider's Retry-After is honoured when longer). Default: 1 second, doubling, at most 1 hour.</summary>
    public Jobs.RetryBackoffOptions Backoff { get; } = new();

    /// <summary>How many media are downloaded at once. Default 4.</summary>
    public int Concurrency { get; set; } = 4;

    /// <summary>
    /// How long an event whose media is still downloading holds its chat: the events behind it wait, in order. After this,
    /// the event is dispatched with its media still pending (a placeholder) and the download keeps retrying. Default 30 seconds.
    /// </summary>
    public TimeSpan DispatchWait { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// When a media ends (stored or failed) after its event was dispatched without it, deliver the event again as a media
    /// update (<c>InboxEventContext.IsMediaUpdate</c>), in chat order. Default true.
    /// </summary>
    public bool RedeliverLateMedia { get; set; } = true;

    /// <summary>The expiry of read URLs the pipeline hands out (the HTTP forwarder's <c>media.url</c>). Default 1 hour.</summary>
    public TimeSpan ReadUrlExpiry { get; set; } = TimeSpan.FromHours(1);

    /// <summary>The most time one download attempt may take, end to end (large files on slow links need more). Default 30 minutes.</summary>
    public TimeSpan AttemptTimeout { get; set; } = TimeSpan.FromMinutes(30);

    internal IEnumerable<string> Validate()
    {
        foreach (var error in Backoff.Validate("AddWebhookPipeline: Media")) yield return error;
        if (MaxBytes < 1) yield return $"AddWebhookPipeline: Media.MaxBytes must be positive (was {MaxBytes}).";
        if (MaxAttempts < 1) yield return $"AddWebhookPipeline: Media.MaxAttempts must be at least 1 (was {MaxAttempts}).";
        if (Concurrency is < 1 or > 256) yield return $"AddWebhookPipeline: Media.Concurrency must be between 1 and 256 (was {Concurrency}).";
        if (DispatchWait < TimeSpan.Zero) yield return $"AddWebhookPipeline: Media.DispatchWait must not be negative (was {DispatchWait}).";
        if (ReadUrlExpiry < TimeSpan.FromSeconds(1)) yield return $"AddWebhookPipeline: Media.ReadUrlExpiry must be at least 1 second (was {ReadUrlExpiry}).";
        if (AttemptTimeout < TimeSpan.FromSeconds(1)) yield return $"AddWebhookPipeline: Media.AttemptTimeout must be at least 1 second (was {AttemptTimeout}).";
    }
}
