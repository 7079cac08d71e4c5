using Inbox.Reliability.Media;
using Microsoft.Extensions.Options;

namespace Inbox.Reliability.Providers.Media;

/// <summary>Z-API media: the webhook's <c>imageUrl</c>, <c>audioUrl</c>... is a plain HTTPS link to Z-API's storage, kept 30 days, fetched without credentials.</summary>
internal sealed class ZApiMediaDownloader(MediaHttpClient http, IOptions<ZApiOptions> options) : IMediaDownloader
{
    public string Provider => WebhookProviderNames.ZApi;

    public async Task<MediaDownload> OpenAsync(MediaDownloadRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var settings = options.Value;
        var media = request.Media;
        var what = $"Z-API media of message {request.Event.ExternalId}";
        var url = MediaHttpClient.ParseUrl(media.Url) ?? throw new MediaDownloadException($"{what}: the webhook gave no http(s) URL for it.", retryable: false);
        var response = await http.SendAsync(new MediaRequest(HttpMethod.Get, url, what, settings), cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
            throw http.Failure(response, what, (int)response.StatusCode is 403 or 404 or 410 ? "Z-API keeps media for 30 days." : null);
        return await http.OpenAsync(response, what, settings, media.MimeType, announcedLength: null, media.Sha256, cancellationToken).ConfigureAwait(false);
    }
}
