using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using Inbox.Reliability.Media;
using Microsoft.Extensions.Logging;

namespace Inbox.Reliability.S3;

/// <summary>
/// Media in an S3 bucket, under <c>{Prefix}/{key}</c>. A put streams: up to <see cref="S3MediaStoreOptions.MultipartThreshold"/>
/// bytes are buffered and written with one PutObject (the SHA-256 in <c>x-amz-meta-sha256</c> and as the request's
/// <c>x-amz-checksum-sha256</c>, which S3 verifies); a larger object becomes a multipart upload of
/// <see cref="S3MediaStoreOptions.PartSize"/> parts read one at a time into the same pooled chunks, aborted on failure
/// or cancellation. Its SHA-256 is known only once every byte was read, after the parts are stored, so it goes to a small
/// sidecar object, <c>{Prefix}/{key}~meta</c> (<c>{"v":1,"etag":…,"size":…,"sha256":…}</c>), written right after the
/// upload completes and trusted only while its ETag and size match the object's (keys never contain <c>~</c>, so no key
/// is a sidecar's). S3 makes both PutObject and CompleteMultipartUpload atomic: readers see the old object or the whole
/// new one.
/// </summary>
internal sealed partial class S3MediaStore : IMediaStore, IDisposable
{
    internal const string Sha256Metadata = "sha256";
    internal const string SidecarSuffix = "~meta";
    private const string DefaultContentType = "application/octet-stream";
    private const int SidecarVersion = 1;
    private const int ChunkSize = 1024 * 1024;
    private const int MaxParts = 10_000;
    private static readonly TimeSpan MaxPresignedExpiry = TimeSpan.FromDays(7);
    private static readonly TimeSpan PresignMargin = TimeSpan.FromSeconds(5);

    private readonly IAmazonS3 _client;
    private readonly bool _ownsClient;
    private readonly string _bucket;
    private readonly string _prefix;
    private readonly long _threshold;
    private readonly long _partSize;
    private readonly TimeSpan _timeout;
    private readonly ILogger _logger;

    public S3MediaStore(S3MediaStoreOptions options, IAmazonS3 client, bool ownsClient, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(client);
        var errors = options.Validate().ToList();
        if (errors.Count > 0) throw new InvalidOperationException(string.Join(Environment.NewLine, errors));
        _client = client;
        _ownsClient = ownsClient;
        _bucket = options.BucketName;
        _prefix = options.NormalizedPrefix;
        _threshold = options.MultipartThreshold;
        _partSize = options.PartSize;
        _timeout = options.RequestTimeout;
        _logger = logger;
    }

    /// <summary>Where requests go, for messages: the service URL or the region (never credentials).</summary>
    private string Endpoint => _client.Config.ServiceURL is { Length: > 0 } url ? url : "S3 region " + (_client.Config.RegionEndpoint?.SystemName ?? "(default)");

    /// <summary>Builds the store's own client from the options (used when no <see cref="IAmazonS3"/> is registered).</summary>
    internal static AmazonS3Client CreateClient(S3MediaStoreOptions options)
    {
        var config = new AmazonS3Config
        {
            ForcePathStyle = options.ForcePathStyle,
            Timeout = options.RequestTimeout,
            ConnectTimeout = options.RequestTimeout < TimeSpan.FromSeconds(10) ? options.RequestTimeout : TimeSpan.FromSeconds(10),
        };
        if (!string.IsNullOrEmpty(options.ServiceUrl))
        {
            config.ServiceURL = options.ServiceUrl;
            config.AuthenticationRegion = string.IsNullOrEmpty(options.Region) ? "us-east-1" : options.Region;
        }
        else if (!string.IsNullOrEmpty(options.Region))
        {
            config.RegionEndpoint = Amazon.RegionEndpoint.GetBySystemName(options.Region);
        }

        return string.IsNullOrEmpty(options.AccessKey)
            ? new AmazonS3Client(config)
            : new AmazonS3Client(new BasicAWSCredentials(options.AccessKey, options.SecretKey), config);
    }

    /// <summary>The object key in the bucket.</summary>
    internal string ObjectKey(string key) => _prefix + key;

