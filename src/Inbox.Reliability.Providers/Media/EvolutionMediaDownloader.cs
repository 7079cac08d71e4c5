using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Inbox.Reliability.Media;
using Microsoft.Extensions.Options;

namespace Inbox.Reliability.Providers.Media;

/// <summary>
/// Evolution API media: the message's <c>mediaUrl</c> (its S3 copy) when there is one, fetched without credentials;
/// otherwise (or when that copy is gone) <c>POST {BaseUrl}/chat/getBase64FromMediaMessage/{instance}</c> with header
/// <c>apikey</c>, whose JSON answer <c>{…, "mimetype", "base64"}</c> is decoded while it streams in.
/// </summary>
internal sealed class EvolutionMediaDownloader(MediaHttpClient http, IOptions<EvolutionApiOptions> options) : IMediaDownloader
{
    private static readonly string[] Wanted = ["mimetype"];

    public string Provider => WebhookProviderNames.Evolution;

    public async Task<MediaDownload> OpenAsync(MediaDownloadRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var settings = options.Value;
        var media = request.Media;
        var messageId = media.MediaId ?? request.Event.ExternalId;
        var what = $"Evolution media of message {messageId}";
        var key = MediaHttpDefaults.ForInstance(settings.InstanceApiKeys, settings.ApiKey, request.Instance);
        var canAsk = settings.BaseUrl is not null && key is not null;

        if (MediaHttpClient.ParseUrl(media.Url) is { } mediaUrl)
        {
            var response = await http.SendAsync(new MediaRequest(HttpMethod.Get, mediaUrl, what, settings), cancellationToken).ConfigureAwait(false);
            if (response.IsSuccessStatusCode)
                return await http.OpenAsync(response, what, settings, media.MimeType, announcedLength: null, media.Sha256, cancellationToken).ConfigureAwait(false);
            if (!canAsk || (int)response.StatusCode is not (401 or 403 or 404 or 410)) throw http.Failure(response, what);
            response.Dispose(); // the S3 copy is gone or its link expired: ask Evolution
        }

        if (settings.BaseUrl is null || key is null)
        {
            throw new MediaDownloadException(
                $"{what}: the message has no mediaUrl (Evolution's S3 is off), and asking Evolution needs BaseUrl and ApiKey (or InstanceApiKeys[\"{request.Instance}\"]) in AddEvolutionApi.",
                retryable: false);
        }

        // Evolution's API takes its own instance name, which the webhook's envelope carries.
        var instance = request.Event.ProviderInstanceId ?? request.Instance;
        var url = MediaHttpClient.Combine(settings.BaseUrl, "chat", "getBase64FromMediaMessage", instance);
        var body = JsonSerializer.SerializeToUtf8Bytes(new { message = new { key = new { id = messageId } }, convertToMp4 = false });
        var ask = new MediaRequest(HttpMethod.Post, url, what, settings)
        {
            Credentials = headers => headers.Add("apikey", key),
            Content = () => new ByteArrayContent(body) { Headers = { ContentType = new MediaTypeHeaderValue("application/json") { CharSet = Encoding.UTF8.WebName } } },
        };
        var answer = await http.SendAsync(ask, cancellationToken).ConfigureAwait(false);
        if (!answer.IsSuccessStatusCode)
        {
            throw http.Failure(answer, what, (int)answer.StatusCode switch
            {
                401 or 403 => "Check ApiKey / InstanceApiKeys in AddEvolutionApi.",
                400 or 404 => "Evolution finds only messages it stored (DATABASE_SAVE_DATA_NEW_MESSAGE), under its instance name.",
                _ => null,
            });
        }

        try
        {
            var stream = await answer.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            var source = new MediaBodyStream(stream, what, settings.MediaReadIdleTimeout, http.Time, expectedLength: null);
            var (content, values) = await JsonBase64Stream.OpenAsync(source, what, "base64", Wanted, cancellationToken).ConfigureAwait(false);
            return new MediaDownload(content, values.GetValueOrDefault("mimetype") ?? media.MimeType, media.FileSize, media.Sha256, answer);
        }
        catch
        {
            answer.Dispose();
            throw;
        }
    }
}
