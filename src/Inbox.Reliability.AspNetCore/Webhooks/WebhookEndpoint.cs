using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Inbox.Reliability.Capture;
using Inbox.Reliability.Events;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Inbox.Reliability.AspNetCore.Webhooks;

/// <summary>
/// The webhook endpoints: POST captures through <see cref="IInboxCapture"/>, GET answers a verification handshake.
/// Nothing here throws to the server: every outcome, including an unexpected failure, is answered (a failure with 503
/// and Retry-After, so the provider retries rather than drops the webhook).
/// </summary>
internal sealed class WebhookEndpoint
{
    public const string Pattern = "/{provider}/{instance}";

    private const string InvalidInstanceReason = "The instance name must be 1 to 128 letters, digits, '-', '_' or '.'.";
    private static readonly string[] AllowPost = ["POST"];

    private readonly IServiceProvider _services;
    private readonly Lazy<Dependencies> _dependencies;

    public WebhookEndpoint(IServiceProvider services)
    {
        _services = services;

        // Resolved on the first request, not when mapping: the host may still be configuring services then. Not cached
        // when it throws, so a transient failure does not stick.
        _dependencies = new Lazy<Dependencies>(Resolve, LazyThreadSafetyMode.PublicationOnly);
    }

    public async Task HandlePostAsync(HttpContext context)
    {
        var provider = RouteValue(context, "provider");
        var instance = RouteValue(context, "instance");
        var aborted = context.RequestAborted;
        Dependencies? dependencies = null;
        try
        {
            dependencies = _dependencies.Value;
            var options = dependencies.Options;

            // The names WebhookRequest cannot hold get the answer capture gives them.
            if (string.IsNullOrWhiteSpace(provider))
            {
                await WriteCaptureAnswerAsync(context, new CaptureResult(CaptureStatus.UnknownProvider, Reason: "Unknown provider."), options).ConfigureAwait(false);
                return;
            }

            if (string.IsNullOrWhiteSpace(instance))
            {
                await WriteCaptureAnswerAsync(context, new CaptureResult(CaptureStatus.InvalidInstance, Reason: InvalidInstanceReason), options).ConfigureAwait(false);
                return;
            }

            var body = await WebhookBody.ReadAsync(context, options.MaxBodyBytes, aborted).ConfigureAwait(false);
            switch (body.Status)
            {
                case WebhookBodyStatus.TooLarge:
                    WebhookEndpointLog.BodyTooLarge(dependencies.Logger, LogName(provider), LogName(instance), options.MaxBodyBytes);

                    // The rest of an oversized body is not read: close the connection instead of draining it.
                    CloseConnection(context);
                    await WriteCaptureAnswerAsync(context, new CaptureResult(CaptureStatus.PayloadTooLarge, Reason: $"The body is larger than the limit of {options.MaxBodyBytes} bytes."), options).ConfigureAwait(false);
                    return;
                case WebhookBodyStatus.Aborted:
                    WebhookEndpointLog.ClientAborted(dependencies.Logger, LogName(provider), LogName(instance));
                    return;
                case WebhookBodyStatus.Unreadable:
                    WebhookEndpointLog.BodyUnreadable(dependencies.Logger, LogName(provider), LogName(instance), body.StatusCode);
                    CloseConnection(context);
                    await WriteJsonAsync(context.Response, body.StatusCode, "error", "The request body could not be read.").ConfigureAwait(false);
                    return;
            }

            var request = new WebhookRequest(provider, instance, body.Bytes, dependencies.Time.GetUtcNow())
            {
                Headers = Headers(context.Request.Headers),
                Query = Query(context.Request.Query),
            };

            CaptureResult result;
            try
            {
                result = await dependencies.Capture.CaptureAsync(request, aborted).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (aborted.IsCancellationRequested)
            {
                // The client is gone; whether the write finished or was dropped, a retry of the same body is stored once.
                WebhookEndpointLog.ClientAborted(dependencies.Logger, LogName(provider), LogName(instance));
                return;
            }

            await WriteCaptureAnswerAsync(context, result, options).ConfigureAwait(false);
        }
        catch (Exception ex) when (!context.Response.HasStarted)
        {
            // Capture does not throw for any input or a storage outage; this is a bug or a broken configuration. Answer so
            // the provider retries (a retry of a body that did get stored is counted as a duplicate, not stored twice).
            WebhookEndpointLog.CaptureFailed(dependencies?.Logger ?? NullLogger.Instance, LogName(provider), LogName(instance), ex);
            context.Response.Clear();
            await WriteCaptureAnswerAsync(context, new CaptureResult(CaptureStatus.StorageUnavailable, Reason: "The webhook could not be stored; retry later."),
                dependencies?.Options ?? new InboxPipelineOptions()).ConfigureAwait(false);
        }
    }

    public async Task HandleGetAsync(HttpContext context)
    {
        var provider = RouteValue(context, "provider");
        var instance = RouteValue(context, "instance");
        Dependencies? dependencies = null;
        try
        {
            dependencies = _dependencies.Value;
            if (string.IsNullOrWhiteSpace(provider) || !dependencies.Providers.TryGetValue(provider, out var adapter))
            {
                await WriteJsonAsync(context.Response, StatusCodes.Status404NotFound, "error", "No webhook provider by that name is registered.").ConfigureAwait(false);
                return;
            }

            if (adapter is not IWebhookChallengeHandler)
            {
                context.Response.Headers.Allow = AllowPost;
                await WriteJsonAsync(context.Response, StatusCodes.Status405MethodNotAllowed, "error", "This provider has no verification handshake; it posts its webhooks to this URL.").ConfigureAwait(false);
                return;
            }

            if (string.IsNullOrWhiteSpace(instance))
            {
                await WriteJsonAsync(context.Response, StatusCodes.Status400BadRequest, "error", InvalidInstanceReason).ConfigureAwait(false);
                return;
            }

            var result = dependencies.Capture.AnswerChallenge(new WebhookChallengeRequest(provider, instance, Query(context.Request.Query)));
            switch (result.Status)
            {
                case WebhookChallengeStatus.Accepted when result.Challenge is { } challenge:
                    WebhookEndpointLog.HandshakeAccepted(dependencies.Logger, LogName(provider), LogName(instance));
                    await WriteTextAsync(context.Response, challenge).ConfigureAwait(false);
                    return;
                case WebhookChallengeStatus.Rejected:
                    WebhookEndpointLog.HandshakeRejected(dependencies.Logger, LogName(provider), LogName(instance), result.Reason);
                    await WriteJsonAsync(context.Response, StatusCodes.Status403Forbidden, "error", result.Reason).ConfigureAwait(false);
                    return;
                default:
                    await WriteJsonAsync(context.Response, StatusCodes.Status400BadRequest, "error", result.Reason).ConfigureAwait(false);
                    return;
            }
        }
        catch (Exception ex) when (!context.Response.HasStarted)
        {
            WebhookEndpointLog.HandshakeFailed(dependencies?.Logger ?? NullLogger.Instance, LogName(provider), LogName(instance), ex);
            context.Response.Clear();
            context.Response.Headers.RetryAfter = RetryAfterSeconds(dependencies?.Options.RetryAfter ?? new InboxPipelineOptions().RetryAfter);
            await WriteJsonAsync(context.Response, StatusCodes.Status503ServiceUnavailable, "error", "The handshake could not be answered; retry later.").ConfigureAwait(false);
        }
    }

    private Dependencies Resolve()
    {
        var providers = new Dictionary<string, IWebhookProvider>(StringComparer.OrdinalIgnoreCase);
        foreach (var provider in _services.GetServices<IWebhookProvider>()) providers.TryAdd(provider.Name, provider);
        return new Dependencies(
            _services.GetRequiredService<IInboxCapture>(),
            _services.GetRequiredService<IOptions<InboxPipelineOptions>>().Value,
            _services.GetService<TimeProvider>() ?? TimeProvider.System,
            _services.GetService<ILoggerFactory>()?.CreateLogger(typeof(WebhookEndpoint).FullName!) ?? NullLogger.Instance,
            providers);
    }

    /// <summary>Answers a capture result. Never 2xx for something not stored; 503 always carries Retry-After.</summary>
    private static Task WriteCaptureAnswerAsync(HttpContext context, CaptureResult result, InboxPipelineOptions options)
    {
        var response = context.Response;
        if (result.IsStored)
        {
            response.StatusCode = StatusCodes.Status200OK;
            return WriteJsonAsync(response, StatusCodes.Status200OK, writer =>
            {
                writer.WriteString("status", result.Status == CaptureStatus.Duplicate ? "duplicate" : "stored");
                if (result.RawWebhookId is { } id) writer.WriteNumber("id", id);
            });
        }

        var status = result.HttpStatusCode is >= 400 and < 600 ? result.HttpStatusCode : StatusCodes.Status503ServiceUnavailable;
        if (status == StatusCodes.Status503ServiceUnavailable) response.Headers.RetryAfter = RetryAfterSeconds(options.RetryAfter);
        return WriteJsonAsync(response, status, "error", result.Reason ?? ReasonPhrases.GetReasonPhrase(status));
    }

    private static Task WriteJsonAsync(HttpResponse response, int status, string name, string value) =>
        WriteJsonAsync(response, status, writer => writer.WriteString(name, value));

    private static async Task WriteJsonAsync(HttpResponse response, int status, Action<Utf8JsonWriter> write)
    {
        var buffer = new ArrayBufferWriter<byte>(128);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            write(writer);
            writer.WriteEndObject();
        }

        response.StatusCode = status;
        response.ContentType = "application/json; charset=utf-8";
        await WriteAsync(response, buffer.WrittenMemory).ConfigureAwait(false);
    }

