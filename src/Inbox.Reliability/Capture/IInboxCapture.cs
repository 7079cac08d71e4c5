using Inbox.Reliability.Events;

namespace Inbox.Reliability.Capture;

/// <summary>
/// Captures provider webhooks: checks authenticity and size, makes the raw body durable with its ingest job, and only then
/// answers. Use it from any host; ASP.NET Core apps map it with <c>app.MapInboxWebhooks("/webhooks")</c>.
/// </summary>
public interface IInboxCapture
{
    /// <summary>Captures one webhook. Never throws for bad input or a storage outage: the result says what to answer.</summary>
    Task<CaptureResult> CaptureAsync(string provider, string instance, ReadOnlyMemory<byte> body, IReadOnlyDictionary<string, string> headers, CancellationToken cancellationToken = default);

    /// <summary>Captures one webhook with its query string values too (for providers that put a secret in the URL).</summary>
    Task<CaptureResult> CaptureAsync(WebhookRequest request, CancellationToken cancellationToken = default);

    /// <summary>Answers a provider's subscription handshake (Meta's GET with <c>hub.challenge</c>).</summary>
    WebhookChallengeResult AnswerChallenge(WebhookChallengeRequest request);

    /// <summary>
    /// Parses again the raw webhooks that failed (no adapter understood them), for example after an upgrade: each matching
    /// failed row goes back to captured with a new ingest job. Returns how many.
    /// </summary>
    Task<int> ReprocessRawAsync(Storage.RawWebhookQuery filter, CancellationToken cancellationToken = default);
}

/// <summary>What became of a captured webhook, and the HTTP answer it calls for.</summary>
public enum CaptureStatus
{
    /// <summary>Stored (durable); answer 200.</summary>
    Stored = 0,

    /// <summary>The same body was already stored (a provider retry); counted; answer 200.</summary>
    Duplicate = 1,

    /// <summary>Bad or missing signature or secret; not stored; answer 401.</summary>
    Unauthorized = 2,

    /// <summary>Over the size limit; not stored; answer 413.</summary>
    PayloadTooLarge = 3,

    /// <summary>Empty body; not stored; answer 400.</summary>
    EmptyBody = 4,

    /// <summary>No adapter for that provider name; answer 404.</summary>
    UnknownProvider = 5,

    /// <summary>Storage failed; not stored; answer 503 with Retry-After so the provider retries.</summary>
    StorageUnavailable = 6,

    /// <summary>The instance name is not acceptable (characters, length); answer 400.</summary>
    InvalidInstance = 7,
}

/// <summary>The result of a capture.</summary>
/// <param name="Status">What happened.</param>
/// <param name="RawWebhookId">The stored row, for Stored and Duplicate.</param>
/// <param name="Reason">Why, when not stored (never holds secrets or the body).</param>
public sealed record CaptureResult(CaptureStatus Status, long? RawWebhookId = null, string? Reason = null)
{
    /// <summary>True when the webhook is durable (answer 2xx).</summary>
    public bool IsStored => Status is CaptureStatus.Stored or CaptureStatus.Duplicate;

    /// <summary>The HTTP status code to answer with.</summary>
    public int HttpStatusCode => Status switch
    {
        CaptureStatus.Stored or CaptureStatus.Duplicate => 200,
        CaptureStatus.Unauthorized => 401,
        CaptureStatus.PayloadTooLarge => 413,
        CaptureStatus.EmptyBody or CaptureStatus.InvalidInstance => 400,
        CaptureStatus.UnknownProvider => 404,
        _ => 503,
    };
}

/// <summary>Webhook pipeline settings. Set through <c>builder.AddWebhookPipeline(o => ...)</c>.</summary>
public sealed class InboxPipelineOptions
{
    /// <summary>The largest body accepted, in bytes. Default 3 MB (Meta's documented maximum).</summary>
    public int MaxBodyBytes { get; set; } = 3 * 1024 * 1024;

    /// <summary>The Retry-After answered with 503 when storage is down. Default 30 seconds.</summary>
    public TimeSpan RetryAfter { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Headers kept with each raw webhook, for parsing and audit (case-insensitive). Secret-bearing headers
    /// (Authorization, apikey, Client-Token, the configured secret header) are never kept, whatever this holds.
    /// </summary>
    public ISet<string> KeptHeaders { get; } = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
    {
        "Content-Type", "User-Agent", "X-Hub-Signature-256", "X-Webhook-Hmac", "X-Webhook-Hmac-Algorithm",
        "X-Webhook-Request-Id", "X-Webhook-Timestamp",
    };

    /// <summary>How many raw webhooks are parsed at once (one instance's webhooks are always parsed in arrival order). Default 4.</summary>
    public int IngestConcurrency { get; set; } = 4;

    /// <summary>
    /// How many chats are dispatched at once (one chat's events always in order). Default 16; 32 on PostgreSQL, where the
    /// dispatch runs' reads share statements (more runs in flight cost no more connections).
    /// </summary>
    public int DispatchConcurrency { get; set; } = 16;

    /// <summary>Attempts before an event's dispatch fails for good (visible as a failed job and a failed event). Default 10.</summary>
    public int DispatchMaxAttempts { get; set; } = 10;

    /// <summary>
    /// The lease of ingest and dispatch jobs: after a crash, another start (or host) takes their work over once it expires.
    /// Renewed by heartbeats every third of it while a handler runs. Default 30 seconds.
    /// </summary>
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How inbound media is downloaded (once a media store is configured) and how long a chat waits for it.</summary>
    public Media.InboxMediaOptions Media { get; } = new();

    internal IEnumerable<string> Validate()
    {
        foreach (var error in Media.Validate()) yield return error;
        if (MaxBodyBytes < 1) yield return $"AddWebhookPipeline: MaxBodyBytes must be positive (was {MaxBodyBytes}).";
        if (RetryAfter < TimeSpan.FromSeconds(1)) yield return $"AddWebhookPipeline: RetryAfter must be at least 1 second (was {RetryAfter}).";
        if (IngestConcurrency is < 1 or > 1024) yield return $"AddWebhookPipeline: IngestConcurrency must be between 1 and 1024 (was {IngestConcurrency}).";
        if (DispatchConcurrency is < 1 or > 1024) yield return $"AddWebhookPipeline: DispatchConcurrency must be between 1 and 1024 (was {DispatchConcurrency}).";
        if (LeaseDuration < TimeSpan.FromSeconds(1)) yield return $"AddWebhookPipeline: LeaseDuration must be at least 1 second (was {LeaseDuration}).";
        if (DispatchMaxAttempts < 1) yield return $"AddWebhookPipeline: DispatchMaxAttempts must be at least 1 (was {DispatchMaxAttempts}).";
    }
}

/// <summary>The queues the webhook pipeline runs on.</summary>
public static class InboxQueues
{
    /// <summary>Parses raw webhooks into events; keyed by provider and instance.</summary>
    public const string Ingest = "inbox.ingest";

    /// <summary>Delivers events to the host's handlers; keyed by instance and chat.</summary>
    public const string Dispatch = "inbox.dispatch";

    /// <summary>Downloads inbound media into the media store; one job per event with media.</summary>
    public const string Media = "inbox.media";
}