    public async Task<MediaObject> PutAsync(string key, Stream content, string? contentType, CancellationToken cancellationToken = default)
    {
        MediaKeys.Validate(key);
        ArgumentNullException.ThrowIfNull(content);
        cancellationToken.ThrowIfCancellationRequested();

        using var buffer = new SegmentedBuffer(ChunkSize);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

        // S3 always records a type: without one the SDK would guess it from the key's extension, so say it is unknown bytes.
        contentType ??= DefaultContentType;

        // Up to one byte past the threshold tells a single PutObject from a multipart upload.
        var ended = false;
        while (buffer.Length <= _threshold)
        {
            if (await buffer.AppendAsync(content, _threshold + 1 - buffer.Length, hash, cancellationToken).ConfigureAwait(false) == 0)
            {
                ended = true;
                break;
            }
        }

        return ended
            ? await PutSingleAsync(key, buffer, hash, contentType, cancellationToken).ConfigureAwait(false)
            : await PutMultipartAsync(key, content, buffer, hash, contentType, cancellationToken).ConfigureAwait(false);
    }

    public async Task<MediaObject?> GetAsync(string key, CancellationToken cancellationToken = default)
    {
        MediaKeys.Validate(key);
        var head = await HeadAsync(key, cancellationToken).ConfigureAwait(false);
        if (head is null) return null;

        // A single put carries its hash; a multipart one has it in its sidecar.
        var sha256 = ReadSha256(head.Metadata) ?? await ReadSidecarAsync(key, head.ETag, head.ContentLength, cancellationToken).ConfigureAwait(false);
        return new MediaObject(key, head.ContentLength, head.Headers.ContentType, sha256);
    }

    public async Task<Stream> OpenReadAsync(string key, CancellationToken cancellationToken = default)
    {
        MediaKeys.Validate(key);
        var request = new GetObjectRequest { BucketName = _bucket, Key = ObjectKey(key) };
        var response = await CallAsync("GetObject", key, token => _client.GetObjectAsync(request, token), cancellationToken, notFoundIsNull: true).ConfigureAwait(false);
        if (response is null) throw new MediaObjectNotFoundException($"There is no media object under the key \"{key}\".");
        return new ResponseStream(response);
    }

    public async Task<bool> DeleteAsync(string key, CancellationToken cancellationToken = default)
    {
        MediaKeys.Validate(key);

        // S3 deletes answer the same whether or not there was an object: a HEAD tells.
        if (await HeadAsync(key, cancellationToken).ConfigureAwait(false) is null) return false;
        var request = new DeleteObjectRequest { BucketName = _bucket, Key = ObjectKey(key) };
        await CallAsync("DeleteObject", key, token => _client.DeleteObjectAsync(request, token), cancellationToken).ConfigureAwait(false);
        try
        {
            var sidecar = new DeleteObjectRequest { BucketName = _bucket, Key = ObjectKey(key) + SidecarSuffix };
            await CallAsync("DeleteObject (sidecar)", key, token => _client.DeleteObjectAsync(sidecar, token), cancellationToken).ConfigureAwait(false);
        }
        catch (S3MediaStoreException ex)
        {
            // The object is gone; a leftover sidecar matches no other object's ETag, so it is never trusted for one.
            LogSidecarNotDeleted(_logger, key, ex);
        }

        return true;
    }

    public async Task<Uri> GetReadUrlAsync(string key, TimeSpan expiresIn, CancellationToken cancellationToken = default)
    {
        MediaKeys.Validate(key);
        if (expiresIn <= TimeSpan.Zero || expiresIn > MaxPresignedExpiry)
        {
            throw new ArgumentOutOfRangeException(nameof(expiresIn), expiresIn, "An S3 presigned URL expires in more than 0 seconds and at most 7 days.");
        }

        cancellationToken.ThrowIfCancellationRequested();
        var request = new GetPreSignedUrlRequest
        {
            BucketName = _bucket,
            Key = ObjectKey(key),
            Verb = HttpVerb.GET,

            // The SDK signs with its own clock (corrected by the servers' Date headers, to the second) and turns this into
            // X-Amz-Expires relative to it; at the 7-day limit a few seconds are given up so that correction cannot push it over.
            Expires = DateTime.UtcNow.Add(expiresIn > MaxPresignedExpiry - PresignMargin ? MaxPresignedExpiry - PresignMargin : expiresIn),
            Protocol = _client.Config.ServiceURL?.StartsWith("http://", StringComparison.OrdinalIgnoreCase) == true ? Protocol.HTTP : Protocol.HTTPS,
        };
        return new Uri(await _client.GetPreSignedURLAsync(request).ConfigureAwait(false), UriKind.Absolute);
    }

