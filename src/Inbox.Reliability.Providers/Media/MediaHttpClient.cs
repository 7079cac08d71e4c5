using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Inbox.Reliability.Media;

namespace Inbox.Reliability.Providers.Media;

/// <summary>One request of a media download.</summary>
/// <param name="Method">GET for files and metadata, POST for the providers' download endpoints.</param>
/// <param name="Url">Where (may hold a signed query: it never reaches a message or a log).</param>
/// <param name="What">What is being fetched, for messages (<c>Meta media 123</c>); never a URL with its query or a token.</param>
/// <param name="Options">The provider's timeouts.</param>
internal sealed record MediaRequest(HttpMethod Method, Uri Url, string What, IMediaHttpOptions Options)
{
    /// <summary>Adds the provider's credentials. Applied only to requests to <see cref="Url"/>'s origin, never to a redirect elsewhere.</summary>
    public Action<HttpRequestHeaders>? Credentials { get; init; }

    /// <summary>The body of a POST, created for each send.</summary>
    public Func<HttpContent>? Content { get; init; }
}

/// <summary>
/// The HTTP client every provider's media downloader shares: pooled connections recycled every 5 minutes (DNS changes
/// are seen), nothing buffered (<see cref="HttpCompletionOption.ResponseHeadersRead"/>), redirects followed here rather
/// than by the handler so credentials (a bearer, <c>X-Api-Key</c>, <c>apikey</c>) are sent only to the origin they were
/// meant for. Failures become classified <see cref="MediaDownloadException"/>s whose messages hold no token and no query
/// string. Disposed with the container.
/// </summary>
internal sealed class MediaHttpClient : IDisposable
{
    private const int MaxRedirects = 5;
    private const int MaxJsonBytes = 1024 * 1024;

    private readonly HttpClient _http;

    public MediaHttpClient(TimeProvider time)
        : this(new SocketsHttpHandler
        {
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            ConnectTimeout = TimeSpan.FromSeconds(30),
        }, time)
    {
    }

