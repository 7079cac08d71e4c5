using Inbox.Reliability.Events;
using Microsoft.Extensions.Logging;

namespace Inbox.Reliability.Capture;

internal static partial class CaptureLog
{
    [LoggerMessage(2001, LogLevel.Warning, "Webhook for {Provider}/{Instance} rejected ({Status}): {Reason}")]
    public static partial void Unauthorized(ILogger logger, string provider, string instance, WebhookAuthStatus status, string reason);

    [LoggerMessage(2002, LogLevel.Error, "Webhook for {Provider}/{Instance} could not be stored; answered 503 so the provider retries")]
    public static partial void StorageUnavailable(ILogger logger, string provider, string instance, Exception exception);

    [LoggerMessage(2003, LogLevel.Warning, "Webhooks of {Provider} are accepted without authentication: {Reason}. Configure a secret so forged webhooks are refused.")]
    public static partial void NotAuthenticated(ILogger logger, string provider, string reason);

    [LoggerMessage(2004, LogLevel.Information, "Duplicate event {DedupeKey} (content sha256 {ContentHash}) from raw webhook {RawWebhookId} was not stored again")]
    public static partial void DuplicateEvent(ILogger logger, string dedupeKey, string contentHash, long rawWebhookId);

    [LoggerMessage(2005, LogLevel.Error, "Raw webhook {RawWebhookId} of {Provider}/{Instance} could not be parsed and was marked failed: {Reason}")]
    public static partial void ParseFailed(ILogger logger, long rawWebhookId, string provider, string instance, string reason);

    [LoggerMessage(2006, LogLevel.Error, "Raw webhook {RawWebhookId} names provider {Provider}, which is not registered; marked failed")]
    public static partial void ProviderMissing(ILogger logger, long rawWebhookId, string provider);

    [LoggerMessage(2009, LogLevel.Error, "Raw webhook {RawWebhookId} of {Provider}/{Instance} was refused by the storage and marked failed (reprocessable once the cause is fixed): {Reason}")]
    public static partial void StorageRefused(ILogger logger, long rawWebhookId, string provider, string instance, string reason);

    [LoggerMessage(2007, LogLevel.Error, "Event {EventId} ({DedupeKey}) failed dispatch for good after {Attempts} attempts")]
    public static partial void DispatchFailed(ILogger logger, long eventId, string dedupeKey, int attempts, Exception exception);

    [LoggerMessage(2008, LogLevel.Warning, "Event {EventId} ({DedupeKey}) failed delivery attempt {Attempt} of {MaxAttempts}; its chat waits and retries at {RetryAt:O}")]
    public static partial void DispatchRetrying(ILogger logger, long eventId, string dedupeKey, int attempt, int maxAttempts, DateTimeOffset retryAt, Exception exception);
}