    public void Dispose()
    {
        if (_ownsClient) _client.Dispose();
    }

    private async Task<MediaObject> PutSingleAsync(string key, SegmentedBuffer buffer, IncrementalHash hash, string? contentType, CancellationToken cancellationToken)
    {
        var digest = hash.GetHashAndReset();
        var sha256 = Convert.ToHexString(digest).ToLowerInvariant();
        var size = buffer.Length;
        var request = new PutObjectRequest
        {
            BucketName = _bucket,
            Key = ObjectKey(key),
            InputStream = buffer.OpenRead(size),
            AutoCloseStream = true,
            ContentType = contentType,

            // S3 checks the body against it and refuses a corrupted upload.
            ChecksumSHA256 = Convert.ToBase64String(digest),
        };
        request.Metadata.Add(Sha256Metadata, sha256);
        await CallAsync("PutObject", key, token => _client.PutObjectAsync(request, token), cancellationToken).ConfigureAwait(false);
        return new MediaObject(key, size, contentType, sha256);
    }

    private async Task<MediaObject> PutMultipartAsync(string key, Stream content, SegmentedBuffer buffer, IncrementalHash hash, string? contentType, CancellationToken cancellationToken)
    {
        var objectKey = ObjectKey(key);
        var initiate = new InitiateMultipartUploadRequest { BucketName = _bucket, Key = objectKey, ContentType = contentType };
        var upload = await CallAsync("CreateMultipartUpload", key, token => _client.InitiateMultipartUploadAsync(initiate, token), cancellationToken).ConfigureAwait(false);
        var uploadId = upload!.UploadId;
        CompleteMultipartUploadResponse completed;
        long size = 0;
        try
        {
            var parts = new List<UploadPartResponse>();
            while (true)
            {
                while (buffer.Length >= _partSize)
                {
                    parts.Add(await UploadPartAsync(key, objectKey, uploadId, parts.Count + 1, buffer, _partSize, cancellationToken).ConfigureAwait(false));
                    size += _partSize;
                }

                if (await buffer.AppendAsync(content, _partSize - buffer.Length, hash, cancellationToken).ConfigureAwait(false) == 0) break;
            }

            if (buffer.Length > 0)
            {
                var last = buffer.Length;
                parts.Add(await UploadPartAsync(key, objectKey, uploadId, parts.Count + 1, buffer, last, cancellationToken).ConfigureAwait(false));
                size += last;
            }

            var complete = new CompleteMultipartUploadRequest { BucketName = _bucket, Key = objectKey, UploadId = uploadId };
            complete.AddPartETags(parts);
            completed = (await CallAsync("CompleteMultipartUpload", key, token => _client.CompleteMultipartUploadAsync(complete, token), cancellationToken).ConfigureAwait(false))!;
        }
        catch (Exception ex)
        {
            await AbortAsync(key, objectKey, uploadId, ex).ConfigureAwait(false);
            throw;
        }

        var sha256 = Convert.ToHexString(hash.GetHashAndReset()).ToLowerInvariant();
        await WriteSidecarAsync(key, objectKey, size, completed.ETag, sha256).ConfigureAwait(false);
        return new MediaObject(key, size, contentType, sha256);
    }

    private async Task<UploadPartResponse> UploadPartAsync(string key, string objectKey, string uploadId, int partNumber, SegmentedBuffer buffer, long count, CancellationToken cancellationToken)
    {
        if (partNumber > MaxParts)
        {
            throw new S3MediaStoreException(
                $"S3 media store: \"{key}\" is larger than {MaxParts:N0} parts of {_partSize:N0} bytes, the most a multipart upload holds; raise PartSize.");
        }

        var request = new UploadPartRequest
        {
            BucketName = _bucket,
            Key = objectKey,
            UploadId = uploadId,
            PartNumber = partNumber,
            PartSize = count,
            InputStream = buffer.OpenRead(count),
        };
        var response = await CallAsync("UploadPart", key, token => _client.UploadPartAsync(request, token), cancellationToken).ConfigureAwait(false);

        // The part is stored: its chunks take the next part's bytes.
        buffer.Consume(count);
        return response!;
    }

