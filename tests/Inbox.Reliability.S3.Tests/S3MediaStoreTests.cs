using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Web;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using Inbox.Reliability.Conformance;
using Inbox.Reliability.Media;
using Microsoft.Extensions.DependencyInjection;

namespace Inbox.Reliability.S3.Tests;

/// <summary>What is particular to S3: the requests sent, the metadata and checksums stored, presigning, the client from DI, validation.</summary>
public sealed class S3MediaStoreTests(FauxqsFixture fauxqs) : IClassFixture<FauxqsFixture>
{
    private static byte[] Bytes(int count, int seed)
    {
        var bytes = new byte[count];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    private static string Sha256(byte[] bytes) => Convert.ToHexString(SHA256.HashData(bytes)).ToLowerInvariant();

    /// <summary>A store on the host's own <see cref="IAmazonS3"/> (registered in DI), recording each request it sends.</summary>
    private async Task<(ServiceProvider Services, IMediaStore Store, AmazonS3Client Client, ConcurrentQueue<AmazonWebServiceRequest> Sent, string Bucket)> StoreOnSharedClientAsync(
        Action<S3MediaStoreOptions>? configure = null)
    {
        var client = fauxqs.CreateClient();
        var bucket = S3Clients.NewBucket();
        await client.PutBucketAsync(bucket);
        var sent = new ConcurrentQueue<AmazonWebServiceRequest>();
        client.BeforeRequestEvent += (_, e) =>
        {
            if (e is WebServiceRequestEventArgs request) sent.Enqueue(request.Request);
        };
        var services = new ServiceCollection();
        services.AddSingleton<IAmazonS3>(client);
        services.AddInboxReliability().UseS3MediaStore(o =>
        {
            // No ServiceUrl: only the client from DI knows where the server is.
            o.BucketName = bucket;
            o.Prefix = "p/q/";
            configure?.Invoke(o);
        });
        var provider = services.BuildServiceProvider();
        return (provider, provider.GetRequiredService<IMediaStore>(), client, sent, bucket);
    }

    [Fact]
    public async Task A_small_object_is_one_PutObject_with_its_sha256_as_metadata_and_as_the_checksum_S3_verifies()
    {
        var (services, store, client, sent, bucket) = await StoreOnSharedClientAsync();
        await using var _ = services;
        var bytes = Bytes(100_000, seed: 1);

        var put = await store.PutAsync("a/1.jpg", new NonSeekableStream(bytes, maxRead: 4096), "image/jpeg");

        Assert.Equal(Sha256(bytes), put.Sha256);
        Assert.Equal([typeof(PutObjectRequest)], sent.Select(r => r.GetType()));
        var head = await client.GetObjectMetadataAsync(new GetObjectMetadataRequest { BucketName = bucket, Key = "p/q/a/1.jpg", ChecksumMode = ChecksumMode.ENABLED });
        Assert.Equal(Sha256(bytes), head.Metadata["x-amz-meta-sha256"]);
        Assert.Equal(Convert.ToBase64String(SHA256.HashData(bytes)), head.ChecksumSHA256);
        Assert.Equal("image/jpeg", head.Headers.ContentType);
        Assert.Equal(bytes.Length, head.ContentLength);

        // The host's client stays the host's: disposing the container does not dispose it.
        await services.DisposeAsync();
        Assert.NotNull(await client.GetObjectMetadataAsync(bucket, "p/q/a/1.jpg"));
    }

    [Fact]
    public async Task A_large_object_is_uploaded_in_parts_of_PartSize_and_its_sha256_recorded_in_a_sidecar()
    {
        const int mib = 1024 * 1024;
        var (services, store, client, sent, bucket) = await StoreOnSharedClientAsync(o =>
        {
            o.MultipartThreshold = 12 * mib;
            o.PartSize = 5 * mib;
        });
        await using var _ = services;
        var bytes = Bytes(23 * mib + 1, seed: 2);

        var put = await store.PutAsync("v/big.mp4", new NonSeekableStream(bytes, maxRead: 100_000), "video/mp4");

        Assert.Equal(Sha256(bytes), put.Sha256);
        var requests = sent.ToList();
        Assert.Equal(
            [typeof(InitiateMultipartUploadRequest), typeof(UploadPartRequest), typeof(UploadPartRequest), typeof(UploadPartRequest), typeof(UploadPartRequest),
             typeof(UploadPartRequest), typeof(CompleteMultipartUploadRequest), typeof(PutObjectRequest)],
            requests.Select(r => r.GetType()));
        Assert.Equal([5L * mib, 5L * mib, 5L * mib, 5L * mib, 3L * mib + 1], requests.OfType<UploadPartRequest>().Select(r => r.PartSize));
        Assert.Equal([1, 2, 3, 4, 5], requests.OfType<UploadPartRequest>().Select(r => r.PartNumber ?? 0));
        Assert.Equal("p/q/v/big.mp4~meta", requests.OfType<PutObjectRequest>().Single().Key);

        var head = await client.GetObjectMetadataAsync(bucket, "p/q/v/big.mp4");
        Assert.Equal("video/mp4", head.Headers.ContentType);
        Assert.Equal(bytes.Length, head.ContentLength);
        using (var sidecar = await client.GetObjectAsync(bucket, "p/q/v/big.mp4~meta"))
        using (var json = await System.Text.Json.JsonDocument.ParseAsync(sidecar.ResponseStream))
        {
            Assert.Equal(Sha256(bytes), json.RootElement.GetProperty("sha256").GetString());
            Assert.Equal(head.ETag.Trim('"'), json.RootElement.GetProperty("etag").GetString());
            Assert.Equal(bytes.Length, json.RootElement.GetProperty("size").GetInt64());
        }

        Assert.Equal(new MediaObject("v/big.mp4", bytes.Length, "video/mp4", Sha256(bytes)), await store.GetAsync("v/big.mp4"));

        // Replaced behind the store's back: the sidecar no longer matches the object, so the hash is unknown, not wrong.
        await client.PutObjectAsync(new PutObjectRequest { BucketName = bucket, Key = "p/q/v/big.mp4", ContentBody = "other bytes", ContentType = "text/plain" });
        Assert.Equal(new MediaObject("v/big.mp4", 11, "text/plain", null), await store.GetAsync("v/big.mp4"));

        // Delete removes the sidecar too.
        Assert.True(await store.DeleteAsync("v/big.mp4"));
        var left = await client.ListObjectsV2Async(new ListObjectsV2Request { BucketName = bucket });
        Assert.Empty(left.S3Objects ?? []);
    }

    [Fact]
    public async Task Read_urls_are_presigned_gets_over_the_service_urls_scheme()
    {
        await using var underTest = await S3StoreUnderTest.CreateAsync(fauxqs);
        await underTest.Store.PutAsync("u/1.bin", new MemoryStream([1, 2, 3]), null);

        var url = await underTest.Store.GetReadUrlAsync("u/1.bin", TimeSpan.FromMinutes(5));

        Assert.Equal(Uri.UriSchemeHttp, url.Scheme);
        Assert.Equal($"/{underTest.Bucket}/media/u/1.bin", url.AbsolutePath);
        var query = HttpUtility.ParseQueryString(url.Query);
        // The SDK signs with its clock corrected by the server's Date header (whole seconds): within a second of 300.
        Assert.InRange(int.Parse(query["X-Amz-Expires"]!, System.Globalization.CultureInfo.InvariantCulture), 299, 301);
        Assert.False(string.IsNullOrEmpty(query["X-Amz-Signature"]));
        Assert.DoesNotContain(S3Clients.SecretKey, url.ToString(), StringComparison.Ordinal);
        using var http = new HttpClient();
        Assert.Equal([1, 2, 3], await http.GetByteArrayAsync(url));

        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => underTest.Store.GetReadUrlAsync("u/1.bin", TimeSpan.FromDays(7) + TimeSpan.FromSeconds(1)));
        Assert.NotNull(await underTest.Store.GetReadUrlAsync("u/1.bin", TimeSpan.FromDays(7)));
    }