    internal MediaHttpClient(HttpMessageHandler handler, TimeProvider time)
    {
        Time = time;
        _http = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
        // Some CDNs (Meta's media host among them) answer differently to requests without a User-Agent.
        _http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue(new ProductHeaderValue("Inbox.Reliability")));
    }

    public TimeProvider Time { get; }

    /// <summary>A URL fit for a message: scheme, host, port and path; never the query (signatures) or user info.</summary>
    public static string Describe(Uri url) =>
        url.IsAbsoluteUri ? $"{url.Scheme}://{url.Host}{(url.IsDefaultPort ? "" : ":" + url.Port.ToString(CultureInfo.InvariantCulture))}{url.AbsolutePath}" : "(relative URL)";

    /// <summary>Parses a URL from a webhook or a provider's answer: absolute http or https, else null.</summary>
    public static Uri? ParseUrl(string? value) =>
        Uri.TryCreate(value, UriKind.Absolute, out var url) && (url.Scheme == Uri.UriSchemeHttps || url.Scheme == Uri.UriSchemeHttp) ? url : null;

    /// <summary>Appends path segments to a base URL, keeping the base's own path (<c>https://host/v21.0</c> + <c>123</c>).</summary>
    public static Uri Combine(Uri baseUrl, params string[] segments)
    {
        var path = baseUrl.GetLeftPart(UriPartial.Path).TrimEnd('/');
        return new Uri(path + "/" + string.Join('/', segments.Select(Uri.EscapeDataString)));
    }

    /// <summary>
    /// Sends the request and returns the response as soon as its headers arrive, whatever its status (the body is not
    /// read). GET redirects are followed (at most 5, never from HTTPS to HTTP), with credentials only on the original
    /// origin. Throws a retryable <see cref="MediaDownloadException"/> for a timeout or a connection failure.
    /// </summary>
    public async Task<HttpResponseMessage> SendAsync(MediaRequest request, CancellationToken cancellationToken)
    {
        var origin = request.Url;
        var url = request.Url;
        for (var redirects = 0; ; redirects++)
        {
            var response = await SendOnceAsync(request, url, SameOrigin(url, origin), cancellationToken).ConfigureAwait(false);
            if (request.Method != HttpMethod.Get || !IsRedirect(response.StatusCode) || response.Headers.Location is not { } location) return response;

            response.Dispose();
            var next = location.IsAbsoluteUri ? location : new Uri(url, location);
            if (redirects == MaxRedirects)
                throw new MediaDownloadException($"{request.What}: more than {MaxRedirects} redirects from {Describe(origin)}.", retryable: false);
            if (next.Scheme != Uri.UriSchemeHttps && next.Scheme != Uri.UriSchemeHttp)
                throw new MediaDownloadException($"{request.What}: {Describe(url)} redirected to a {next.Scheme} URL; only http and https are followed.", retryable: false);
            if (url.Scheme == Uri.UriSchemeHttps && next.Scheme == Uri.UriSchemeHttp)
                throw new MediaDownloadException($"{request.What}: {Describe(url)} redirected from HTTPS to HTTP ({Describe(next)}); not followed.", retryable: false);
            url = next;
        }
    }

    private async Task<HttpResponseMessage> SendOnceAsync(MediaRequest request, Uri url, bool withCredentials, CancellationToken cancellationToken)
    {
        using var message = new HttpRequestMessage(request.Method, url);
        if (withCredentials) request.Credentials?.Invoke(message.Headers);
        if (request.Content is not null) message.Content = request.Content();

        using var timeout = new CancellationTokenSource(request.Options.MediaRequestTimeout, Time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        try
        {
            return await _http.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new MediaDownloadException(
                $"{request.What}: {Describe(url)} did not answer within {Seconds(request.Options.MediaRequestTimeout)} (MediaRequestTimeout).", retryable: true, innerException: e);
        }
        catch (HttpRequestException e)
        {
            throw new MediaDownloadException($"{request.What}: could not reach {Describe(url)} ({e.HttpRequestError}).", retryable: true, innerException: e);
        }
    }

    /// <summary>
    /// The classified failure for a response that is not a success, which it disposes: retryable for 408, 429 and 5xx
    /// (with the provider's Retry-After), not for the rest (401, 403, 404, 410, an unfollowed redirect...).
    /// </summary>
    public MediaDownloadException Failure(HttpResponseMessage response, string what, string? hint = null)
    {
        using (response)
        {
            var status = (int)response.StatusCode;
            var name = Enum.IsDefined(response.StatusCode) ? " " + response.StatusCode : "";
            var where = response.RequestMessage?.RequestUri is { } url ? Describe(url) : "the provider";
            var retryable = status is 408 or 429 or >= 500;
            var message = $"{what}: {where} answered {status}{name}.{(hint is null ? "" : " " + hint)}";
            return new MediaDownloadException(message, retryable, status, RetryAfter(response));
        }
    }

    /// <summary>Retry-After as seconds or an HTTP date (a date in the past is zero).</summary>
    public TimeSpan? RetryAfter(HttpResponseMessage response)
    {
        if (response.Headers.RetryAfter is { } header)
        {
            if (header.Delta is { } delta) return delta >= TimeSpan.Zero ? delta : null;
            if (header.Date is { } date)
            {
                var wait = date - Time.GetUtcNow();
                return wait > TimeSpan.Zero ? wait : TimeSpan.Zero;
            }
        }

        // Not a valid header for HttpClient's parser (e.g. "1.5"): read it as seconds if it is a number.
        return response.Headers.TryGetValues("Retry-After", out var values)
            && double.TryParse(values.FirstOrDefault(), NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) && seconds is >= 0 and < 1e9
            ? TimeSpan.FromSeconds(seconds)
            : null;
    }

    /// <summary>
    /// Opens a successful response's body as the download: read with the idle timeout, failing (not retryable) past
    /// <paramref name="announcedLength"/> and (retryable) when it ends short of it. The response is disposed with the download.
    /// </summary>
    public async Task<MediaDownload> OpenAsync(HttpResponseMessage response, string what, IMediaHttpOptions options, string? contentType, long? announcedLength,
        string? sha256Base64, CancellationToken cancellationToken)
    {
        try
        {
            var contentLength = response.Content.Headers.ContentLength;
            if (announcedLength is { } announced && contentLength is { } actual && announced != actual)
            {
                throw new MediaDownloadException(
                    $"{what}: the provider announced {announced} bytes but the response has {actual} (Content-Length).", retryable: false, statusCode: (int)response.StatusCode);
            }

            var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            var length = announcedLength ?? contentLength;
            var content = new MediaBodyStream(body, what, options.MediaReadIdleTimeout, Time, length);
            return new MediaDownload(content, contentType ?? response.Content.Headers.ContentType?.ToString(), length, sha256Base64, response);
        }
        catch
        {
            response.Dispose();
            throw;
        }
    }

    /// <summary>Reads a small JSON answer (at most 1 MB), with the idle timeout. Null when it is not a JSON object.</summary>
    public async Task<JsonDocument?> ReadJsonAsync(HttpResponseMessage response, string what, IMediaHttpOptions options, CancellationToken cancellationToken)
    {
        using (response)
        {
            var stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            await using var body = new MediaBodyStream(stream, what, options.MediaReadIdleTimeout, Time, expectedLength: null);
            using var buffer = new MemoryStream();
            var chunk = new byte[16 * 1024];
            int read;
            while ((read = await body.ReadAsync(chunk, cancellationToken).ConfigureAwait(false)) > 0)
            {
                if (buffer.Length + read > MaxJsonBytes) return null;
                buffer.Write(chunk, 0, read);
            }

            try
            {
                var document = JsonDocument.Parse(buffer.GetBuffer().AsMemory(0, (int)buffer.Length));
                if (document.RootElement.ValueKind == JsonValueKind.Object) return document;
                document.Dispose();
                return null;
            }
            catch (JsonException)
            {
                return null;
            }
        }
    }

    public static string Seconds(TimeSpan value) => value.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture) + " s";

    private static bool IsRedirect(HttpStatusCode status) => status is HttpStatusCode.MovedPermanently or HttpStatusCode.Found or HttpStatusCode.SeeOther
        or HttpStatusCode.TemporaryRedirect or HttpStatusCode.PermanentRedirect;

    private static bool SameOrigin(Uri a, Uri b) =>
        string.Equals(a.Scheme, b.Scheme, StringComparison.OrdinalIgnoreCase) && string.Equals(a.IdnHost, b.IdnHost, StringComparison.OrdinalIgnoreCase) && a.Port == b.Port;

    public void Dispose() => _http.Dispose();
}
