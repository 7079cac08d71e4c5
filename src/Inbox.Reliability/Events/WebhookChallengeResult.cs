namespace Inbox.Reliability.Events;

/// <summary>The outcome of a verification handshake.</summary>
public enum WebhookChallengeStatus
{
    /// <summary>The token matches: answer 200 with <see cref="WebhookChallengeResult.Challenge"/> as the plain-text body.</summary>
    Accepted = 0,

    /// <summary>The request is not a verification handshake (answer 400).</summary>
    NotAChallenge = 1,

    /// <summary>The token does not match, or none is configured (answer 403).</summary>
    Rejected = 2,
}

/// <summary>The outcome of <see cref="IWebhookChallengeHandler.AnswerChallenge"/>.</summary>
public sealed record WebhookChallengeResult
{
    private WebhookChallengeResult(WebhookChallengeStatus status, string? challenge, string reason)
    {
        Status = status;
        Challenge = challenge;
        Reason = reason;
    }

    /// <summary>The outcome.</summary>
    public WebhookChallengeStatus Status { get; }

    /// <summary>The value to echo as the response body when <see cref="Status"/> is <see cref="WebhookChallengeStatus.Accepted"/>.</summary>
    public string? Challenge { get; }

    /// <summary>Why, in words fit for a log line; never contains the token.</summary>
    public string Reason { get; }

    /// <summary>The token matches; echo <paramref name="challenge"/>.</summary>
    public static WebhookChallengeResult Accepted(string challenge)
    {
        ArgumentNullException.ThrowIfNull(challenge);
        return new(WebhookChallengeStatus.Accepted, challenge, "verify token matches");
    }

    /// <summary>Not a handshake.</summary>
    public static WebhookChallengeResult NotAChallenge(string reason) => new(WebhookChallengeStatus.NotAChallenge, null, reason);

    /// <summary>The token does not match or none is configured.</summary>
    public static WebhookChallengeResult Rejected(string reason) => new(WebhookChallengeStatus.Rejected, null, reason);
}
