using Inbox.Reliability.Media;

namespace Inbox.Reliability.S3;

/// <summary>
/// Settings of the S3 media store. Set through <c>UseS3MediaStore(o => ...)</c>; checked at startup together with the
/// rest of the configuration. The connection settings (<see cref="ServiceUrl"/>, <see cref="Region"/>,
/// <see cref="ForcePathStyle"/>, <see cref="AccessKey"/>, <see cref="SecretKey"/>, <see cref="RequestTimeout"/>) are used
/// only when no <c>IAmazonS3</c> is registered in the services; otherwise that client is used as it is configured.
/// </summary>
public sealed class S3MediaStoreOptions
{
    /// <summary>The smallest part S3 accepts in a multipart upload (except the last): 5 MiB.</summary>
    public const long MinPartSize = 5L * 1024 * 1024;

    /// <summary>The largest part, and the largest single PutObject, S3 accepts: 5 GiB.</summary>
    public const long MaxPartSize = 5L * 1024 * 1024 * 1024;

    /// <summary>The bucket objects are written to. Required; it must exist.</summary>
    public string BucketName { get; set; } = "";

    /// <summary>
    /// Prepended to every key, for example <c>media</c> stores key <c>a/b.jpg</c> as <c>media/a/b.jpg</c>. Optional;
    /// segments of <c>[A-Za-z0-9._-]</c> separated by <c>/</c>.
    /// </summary>
    public string? Prefix { get; set; }

    /// <summary>
    /// The endpoint of an S3-compatible server (MinIO, Ceph, R2, fauxqs...), for example <c>http://127.0.0.1:9000</c>.
    /// Leave unset for Amazon S3 (the endpoint then follows <see cref="Region"/>). With an <c>http</c> URL, read URLs
    /// are <c>http</c> too.
    /// </summary>
    public string? ServiceUrl { get; set; }

    /// <summary>
    /// The region, for example <c>eu-west-1</c>: Amazon S3's endpoint, or the signing region of an S3-compatible server
    /// (default <c>us-east-1</c> there). When unset for Amazon S3, the SDK's default lookup applies (<c>AWS_REGION</c>,
    /// the shared config file).
    /// </summary>
    public string? Region { get; set; }

    /// <summary>Addresses the bucket in the path (<c>host/bucket/key</c>) rather than the host name; most S3-compatible servers need it.</summary>
    public bool ForcePathStyle { get; set; }

    /// <summary>The access key id. When unset, the SDK's default credential chain applies (environment, profile, instance role).</summary>
    public string? AccessKey { get; set; }

    /// <summary>The secret access key, with <see cref="AccessKey"/>. Never logged.</summary>
    public string? SecretKey { get; set; }

    /// <summary>
    /// Objects up to this size are written with one PutObject (buffered in memory up to this size, so the SHA-256 is in the
    /// request); larger ones with a multipart upload. Default 16 MiB; at most 5 GiB.
    /// </summary>
    public long MultipartThreshold { get; set; } = 16L * 1024 * 1024;

    /// <summary>
    /// The size of each multipart part, held in memory while it is uploaded. Default 8 MiB; between 5 MiB and 5 GiB.
    /// An object may have at most 10,000 parts, so this also bounds the largest object (80 GB at the default).
    /// </summary>
    public long PartSize { get; set; } = 8L * 1024 * 1024;

    /// <summary>
    /// The longest one S3 call (a PutObject, one part, a HeadObject...), its retries included, may take before it fails with
    /// <see cref="S3MediaStoreException"/>. Default 2 minutes. Applies with any client; with the store's own client it is also
    /// the HTTP timeout, and connecting is bounded to at most 10 seconds.
    /// </summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>The prefix as stored: empty, or ending with one <c>/</c>.</summary>
    internal string NormalizedPrefix => string.IsNullOrEmpty(Prefix?.Trim('/')) ? "" : Prefix.Trim('/') + "/";

    internal IEnumerable<string> Validate()
    {
        const string method = "UseS3MediaStore";
        if (string.IsNullOrWhiteSpace(BucketName))
        {
            yield return $"{method}: BucketName is required, for example UseS3MediaStore(o => o.BucketName = \"my-media\").";
        }
        else if (BucketName.Length is < 3 or > 63 || BucketName.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_')))
        {
            yield return $"{method}: BucketName \"{BucketName}\" is not a bucket name (3 to 63 letters, digits, '.', '-').";
        }

        var prefix = Prefix?.Trim('/');
        if (!string.IsNullOrEmpty(prefix))
        {
            string? error = null;
            try
            {
                MediaKeys.Validate(prefix);
            }
            catch (ArgumentException)
            {
                error = $"{method}: Prefix \"{Prefix}\" must be segments of A-Z, a-z, 0-9, '.', '_' and '-' separated by '/', without '.' or '..' segments.";
            }

            if (error is not null) yield return error;
        }

        if (ServiceUrl is not null && (!Uri.TryCreate(ServiceUrl, UriKind.Absolute, out var service) || (service.Scheme != Uri.UriSchemeHttp && service.Scheme != Uri.UriSchemeHttps)))
        {
            yield return $"{method}: ServiceUrl must be an absolute http or https URL, for example \"http://127.0.0.1:9000\".";
        }

        if (string.IsNullOrEmpty(AccessKey) != string.IsNullOrEmpty(SecretKey))
        {
            yield return $"{method}: set both AccessKey and SecretKey, or neither (to use the SDK's default credentials).";
        }

        if (MultipartThreshold is < 0 or > MaxPartSize)
        {
            yield return $"{method}: MultipartThreshold must be between 0 and 5 GiB (was {MultipartThreshold}).";
        }

        if (PartSize is < MinPartSize or > MaxPartSize)
        {
            yield return $"{method}: PartSize must be between 5 MiB ({MinPartSize}) and 5 GiB, as S3 requires (was {PartSize}).";
        }

        if (RequestTimeout <= TimeSpan.Zero || RequestTimeout > TimeSpan.FromDays(1))
        {
            yield return $"{method}: RequestTimeout must be positive and at most a day (was {RequestTimeout}).";
        }
    }
}
