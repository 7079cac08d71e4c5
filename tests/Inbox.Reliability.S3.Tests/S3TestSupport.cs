using System.Net;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using Inbox.Reliability.Conformance;
using Inbox.Reliability.Media;
using Inbox.Reliability.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Inbox.Reliability.S3.Tests;

/// <summary>One fauxqs server for a test class, started by the tests themselves (installed with npm on first use).</summary>
public sealed class FauxqsFixture : IAsyncLifetime
{
    public FauxqsServer Server { get; } = new();

    public Task InitializeAsync() => Server.StartAsync();

    public Task DisposeAsync() => Server.StopAsync();

    /// <summary>A client of the test's own, for what the store does not do (buckets, raw HEADs, listings).</summary>
    public AmazonS3Client CreateClient(TimeSpan? timeout = null) => S3Clients.For(Server, timeout);
}

public static class S3Clients
{
    public const string AccessKey = "test-access-key";
    public const string SecretKey = "test-secret-key";

    public static AmazonS3Client For(FauxqsServer server, TimeSpan? timeout = null) => new(
        new BasicAWSCredentials(AccessKey, SecretKey),
        new AmazonS3Config { ServiceURL = server.ServiceUrl, ForcePathStyle = true, AuthenticationRegion = "us-east-1", Timeout = timeout ?? TimeSpan.FromSeconds(30) });

    /// <summary>The store options pointing at the server, the way a host configures an S3-compatible server.</summary>
    public static void Configure(S3MediaStoreOptions o, FauxqsServer server, string bucket)
    {
        o.BucketName = bucket;
        o.ServiceUrl = server.ServiceUrl;
        o.ForcePathStyle = true;
        o.AccessKey = AccessKey;
        o.SecretKey = SecretKey;
    }

    public static string NewBucket() => "t-" + Guid.NewGuid().ToString("n")[..20];
}

/// <summary>
/// A fresh bucket per test on the shared server and a store built through <c>AddInboxReliability().UseS3MediaStore</c>,
/// with a small multipart threshold (1 MiB) and the smallest part S3 allows (5 MiB), so large-object tests take
/// several parts.
/// </summary>
public sealed class S3StoreUnderTest : IMediaStoreUnderTest
{
    private readonly ServiceProvider _services;
    private readonly AmazonS3Client _client;

    private S3StoreUnderTest(ServiceProvider services, AmazonS3Client client, string bucket)
    {
        _services = services;
        _client = client;
        Bucket = bucket;
        Store = services.GetRequiredService<IMediaStore>();
    }

    public string Bucket { get; }

    public IMediaStore Store { get; }

    public int LargeObjectSize => 6 * 1024 * 1024;

    public static async Task<S3StoreUnderTest> CreateAsync(FauxqsFixture fixture, Action<S3MediaStoreOptions>? configure = null)
    {
        var client = fixture.CreateClient();
        var bucket = S3Clients.NewBucket();
        await client.PutBucketAsync(bucket);
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddInboxReliability().UseS3MediaStore(o =>
        {
            S3Clients.Configure(o, fixture.Server, bucket);
            o.Prefix = "media";
            o.MultipartThreshold = 1024 * 1024;
            o.PartSize = S3MediaStoreOptions.MinPartSize;
            o.RequestTimeout = TimeSpan.FromSeconds(20);
            configure?.Invoke(o);
        });
        return new S3StoreUnderTest(services.BuildServiceProvider(), client, bucket);
    }

    /// <summary>
    /// The objects in the bucket, and whether a multipart upload is still open: fauxqs has no ListMultipartUploads, but
    /// refuses to delete a bucket holding one, so an empty bucket is deleted (then created again) to find out.
    /// </summary>
    public async Task<IReadOnlyList<string>> ListBackingEntriesAsync()
    {
        var objects = await _client.ListObjectsV2Async(new ListObjectsV2Request { BucketName = Bucket });
        var keys = (objects.S3Objects ?? []).Select(o => o.Key).Order(StringComparer.Ordinal).ToList();
        if (keys.Count > 0) return keys;
        try
        {
            await _client.DeleteBucketAsync(Bucket);
        }
        catch (AmazonS3Exception ex) when (ex.StatusCode == HttpStatusCode.Conflict)
        {
            return ["(a multipart upload in progress)"];
        }

        await _client.PutBucketAsync(Bucket);
        return [];
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            var objects = await _client.ListObjectsV2Async(new ListObjectsV2Request { BucketName = Bucket });
            foreach (var o in objects.S3Objects ?? []) await _client.DeleteObjectAsync(Bucket, o.Key);
        }
        catch (AmazonServiceException)
        {
            // The server may be down by now (outage tests): its memory goes with it.
        }

        await _services.DisposeAsync();
        _client.Dispose();
    }
}
