using Microsoft.Extensions.Logging;

namespace Inbox.Reliability.Media;

/// <summary>Media pipeline logging (event ids 3001-3099). Never logs URLs with tokens, bodies or base64.</summary>
internal static partial class MediaLog
{
    [LoggerMessage(3001, LogLevel.Debug, "Media of event {EventId} ({Provider}) stored: {Size} bytes")]
    public static partial void Stored(ILogger logger, long eventId, string provider, long size);

    [LoggerMessage(3002, LogLevel.Warning, "Media of event {EventId} ({Provider}) failed on attempt {Attempt} of {MaxAttempts}; retrying: {Reason}")]
    public static partial void Retrying(ILogger logger, long eventId, string provider, int attempt, int maxAttempts, string reason);

    [LoggerMessage(3003, LogLevel.Error, "Media of event {EventId} ({Provider}) failed for good on attempt {Attempt}; the event goes on with a placeholder: {Reason}")]
    public static partial void Failed(ILogger logger, long eventId, string provider, int attempt, string reason);

    [LoggerMessage(3004, LogLevel.Information, "Event {EventId} was dispatched after waiting {Wait} for its media, which is still pending; it goes with a placeholder")]
    public static partial void DispatchedWithoutMedia(ILogger logger, long eventId, TimeSpan wait);
}
