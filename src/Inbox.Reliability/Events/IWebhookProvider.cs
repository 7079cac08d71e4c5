namespace Inbox.Reliability.Events;

/// <summary>
/// A provider adapter: checks a webhook's authenticity and turns its raw body into normalized
/// <see cref="InboxEvent"/>s. Registered as a singleton (for example by <c>AddZApi()</c>) and looked up by
/// <see cref="Name"/>; implementations are thread-safe and do no I/O.
/// </summary>
public interface IWebhookProvider
{
    /// <summary>The provider's name as used in webhook URLs and in <see cref="InboxEvent.Provider"/>, e.g. <c>meta</c>.</summary>
    string Name { get; }

    /// <summary>
    /// Checks the webhook's signature or shared secret, in constant time. Called before the webhook is stored; a result
    /// that is not <see cref="WebhookAuthResult.IsAllowed"/> means 401 and nothing is stored. Never throws for any
    /// request content.
    /// </summary>
    WebhookAuthResult Authenticate(WebhookRequest request);

    /// <summary>
    /// Turns the raw body into events, in payload order: one per message, status (one per message id), connection
    /// change, or other item. A payload that is recognizably the provider's but holds nothing known gives one
    /// <see cref="InboxEventKind.Other"/> event; the result is never empty. Deterministic: parsing the same request
    /// again gives the same events, so a stored webhook can be reprocessed.
    /// </summary>
    /// <exception cref="WebhookParseException">
    /// The body cannot be understood: not UTF-8, not JSON, not the provider's envelope, or a known event without its
    /// identity (message id, chat). No other exception is thrown for any body.
    /// </exception>
    IReadOnlyList<InboxEvent> Parse(WebhookRequest request);
}

/// <summary>
/// Implemented by providers whose webhook registration starts with a verification handshake (an HTTP GET), such as
/// Meta's <c>hub.challenge</c>. The webhook endpoint checks an <see cref="IWebhookProvider"/> for it with <c>is</c>.
/// </summary>
public interface IWebhookChallengeHandler
{
    /// <summary>Answers the handshake: the challenge to echo when the verify token matches (compared in constant time).</summary>
    WebhookChallengeResult AnswerChallenge(WebhookChallengeRequest request);
}
