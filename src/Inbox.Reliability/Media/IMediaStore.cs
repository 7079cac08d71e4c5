namespace Inbox.Reliability.Media;

/// <summary>
/// Where downloaded media lives: the file system (<c>UseFileSystemMediaStore</c>, the embedded default) or S3
/// (<c>UseS3MediaStore</c>). Keys are relative paths made of <c>[A-Za-z0-9._-]</c> segments separated by <c>/</c>
/// (see <see cref="MediaKeys"/>); a store rejects any other key with <see cref="ArgumentException"/>.
/// Implementations stream: no method holds a whole object in memory.
/// </summary>
public interface IMediaStore
{
    /// <summary>
    /// Writes <paramref name="content"/> (read once, to its end, never buffered whole) under <paramref name="key"/>,
    /// replacing any object there; readers never see a partial object. Returns what was written, with the SHA-256
    /// computed while streaming.
    /// </summary>
    /// <param name="key">The object's key.</param>
    /// <param name="content">The bytes; may be non-seekable and of unknown length.</param>
    /// <param name="contentType">The MIME type to record, if known.</param>
    /// <param name="cancellationToken">Cancels the write; nothing is left under the key by a canceled write.</param>
    Task<MediaObject> PutAsync(string key, Stream content, string? contentType, CancellationToken cancellationToken = default);

    /// <summary>Gets an object's size, type and SHA-256 without reading it, or null when there is no object under the key.</summary>
    Task<MediaObject?> GetAsync(string key, CancellationToken cancellationToken = default);

    /// <summary>Opens an object for reading (a stream the caller disposes).</summary>
    /// <exception cref="MediaObjectNotFoundException">There is no object under the key.</exception>
    Task<Stream> OpenReadAsync(string key, CancellationToken cancellationToken = default);

    /// <summary>Deletes an object. Returns false when there was none.</summary>
    Task<bool> DeleteAsync(string key, CancellationToken cancellationToken = default);

    /// <summary>
    /// A URL that reads the object until <paramref name="expiresIn"/> from now: S3 presigned, or a signed link served by
    /// <c>MapInboxMedia</c> for the file system. Generated on every call, so a URL handed out is never stale.
    /// </summary>
    Task<Uri> GetReadUrlAsync(string key, TimeSpan expiresIn, CancellationToken cancellationToken = default);
}

/// <summary>A stored media object.</summary>
/// <param name="Key">Its key.</param>
/// <param name="Size">Its size in bytes.</param>
/// <param name="ContentType">Its MIME type, when recorded.</param>
/// <param name="Sha256">Its SHA-256 as lowercase hex, when the store knows it.</param>
public sealed record MediaObject(string Key, long Size, string? ContentType, string? Sha256);

/// <summary>Thrown when no object exists under a key.</summary>
public sealed class MediaObjectNotFoundException : Exception
{
    /// <summary>Creates the exception.</summary>
    public MediaObjectNotFoundException()
    {
    }

    /// <summary>Creates the exception for a message.</summary>
    public MediaObjectNotFoundException(string message) : base(message)
    {
    }

    /// <summary>Creates the exception for a message and a cause.</summary>
    public MediaObjectNotFoundException(string message, Exception innerException) : base(message, innerException)
    {
    }
}
