using Inbox.Reliability.Media;
using Microsoft.Extensions.Options;

namespace Inbox.Reliability.Providers.Media;

/// <summary>
/// WAHA media: <c>GET media.url</c> (<c>…/api/files/{session}/{file}</c>) with <c>X-Api-Key</c>. With
/// <see cref="WahaOptions.BaseUrl"/> set, the URL's origin is replaced by it (WAHA often reports an internal host).
/// </summary>
internal sealed class WahaMediaDownloader(MediaHttpClient http, IOptions<WahaOptions> options) : IMediaDownloader
{
    private const int MaxProviderError = 200;

    public string Provider => WebhookProviderNames.Waha;

    public async Task<MediaDownload> OpenAsync(MediaDownloadRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var settings = options.Value;
        var media = request.Media;
        var what = $"WAHA media of message {request.Event.ExternalId}";
        if (media.Properties.TryGetValue("notDownloaded", out var notDownloaded) && notDownloaded == "true")
        {
            throw new MediaDownloadException(
                $"{what}: WAHA did not download it (hasMedia with media: null); WAHA's media settings (WHATSAPP_DOWNLOAD_MEDIA, WHATSAPP_FILES_MIMETYPES) skip it.", retryable: false);
        }

        if (media.Url is null && media.Properties.TryGetValue("providerError", out var error))
        {
            var shown = error.Length > MaxProviderError ? error[..MaxProviderError] + "…" : error;
            throw new MediaDownloadException($"{what}: WAHA could not download it ({shown}).", retryable: false);
        }

        var url = MediaHttpClient.ParseUrl(media.Url) ?? throw new MediaDownloadException($"{what}: the webhook gave no http(s) media.url.", retryable: false);
        if (settings.BaseUrl is { } baseUrl) url = Rebase(url, baseUrl);
        var key = MediaHttpDefaults.ForInstance(settings.InstanceApiKeys, settings.ApiKey, request.Instance);
        var download = new MediaRequest(HttpMethod.Get, url, what, settings)
        {
            Credentials = key is null ? null : headers => headers.Add("X-Api-Key", key),
        };
        var response = await http.SendAsync(download, cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            throw http.Failure(response, what, (int)response.StatusCode switch
            {
                401 or 403 => key is null ? "WAHA asks for an API key: set ApiKey (or InstanceApiKeys) in AddWaha." : "Check ApiKey / InstanceApiKeys in AddWaha.",
                404 or 410 => "WAHA deletes downloaded files after WHATSAPP_FILES_LIFETIME (180 s by default; 0 keeps them).",
                _ => null,
            });
        }

        return await http.OpenAsync(response, what, settings, media.MimeType, announcedLength: null, media.Sha256, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The URL with its scheme, host and port replaced by the base's (the base's path is put before the URL's path).</summary>
    internal static Uri Rebase(Uri url, Uri baseUrl) => new(baseUrl.GetLeftPart(UriPartial.Path).TrimEnd('/') + url.PathAndQuery);
}
