using System.Globalization;
using System.Net.Http.Headers;
using System.Text.Json;
using Inbox.Reliability.Media;
using Microsoft.Extensions.Options;

namespace Inbox.Reliability.Providers.Media;

/// <summary>
/// Meta WhatsApp Cloud API media: <c>GET {GraphApiBaseUrl}/{media-id}</c> with the bearer token answers
/// <c>{url, mime_type, sha256, file_size, id}</c>; <c>GET url</c> with the same bearer streams the file. The URL lives
/// 5 minutes (the media id 7 days), so a 401/403/404 on it fetches a fresh URL once and tries again. A URL the webhook
/// already carries is tried first. The bearer goes only to those two URLs' origins, never to a redirect elsewhere.
/// </summary>
internal sealed class MetaMediaDownloader(MediaHttpClient http, IOptions<MetaCloudApiOptions> options) : IMediaDownloader
{
    public string Provider => WebhookProviderNames.Meta;

    public async Task<MediaDownload> OpenAsync(MediaDownloadRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var settings = options.Value;
        var media = request.Media;
        var what = $"Meta media {media.MediaId ?? request.Event.ExternalId}";
        var token = MediaHttpDefaults.ForInstance(settings.InstanceAccessTokens, settings.AccessToken, request.Instance)
            ?? throw new MediaDownloadException(
                $"{what}: no access token for instance \"{request.Instance}\"; set AccessToken (or InstanceAccessTokens) in AddMetaCloudApi.", retryable: false);
        void Bearer(HttpRequestHeaders headers) => headers.Authorization = new AuthenticationHeaderValue("Bearer", token);

        var url = MediaHttpClient.ParseUrl(media.Url);
        if (url is null && media.MediaId is null) throw new MediaDownloadException($"{what}: the reference has neither a media id nor a URL.", retryable: false);

        MediaInfo? info = null;
        if (url is null)
        {
            info = await FetchInfoAsync(media.MediaId!, what, settings, Bearer, cancellationToken).ConfigureAwait(false);
            url = info.Url;
        }

        var refetched = false;
        while (true)
        {
            var response = await http.SendAsync(new MediaRequest(HttpMethod.Get, url, what, settings) { Credentials = Bearer }, cancellationToken).ConfigureAwait(false);
            if (response.IsSuccessStatusCode)
            {
                return await http.OpenAsync(response, what, settings, info?.MimeType ?? media.MimeType, info?.FileSize, info?.Sha256 ?? media.Sha256, cancellationToken)
                    .ConfigureAwait(false);
            }

            var status = (int)response.StatusCode;
            if (status is 401 or 403 or 404 && !refetched && media.MediaId is not null)
            {
                // The URL expired (5 minutes): ask the media id for a fresh one, once.
                response.Dispose();
                refetched = true;
                info = await FetchInfoAsync(media.MediaId, what, settings, Bearer, cancellationToken).ConfigureAwait(false);
                url = info.Url;
                continue;
            }

            throw http.Failure(response, what, status is 401 or 403 ? "Check the access token and its whatsapp_business_messaging permission." : null);
        }
    }

    private async Task<MediaInfo> FetchInfoAsync(string mediaId, string what, MetaCloudApiOptions settings, Action<HttpRequestHeaders> bearer, CancellationToken cancellationToken)
    {
        var request = new MediaRequest(HttpMethod.Get, MediaHttpClient.Combine(settings.GraphApiBaseUrl, mediaId), what, settings) { Credentials = bearer };
        var response = await http.SendAsync(request, cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            var status = (int)response.StatusCode;
            throw http.Failure(response, what, status switch
            {
                401 or 403 => "Check the access token (AccessToken / InstanceAccessTokens) and its whatsapp_business_messaging permission.",
                400 or 404 => "Meta keeps a received media id for 7 days.",
                _ => null,
            });
        }

        using var json = await http.ReadJsonAsync(response, what, settings, cancellationToken).ConfigureAwait(false)
            ?? throw new MediaDownloadException($"{what}: the Graph API's answer is not a JSON object.", retryable: true, statusCode: (int)response.StatusCode);
        var root = json.RootElement;
        var url = MediaHttpClient.ParseUrl(String(root, "url"))
            ?? throw new MediaDownloadException($"{what}: the Graph API's answer has no usable \"url\".", retryable: true, statusCode: (int)response.StatusCode);
        return new MediaInfo(url, String(root, "mime_type"), String(root, "sha256"), Size(root));
    }

    private static string? String(JsonElement root, string name) =>
        root.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String && value.GetString() is { Length: > 0 } text ? text : null;

    // file_size comes as a number or, in some versions, a string.
    private static long? Size(JsonElement root)
    {
        if (!root.TryGetProperty("file_size", out var value)) return null;
        if (value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out var number)) return number >= 0 ? number : null;
        return value.ValueKind == JsonValueKind.String && long.TryParse(value.GetString(), NumberStyles.None, CultureInfo.InvariantCulture, out var parsed) ? parsed : null;
    }

    private sealed record MediaInfo(Uri Url, string? MimeType, string? Sha256, long? FileSize);
}
