using Inbox.Reliability.Events;

namespace Inbox.Reliability.Media;

/// <summary>
/// Opens an inbound media file at its provider, as a stream. One per provider (registered by <c>AddMetaCloudApi</c>,
/// <c>AddZApi</c>...); the media pipeline picks it by <see cref="Provider"/>. Throws <see cref="MediaDownloadException"/>
/// with the failure classified (retryable or not); any other exception counts as retryable.
/// </summary>
public interface IMediaDownloader
{
    /// <summary>The provider name, as in the webhook route (<c>meta</c>, <c>zapi</c>, <c>evolution</c>, <c>waha</c>, <c>wapi</c>).</summary>
    string Provider { get; }

    /// <summary>Opens the media. The caller disposes the result (and with it the HTTP response).</summary>
    Task<MediaDownload> OpenAsync(MediaDownloadRequest request, CancellationToken cancellationToken);
}

/// <summary>What to download.</summary>
/// <param name="Instance">The instance the event came from.</param>
/// <param name="Event">The event that carries the media.</param>
/// <param name="Media">The media reference (<c>Event.Media</c>).</param>
/// <param name="Attempt">This attempt, from 1.</param>
public sealed record MediaDownloadRequest(string Instance, InboxEvent Event, MediaReference Media, int Attempt);

/// <summary>An open download: the body stream and what the provider said about it.</summary>
public sealed class MediaDownload : IAsyncDisposable
{
    private readonly IDisposable? _owner;

    /// <summary>Creates a download over a stream; <paramref name="owner"/> (e.g. the HTTP response) is disposed with it.</summary>
    public MediaDownload(Stream content, string? contentType, long? length, string? sha256Base64, IDisposable? owner = null)
    {
        ArgumentNullException.ThrowIfNull(content);
        Content = content;
        ContentType = contentType;
        Length = length;
        Sha256Base64 = sha256Base64;
        _owner = owner;
    }

    /// <summary>The bytes, read once.</summary>
    public Stream Content { get; }

    /// <summary>The MIME type the provider gave for the bytes, if any.</summary>
    public string? ContentType { get; }

    /// <summary>The length announced (Content-Length or the provider's file size), if any.</summary>
    public long? Length { get; }

    /// <summary>The SHA-256 the provider gives for the file (base64), if any; checked after the download.</summary>
    public string? Sha256Base64 { get; }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await Content.DisposeAsync().ConfigureAwait(false);
        _owner?.Dispose();
    }
}

/// <summary>A download that failed, classified.</summary>
public sealed class MediaDownloadException : Exception
{
    /// <summary>Creates the exception.</summary>
    public MediaDownloadException()
    {
    }

    /// <summary>Creates the exception for a message.</summary>
    public MediaDownloadException(string message) : base(message)
    {
    }

    /// <summary>Creates the exception for a message and a cause.</summary>
    public MediaDownloadException(string message, Exception innerException) : base(message, innerException)
    {
    }

    /// <summary>Creates a classified failure.</summary>
    /// <param name="message">What happened (no URLs with tokens, no bodies).</param>
    /// <param name="retryable">True for timeouts, connection errors, 5xx and 429; false for 401/403/404/410 and bad media.</param>
    /// <param name="statusCode">The HTTP status, if any.</param>
    /// <param name="retryAfter">The provider's Retry-After, if any.</param>
    /// <param name="innerException">The cause, if any.</param>
    public MediaDownloadException(string message, bool retryable, int? statusCode = null, TimeSpan? retryAfter = null, Exception? innerException = null)
        : base(message, innerException)
    {
        Retryable = retryable;
        StatusCode = statusCode;
        RetryAfter = retryAfter;
    }

    /// <summary>True when another attempt may succeed.</summary>
    public bool Retryable { get; }

    /// <summary>The HTTP status, if the provider answered.</summary>
    public int? StatusCode { get; }

    /// <summary>How long the provider asked to wait (429/503 Retry-After).</summary>
    public TimeSpan? RetryAfter { get; }
}
