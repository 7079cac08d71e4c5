using System.Net;

namespace Inbox.Reliability.S3;

/// <summary>
/// An S3 call of the media store failed: the server was unreachable, did not answer within
/// <see cref="S3MediaStoreOptions.RequestTimeout"/>, or refused the request. The message names the operation, the key, the
/// bucket and the endpoint (never credentials); <see cref="Exception.InnerException"/> is the SDK's exception.
/// </summary>
public sealed class S3MediaStoreException : IOException
{
    /// <summary>Creates the exception.</summary>
    public S3MediaStoreException()
    {
    }

    /// <summary>Creates the exception for a message.</summary>
    public S3MediaStoreException(string message) : base(message)
    {
    }

    /// <summary>Creates the exception for a message and a cause.</summary>
    public S3MediaStoreException(string message, Exception innerException) : base(message, innerException)
    {
    }

    /// <summary>Creates the exception for a failed call.</summary>
    /// <param name="message">What failed.</param>
    /// <param name="statusCode">The HTTP status the server answered, if it answered.</param>
    /// <param name="errorCode">S3's error code (<c>AccessDenied</c>, <c>NoSuchBucket</c>...), if any.</param>
    /// <param name="innerException">The cause.</param>
    public S3MediaStoreException(string message, HttpStatusCode? statusCode, string? errorCode, Exception? innerException)
        : base(message, innerException)
    {
        StatusCode = statusCode;
        ErrorCode = errorCode;
    }

    /// <summary>The HTTP status the server answered; null when it did not answer (unreachable, timed out).</summary>
    public HttpStatusCode? StatusCode { get; }

    /// <summary>S3's error code, when the server answered with one.</summary>
    public string? ErrorCode { get; }
}