    private static async Task WriteTextAsync(HttpResponse response, string text)
    {
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "text/plain; charset=utf-8";
        await WriteAsync(response, Encoding.UTF8.GetBytes(text)).ConfigureAwait(false);
    }

    private static async Task WriteAsync(HttpResponse response, ReadOnlyMemory<byte> bytes)
    {
        response.Headers.CacheControl = "no-store";
        response.Headers.XContentTypeOptions = "nosniff";
        response.ContentLength = bytes.Length;
        try
        {
            await response.Body.WriteAsync(bytes).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException)
        {
            // The client went away before reading the answer; it will retry.
        }
    }

    private static string RetryAfterSeconds(TimeSpan retryAfter) =>
        ((long)Math.Max(1, Math.Ceiling(retryAfter.TotalSeconds))).ToString(CultureInfo.InvariantCulture);

    private static void CloseConnection(HttpContext context)
    {
        // Connection-specific headers exist in HTTP/1.x only; HTTP/2 and 3 reset the stream instead.
        if (HttpProtocol.IsHttp11(context.Request.Protocol) || HttpProtocol.IsHttp10(context.Request.Protocol)) context.Response.Headers.Connection = "close";
    }

    private static string? RouteValue(HttpContext context, string name) => context.Request.RouteValues[name] as string;

