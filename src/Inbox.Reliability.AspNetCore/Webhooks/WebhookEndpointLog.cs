using Microsoft.Extensions.Logging;

namespace Inbox.Reliability.AspNetCore.Webhooks;

/// <summary>
/// The webhook endpoint's log lines (category <c>Inbox.Reliability.AspNetCore.Webhooks.WebhookEndpoint</c>, event ids
/// 2101-2107). Never the body, a header value, a query value or a token. Capture's own lines (401, 503...) come from
/// the core package (2001-2007).
/// </summary>
internal static partial class WebhookEndpointLog
{
    [LoggerMessage(2101, LogLevel.Debug, "Webhook for {Provider}/{Instance}: the client went away before the body was complete; nothing was stored")]
    public static partial void ClientAborted(ILogger logger, string provider, string instance);

    [LoggerMessage(2102, LogLevel.Warning, "Webhook for {Provider}/{Instance} refused with 413: the body is larger than the limit of {Limit} bytes (InboxPipelineOptions.MaxBodyBytes)")]
    public static partial void BodyTooLarge(ILogger logger, string provider, string instance, int limit);

    [LoggerMessage(2103, LogLevel.Information, "Webhook for {Provider}/{Instance}: the request body could not be read; answered {StatusCode} and stored nothing")]
    public static partial void BodyUnreadable(ILogger logger, string provider, string instance, int statusCode);

    [LoggerMessage(2104, LogLevel.Error, "Webhook for {Provider}/{Instance} failed unexpectedly; answered 503 with Retry-After so the provider retries")]
    public static partial void CaptureFailed(ILogger logger, string provider, string instance, Exception exception);

    [LoggerMessage(2105, LogLevel.Information, "Verification handshake for {Provider}/{Instance} accepted")]
    public static partial void HandshakeAccepted(ILogger logger, string provider, string instance);

    [LoggerMessage(2106, LogLevel.Warning, "Verification handshake for {Provider}/{Instance} rejected: {Reason}")]
    public static partial void HandshakeRejected(ILogger logger, string provider, string instance, string reason);

    [LoggerMessage(2107, LogLevel.Error, "Verification handshake for {Provider}/{Instance} failed unexpectedly; answered 503")]
    public static partial void HandshakeFailed(ILogger logger, string provider, string instance, Exception exception);
}
