using System.Globalization;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using Inbox.Reliability.Storage;
using Microsoft.Extensions.Options;

namespace Inbox.Reliability.Dispatch;

/// <summary>Settings of the HTTP forwarder. Set through <c>builder.AddHttpForwarder(o => ...)</c>.</summary>
public sealed class HttpForwarderOptions
{
    /// <summary>Where events are POSTed (required).</summary>
    public Uri? Url { get; set; }

    /// <summary>
    /// The signing secret, Standard Webhooks style: <c>whsec_</c> followed by base64 of at least 24 random bytes (a plain
    /// string is also accepted and used as UTF-8 bytes). Required.
    /// </summary>
    public string? Secret { get; set; }

    /// <summary>How long one POST may take. Default 10 seconds.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);

    internal IEnumerable<string> Validate()
    {
        if (Url is null || !Url.IsAbsoluteUri || (Url.Scheme != Uri.UriSchemeHttp && Url.Scheme != Uri.UriSchemeHttps))
            yield return "AddHttpForwarder: set Url to an absolute http(s) address.";
        if (string.IsNullOrEmpty(Secret)) yield return "AddHttpForwarder: set Secret (for example whsec_ followed by base64 of 32 random bytes).";
        else if (KeyBytes(Secret) is null) yield return "AddHttpForwarder: Secret starts with whsec_ but the rest is not valid base64.";
        if (Timeout <= TimeSpan.Zero) yield return $"AddHttpForwarder: Timeout must be positive (was {Timeout}).";
    }

    internal static byte[]? KeyBytes(string secret)
    {
        if (!secret.StartsWith("whsec_", StringComparison.Ordinal)) return Encoding.UTF8.GetBytes(secret);
        try
        {
            return Convert.FromBase64String(secret["whsec_".Length..]);
        }
        catch (FormatException)
        {
            return null;
        }
    }
}

/// <summary>
/// Forwards each event to a URL, signed with the Standard Webhooks headers (<c>webhook-id</c>, <c>webhook-timestamp</c>,
/// <c>webhook-signature</c>: <c>v1,</c> + base64 HMAC-SHA256 of <c>{id}.{timestamp}.{body}</c>). A non-2xx answer or a
/// timeout throws, so dispatch retries it with backoff and the chat's later events wait: per-chat order holds.
/// </summary>
internal sealed class HttpForwarder(HttpForwarderClient client, IOptions<HttpForwarderOptions> options, TimeProvider time) : IInboxEventHandler
{
    public async Task HandleAsync(InboxEventContext context, CancellationToken cancellationToken)
    {
        var settings = options.Value;
        var id = "evt_" + context.EventId.ToString(CultureInfo.InvariantCulture) + (context.IsMediaUpdate ? "_media" : ""); // the same on every retry
        var timestamp = time.GetUtcNow().ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
        var body = "{\"type\":\"" + TypeOf(context) + "\",\"timestamp\":\"" + time.GetUtcNow().ToString("O", CultureInfo.InvariantCulture) +
            "\",\"sequence\":" + context.Sequence.ToString(CultureInfo.InvariantCulture) + ",\"data\":" + InboxEventSerializer.Serialize(context.Event) +
            await MediaJsonAsync(context, cancellationToken).ConfigureAwait(false) + "}";
        var signature = Sign(HttpForwarderOptions.KeyBytes(settings.Secret!)!, id, timestamp, body);

        using var request = new HttpRequestMessage(HttpMethod.Post, settings.Url);
        request.Content = new StringContent(body, Encoding.UTF8, new MediaTypeHeaderValue("application/json"));
        request.Headers.TryAddWithoutValidation("webhook-id", id);
        request.Headers.TryAddWithoutValidation("webhook-timestamp", timestamp);
        request.Headers.TryAddWithoutValidation("webhook-signature", signature);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(settings.Timeout);
        using var response = await client.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            throw new HttpRequestException($"The forwarder URL answered {(int)response.StatusCode} for event {id}.", null, response.StatusCode);
        }
    }

    internal static string Sign(byte[] key, string id, string timestamp, string body) =>
        "v1," + Convert.ToBase64String(HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(id + "." + timestamp + "." + body)));

    /// <summary>
    /// <c>,"media":{status, key, size, mimeType, sha256, error, url}</c> for an event with downloaded (or failing) media: the
    /// URL is a fresh read URL valid for <c>Media.ReadUrlExpiry</c>. Empty for events without media.
    /// </summary>
    private static async Task<string> MediaJsonAsync(InboxEventContext context, CancellationToken cancellationToken)
    {
        var media = context.Media;
        if (media.Status == Storage.MediaStatus.None) return "";
        var url = await context.GetMediaUrlAsync(null, cancellationToken).ConfigureAwait(false);
        var json = System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, object?>
        {
            ["status"] = media.Status.ToString().ToLowerInvariant(),
            ["key"] = media.Key,
            ["size"] = media.Size,
            ["mimeType"] = media.MimeType,
            ["sha256"] = media.Sha256,
            ["error"] = media.Error,
            ["url"] = url?.AbsoluteUri,
        });
        return ",\"media\":" + json;
    }

    private static string TypeOf(InboxEventContext context) => context.Event.Kind switch
    {
        Events.InboxEventKind.Message when context.IsMediaUpdate => "message.media_updated",
        Events.InboxEventKind.Message => "message.received",
        Events.InboxEventKind.Status => "message.status",
        Events.InboxEventKind.Connection => "instance.connection",
        _ => "event.other",
    };
}

/// <summary>The forwarder's one HttpClient (pooled connections, DNS refreshed), disposed with the container.</summary>
internal sealed class HttpForwarderClient : IDisposable
{
    public HttpClient Http { get; } = new(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) }) { Timeout = System.Threading.Timeout.InfiniteTimeSpan };

    public void Dispose() => Http.Dispose();
}