    /// <summary>
    /// Records the SHA-256 of a completed multipart object in its sidecar, with the ETag and size of the upload just
    /// completed. It runs to the end even when the put is canceled (the object is already visible). When it fails, the
    /// object is deleted and the put fails: nothing is left whose hash cannot be known.
    /// </summary>
    private async Task WriteSidecarAsync(string key, string objectKey, long size, string etag, string sha256)
    {
        var body = new MemoryStream(256);
        using (var json = new Utf8JsonWriter(body))
        {
            json.WriteStartObject();
            json.WriteNumber("v", SidecarVersion);
            json.WriteString("etag", etag.Trim('"'));
            json.WriteNumber("size", size);
            json.WriteString("sha256", sha256);
            json.WriteEndObject();
        }

        body.Position = 0;
        var put = new PutObjectRequest
        {
            BucketName = _bucket,
            Key = objectKey + SidecarSuffix,
            InputStream = body,
            AutoCloseStream = true,
            ContentType = "application/json",
        };
        try
        {
            await CallAsync("PutObject (SHA-256 sidecar)", key, token => _client.PutObjectAsync(put, token), CancellationToken.None).ConfigureAwait(false);
        }
        catch (S3MediaStoreException ex)
        {
            try
            {
                var delete = new DeleteObjectRequest { BucketName = _bucket, Key = objectKey };
                await CallAsync("DeleteObject", key, token => _client.DeleteObjectAsync(delete, token), CancellationToken.None).ConfigureAwait(false);
            }
            catch (S3MediaStoreException deleteFailure)
            {
                LogCleanupFailed(_logger, key, deleteFailure);
            }

            throw new S3MediaStoreException(
                $"S3 media store: \"{key}\" was uploaded but its SHA-256 could not be recorded, so the object was removed: {ex.Message}",
                ex.StatusCode, ex.ErrorCode, ex);
        }
    }

