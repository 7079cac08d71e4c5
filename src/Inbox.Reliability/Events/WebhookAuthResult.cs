namespace Inbox.Reliability.Events;

/// <summary>The outcome of checking a webhook's authenticity.</summary>
public enum WebhookAuthStatus
{
    /// <summary>The signature or secret was checked and matches.</summary>
    Ok = 0,

    /// <summary>
    /// No secret is configured for this instance of a provider without signatures, so nothing could be checked. The
    /// webhook is allowed; the host should log a warning (once) that anyone who knows the URL can post to it.
    /// </summary>
    NotConfigured = 1,

    /// <summary>The request carries no signature or secret although one is configured. Reject it (401).</summary>
    Missing = 2,

    /// <summary>The signature or secret is wrong or malformed, or the configuration cannot verify it. Reject it (401).</summary>
    Invalid = 3,
}

/// <summary>The outcome of <see cref="IWebhookProvider.Authenticate"/>. The reason never contains the secret, signature or body.</summary>
public sealed record WebhookAuthResult
{
    private WebhookAuthResult(WebhookAuthStatus status, string reason)
    {
        Status = status;
        Reason = reason;
    }

    /// <summary>The outcome.</summary>
    public WebhookAuthStatus Status { get; }

    /// <summary>What was checked, or what is wrong, in words fit for a log line (e.g. "X-Hub-Signature-256 does not match the body").</summary>
    public string Reason { get; }

    /// <summary>True when the webhook may be accepted: <see cref="WebhookAuthStatus.Ok"/> or <see cref="WebhookAuthStatus.NotConfigured"/>.</summary>
    public bool IsAllowed => Status is WebhookAuthStatus.Ok or WebhookAuthStatus.NotConfigured;

    /// <summary>The signature or secret matches.</summary>
    public static WebhookAuthResult Ok(string reason) => new(WebhookAuthStatus.Ok, reason);

    /// <summary>No secret is configured; allowed, but unverified.</summary>
    public static WebhookAuthResult NotConfigured(string reason) => new(WebhookAuthStatus.NotConfigured, reason);

    /// <summary>The request carries no signature or secret.</summary>
    public static WebhookAuthResult Missing(string reason) => new(WebhookAuthStatus.Missing, reason);

    /// <summary>The signature or secret is wrong or malformed.</summary>
    public static WebhookAuthResult Invalid(string reason) => new(WebhookAuthStatus.Invalid, reason);
}
