namespace Inbox.Reliability.Events;

/// <summary>A verification handshake (an HTTP GET) such as Meta's <c>hub.mode=subscribe&amp;hub.verify_token=…&amp;hub.challenge=…</c>.</summary>
public sealed class WebhookChallengeRequest
{
    private readonly IReadOnlyDictionary<string, string> _query;

    /// <summary>Creates a request.</summary>
    /// <param name="provider">The provider's name from the webhook URL.</param>
    /// <param name="instance">The instance from the webhook URL.</param>
    /// <param name="query">The query string values (decoded); copied, looked up case-insensitively.</param>
    public WebhookChallengeRequest(string provider, string instance, IReadOnlyDictionary<string, string> query)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(provider);
        ArgumentException.ThrowIfNullOrWhiteSpace(instance);
        ArgumentNullException.ThrowIfNull(query);
        Provider = provider;
        Instance = instance;
        _query = WebhookRequest.Copy(query);
    }

    /// <summary>The provider's name from the webhook URL.</summary>
    public string Provider { get; }

    /// <summary>The instance from the webhook URL.</summary>
    public string Instance { get; }

    /// <summary>The query string values.</summary>
    public IReadOnlyDictionary<string, string> Query => _query;

    /// <summary>The verify token for this instance when the caller resolves it itself; takes precedence over the options.</summary>
    public string? VerifyToken { get; init; }
}