    /// <summary>The SHA-256 from a multipart object's sidecar, when the sidecar is this object's (same ETag and size); else null.</summary>
    private async Task<string?> ReadSidecarAsync(string key, string? etag, long size, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(etag)) return null;
        var request = new GetObjectRequest { BucketName = _bucket, Key = ObjectKey(key) + SidecarSuffix };
        using var response = await CallAsync("GetObject (sidecar)", key, token => _client.GetObjectAsync(request, token), cancellationToken, notFoundIsNull: true).ConfigureAwait(false);
        if (response is null || response.ContentLength > 4096) return null;
        try
        {
            using var json = await JsonDocument.ParseAsync(response.ResponseStream, cancellationToken: cancellationToken).ConfigureAwait(false);
            var root = json.RootElement;
            if (root.ValueKind != JsonValueKind.Object ||
                !root.TryGetProperty("v", out var version) || version.ValueKind != JsonValueKind.Number || version.GetInt32() != SidecarVersion ||
                !root.TryGetProperty("etag", out var recordedEtag) || recordedEtag.ValueKind != JsonValueKind.String || recordedEtag.GetString() != etag.Trim('"') ||
                !root.TryGetProperty("size", out var recordedSize) || recordedSize.ValueKind != JsonValueKind.Number || recordedSize.GetInt64() != size ||
                !root.TryGetProperty("sha256", out var hash) || hash.ValueKind != JsonValueKind.String)
            {
                // Another object's (replaced meanwhile, or a put that never recorded its own): nothing trustworthy.
                return null;
            }

            var value = hash.GetString();
            return value is { Length: 64 } && value.All(char.IsAsciiHexDigitLower) ? value : null;
        }
        catch (Exception ex) when (ex is JsonException or FormatException or InvalidOperationException)
        {
            return null;
        }
    }

    private async Task AbortAsync(string key, string objectKey, string uploadId, Exception cause)
    {
        try
        {
            var abort = new AbortMultipartUploadRequest { BucketName = _bucket, Key = objectKey, UploadId = uploadId };
            await CallAsync("AbortMultipartUpload", key, token => _client.AbortMultipartUploadAsync(abort, token), CancellationToken.None).ConfigureAwait(false);
        }
        catch (S3MediaStoreException ex)
        {
            // The parts stay billed until a lifecycle rule (AbortIncompleteMultipartUpload) removes them.
            LogAbortFailed(_logger, key, cause.GetType().Name, ex);
        }
    }

    private Task<GetObjectMetadataResponse?> HeadAsync(string key, CancellationToken cancellationToken)
    {
        var request = new GetObjectMetadataRequest { BucketName = _bucket, Key = ObjectKey(key) };
        return CallAsync("HeadObject", key, token => _client.GetObjectMetadataAsync(request, token), cancellationToken, notFoundIsNull: true);
    }

    private static string? ReadSha256(MetadataCollection metadata)
    {
        var value = metadata[Sha256Metadata];
        return value is { Length: 64 } && value.All(char.IsAsciiHexDigitLower) ? value : null;
    }

    /// <summary>
    /// One S3 call, bounded by <see cref="S3MediaStoreOptions.RequestTimeout"/>, failures turned into
    /// <see cref="S3MediaStoreException"/> (a cancellation by the caller stays an <see cref="OperationCanceledException"/>).
    /// </summary>
    private async Task<T?> CallAsync<T>(string operation, string key, Func<CancellationToken, Task<T>> call, CancellationToken cancellationToken, bool notFoundIsNull = false)
        where T : class
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_timeout);
        try
        {
            return await call(timeout.Token).ConfigureAwait(false);
        }
        catch (AmazonS3Exception ex) when (notFoundIsNull && ex.StatusCode == HttpStatusCode.NotFound && ex.ErrorCode is not "NoSuchBucket")
        {
            return null;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (OperationCanceledException ex)
        {
            throw new S3MediaStoreException(
                $"S3 media store: {operation} of \"{key}\" in bucket \"{_bucket}\" at {Endpoint} did not finish within {_timeout.TotalSeconds:0.###} s (RequestTimeout).",
                null, null, ex);
        }
        catch (AmazonServiceException ex) when (ex.StatusCode != 0)
        {
            throw new S3MediaStoreException(
                $"S3 media store: {operation} of \"{key}\" in bucket \"{_bucket}\" at {Endpoint} failed with {(int)ex.StatusCode} {ex.ErrorCode}: {ex.Message}",
                ex.StatusCode, ex.ErrorCode, ex);
        }
        catch (Exception ex) when (ex is AmazonClientException or HttpRequestException or IOException or System.Net.Sockets.SocketException)
        {
            throw new S3MediaStoreException(
                $"S3 media store: {operation} of \"{key}\" in bucket \"{_bucket}\" failed: {Endpoint} could not be reached ({Innermost(ex).Message}).",
                null, null, ex);
        }
    }

    private static Exception Innermost(Exception ex)
    {
        while (ex.InnerException is not null) ex = ex.InnerException;
        return ex;
    }

    [LoggerMessage(5001, LogLevel.Warning, "S3 media store: the multipart upload of {Key} failed ({Cause}) and could not be aborted; its parts stay in the bucket until a lifecycle rule (AbortIncompleteMultipartUpload) removes them")]
    private static partial void LogAbortFailed(ILogger logger, string key, string cause, Exception exception);

    [LoggerMessage(5002, LogLevel.Warning, "S3 media store: {Key} was uploaded but neither its SHA-256 could be recorded nor the object removed; it is readable, with its hash unknown")]
    private static partial void LogCleanupFailed(ILogger logger, string key, Exception exception);

    [LoggerMessage(5003, LogLevel.Warning, "S3 media store: {Key} was deleted but its SHA-256 sidecar could not be; the sidecar is never trusted for another object")]
    private static partial void LogSidecarNotDeleted(ILogger logger, string key, Exception exception);

    /// <summary>The body of a GetObject; disposing it releases the HTTP response.</summary>
    private sealed class ResponseStream(GetObjectResponse response) : Stream
    {
        private readonly Stream _inner = response.ResponseStream;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => response.ContentLength;

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, count);

        public override int Read(Span<byte> buffer) => _inner.Read(buffer);

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            _inner.ReadAsync(buffer, offset, count, cancellationToken);

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            _inner.ReadAsync(buffer, cancellationToken);

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _inner.Dispose();
                response.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
