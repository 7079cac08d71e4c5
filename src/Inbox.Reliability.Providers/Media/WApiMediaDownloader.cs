using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Inbox.Reliability.Media;
using Microsoft.Extensions.Options;

namespace Inbox.Reliability.Providers.Media;

/// <summary>
/// W-API media, from a third party's summary of W-API's API (no official documentation was found):
/// <c>POST {BaseUrl}/message/download-media?instanceId=…</c> with the bearer token and <c>{"phone","messageId"}</c>
/// answers a temporary link to the decrypted file (<c>fileLink</c>), fetched without the token.
/// </summary>
internal sealed class WApiMediaDownloader(MediaHttpClient http, IOptions<WApiOptions> options) : IMediaDownloader
{
    private const int MaxProviderMessage = 200;
    private static readonly string[] LinkNames = ["fileLink", "url", "mediaUrl", "link"];

    public string Provider => WebhookProviderNames.WApi;

    public async Task<MediaDownload> OpenAsync(MediaDownloadRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var settings = options.Value;
        var media = request.Media;
        var messageId = media.MediaId ?? request.Event.ExternalId;
        var what = $"W-API media of message {messageId}";
        var token = MediaHttpDefaults.ForInstance(settings.InstanceApiTokens, settings.ApiToken, request.Instance)
            ?? throw new MediaDownloadException($"{what}: no token for instance \"{request.Instance}\"; set ApiToken (or InstanceApiTokens) in AddWApi.", retryable: false);
        var phone = request.Event.ChatId ?? throw new MediaDownloadException($"{what}: the event has no chat, which W-API's download endpoint needs.", retryable: false);

        var instanceId = request.Event.ProviderInstanceId ?? request.Instance;
        var url = new Uri(MediaHttpClient.Combine(settings.BaseUrl, "message", "download-media").AbsoluteUri + "?instanceId=" + Uri.EscapeDataString(instanceId));
        var body = JsonSerializer.SerializeToUtf8Bytes(new { phone, messageId });
        var ask = new MediaRequest(HttpMethod.Post, url, what, settings)
        {
            Credentials = headers => headers.Authorization = new AuthenticationHeaderValue("Bearer", token),
            Content = () => new ByteArrayContent(body) { Headers = { ContentType = new MediaTypeHeaderValue("application/json") { CharSet = Encoding.UTF8.WebName } } },
        };
        var answer = await http.SendAsync(ask, cancellationToken).ConfigureAwait(false);
        if (!answer.IsSuccessStatusCode)
            throw http.Failure(answer, what, (int)answer.StatusCode is 401 or 403 ? "Check ApiToken / InstanceApiTokens in AddWApi." : null);

        Uri link;
        using (var json = await http.ReadJsonAsync(answer, what, settings, cancellationToken).ConfigureAwait(false))
        {
            if (json is null) throw new MediaDownloadException($"{what}: W-API's download endpoint did not answer a JSON object.", retryable: false);
            link = FindLink(json.RootElement) ?? throw new MediaDownloadException(
                $"{what}: W-API's download endpoint answered without a file link{Detail(json.RootElement)}. The endpoint is not officially documented; its answer may have changed.",
                retryable: false);
        }

        var response = await http.SendAsync(new MediaRequest(HttpMethod.Get, link, what, settings), cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode) throw http.Failure(response, what);
        return await http.OpenAsync(response, what, settings, media.MimeType, announcedLength: null, media.Sha256, cancellationToken).ConfigureAwait(false);
    }

    private static Uri? FindLink(JsonElement root)
    {
        foreach (var scope in new[] { root, root.TryGetProperty("data", out var data) ? data : default })
        {
            if (scope.ValueKind != JsonValueKind.Object) continue;
            foreach (var name in LinkNames)
            {
                if (scope.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String && MediaHttpClient.ParseUrl(value.GetString()) is { } url) return url;
            }
        }

        return null;
    }

    // W-API's own error text, if it gives one (never a body dump).
    private static string Detail(JsonElement root) =>
        root.TryGetProperty("message", out var message) && message.ValueKind == JsonValueKind.String && message.GetString() is { Length: > 0 } text
            ? $" (\"{(text.Length > MaxProviderMessage ? text[..MaxProviderMessage] + "…" : text)}\")"
            : "";
}
