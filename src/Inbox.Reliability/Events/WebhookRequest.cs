namespace Inbox.Reliability.Events;

/// <summary>
/// A webhook as received, for <see cref="IWebhookProvider.Authenticate"/> and <see cref="IWebhookProvider.Parse"/>:
/// the raw body bytes exactly as they arrived (signatures are computed over them), the headers and the query string.
/// </summary>
public sealed class WebhookRequest
{
    private static readonly IReadOnlyDictionary<string, string> Empty = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
    private readonly IReadOnlyDictionary<string, string> _headers = Empty;
    private readonly IReadOnlyDictionary<string, string> _query = Empty;

    /// <summary>Creates a request.</summary>
    /// <param name="provider">The provider's name from the webhook URL, e.g. <c>meta</c>.</param>
    /// <param name="instance">The instance from the webhook URL. Part of every dedupe key.</param>
    /// <param name="body">The raw body bytes. Not copied: do not change them while the request is in use.</param>
    /// <param name="receivedAt">When the webhook was captured; used as the event time when the payload carries none.</param>
    public WebhookRequest(string provider, string instance, ReadOnlyMemory<byte> body, DateTimeOffset receivedAt)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(provider);
        ArgumentException.ThrowIfNullOrWhiteSpace(instance);
        Provider = provider;
        Instance = instance;
        Body = body;
        ReceivedAt = receivedAt.ToUniversalTime();
    }

    /// <summary>The provider's name from the webhook URL.</summary>
    public string Provider { get; }

    /// <summary>The instance from the webhook URL.</summary>
    public string Instance { get; }

    /// <summary>The raw body bytes.</summary>
    public ReadOnlyMemory<byte> Body { get; }

    /// <summary>When the webhook was captured, UTC.</summary>
    public DateTimeOffset ReceivedAt { get; }

    /// <summary>
    /// The request headers, looked up case-insensitively (the given dictionary is copied). Join repeated headers with
    /// a comma before passing them.
    /// </summary>
    public IReadOnlyDictionary<string, string> Headers
    {
        get => _headers;
        init => _headers = Copy(value);
    }

    /// <summary>The query string values (decoded), looked up case-insensitively (the given dictionary is copied).</summary>
    public IReadOnlyDictionary<string, string> Query
    {
        get => _query;
        init => _query = Copy(value);
    }

    /// <summary>
    /// The secret for this instance when the caller resolves it itself (for example from its own instance table): the
    /// app secret (Meta), HMAC key (WAHA) or shared webhook secret (Z-API, Evolution, W-API). It takes precedence over
    /// the provider options' per-instance and default secrets. Null leaves it to the options.
    /// </summary>
    public string? Secret { get; init; }

    internal static IReadOnlyDictionary<string, string> Copy(IReadOnlyDictionary<string, string>? values)
    {
        if (values is null || values.Count == 0) return Empty;
        var copy = new Dictionary<string, string>(values.Count, StringComparer.OrdinalIgnoreCase);
        foreach (var (key, value) in values)
        {
            if (key is not null) copy[key] = value ?? "";
        }

        return copy;
    }
}