    /// <summary>Headers by name (case-insensitive), repeated values joined with a comma.</summary>
    private static Dictionary<string, string> Headers(IHeaderDictionary headers)
    {
        var copy = new Dictionary<string, string>(headers.Count, StringComparer.OrdinalIgnoreCase);
        foreach (var (name, values) in headers) copy[name] = values.ToString();
        return copy;
    }

    /// <summary>Query string values (decoded) by name (case-insensitive), repeated values joined with a comma.</summary>
    private static Dictionary<string, string> Query(IQueryCollection query)
    {
        var copy = new Dictionary<string, string>(query.Count, StringComparer.OrdinalIgnoreCase);
        foreach (var (name, values) in query) copy[name] = values.ToString();
        return copy;
    }

    /// <summary>Names from the URL as they may appear in a log line: short, and only the characters valid names use.</summary>
    private static string LogName(string? name)
    {
        if (string.IsNullOrEmpty(name)) return "(none)";
        var span = name.AsSpan(0, Math.Min(name.Length, 64));
        var builder = new StringBuilder(span.Length + 3);
        foreach (var c in span) builder.Append(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '?');
        if (name.Length > 64) builder.Append("...");
        return builder.ToString();
    }

    private sealed record Dependencies(
        IInboxCapture Capture,
        InboxPipelineOptions Options,
        TimeProvider Time,
        ILogger Logger,
        IReadOnlyDictionary<string, IWebhookProvider> Providers);
}