    [Fact]
    public async Task A_missing_bucket_fails_the_put_with_S3s_error()
    {
        await using var underTest = await S3StoreUnderTest.CreateAsync(fauxqs, o => o.BucketName = "no-such-bucket-here");
        var error = await Assert.ThrowsAsync<S3MediaStoreException>(() => underTest.Store.PutAsync("a/1.bin", new MemoryStream([1]), null));
        Assert.Equal(HttpStatusCode.NotFound, error.StatusCode);
        Assert.Equal("NoSuchBucket", error.ErrorCode);
        Assert.Contains("PutObject of \"a/1.bin\" in bucket \"no-such-bucket-here\"", error.Message, StringComparison.Ordinal);
        Assert.Contains(fauxqs.Server.ServiceUrl, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(S3Clients.SecretKey, error.ToString(), StringComparison.Ordinal);
        Assert.IsAssignableFrom<AmazonS3Exception>(error.InnerException);
    }

    [Fact]
    public void Bad_options_are_reported_at_startup_with_every_problem_and_never_the_secret()
    {
        var services = new ServiceCollection();
        services.AddInboxReliability().UseS3MediaStore(o =>
        {
            o.Prefix = "../up";
            o.ServiceUrl = "localhost:9000";
            o.SecretKey = "do-not-print-this-secret";
            o.MultipartThreshold = -1;
            o.PartSize = 1024;
            o.RequestTimeout = TimeSpan.Zero;
        });
        using var provider = services.BuildServiceProvider();
        var errors = provider.GetServices<IInboxConfigurationValidator>().SelectMany(v => v.Validate()).ToList();

        Assert.Contains(errors, e => e.StartsWith("UseS3MediaStore: BucketName is required", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("UseS3MediaStore: Prefix \"../up\" must be segments", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("UseS3MediaStore: ServiceUrl must be an absolute http or https URL", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("UseS3MediaStore: set both AccessKey and SecretKey, or neither", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("UseS3MediaStore: MultipartThreshold must be between 0 and 5 GiB", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("UseS3MediaStore: PartSize must be between 5 MiB", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("UseS3MediaStore: RequestTimeout must be positive", StringComparison.Ordinal));
        Assert.DoesNotContain(errors, e => e.Contains("do-not-print-this-secret", StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_S3_and_a_file_system_store_together_fail_startup_naming_both()
    {
        var services = new ServiceCollection();
        services.AddInboxReliability()
            .UseS3MediaStore(o => S3Clients.Configure(o, fauxqs.Server, "test-bucket"))
            .UseFileSystemMediaStore("data/media");
        await using var provider = services.BuildServiceProvider();
        var errors = provider.GetServices<IInboxConfigurationValidator>().SelectMany(v => v.Validate()).ToList();
        Assert.Contains("Inbox.Reliability has 2 media stores configured (UseS3MediaStore(), UseFileSystemMediaStore()); keep exactly one.", errors);
    }
}
