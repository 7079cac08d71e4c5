using System.Diagnostics;
using Inbox.Reliability.Conformance;
using Inbox.Reliability.Media;
using Inbox.Reliability.Testing;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace Inbox.Reliability.S3.Tests;

/// <summary>
/// S3 unavailable: each test runs its own server and stops it (killed: connections refused) or freezes it (SIGSTOP: connections
/// accepted, nothing answered). A put then fails within bounded time with a clear exception, and works again once S3 is back.
/// </summary>
public sealed class S3OutageTests(ITestOutputHelper output) : IAsyncLifetime
{
    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(2);
    private readonly FauxqsServer _server = new("media-bucket");
    private ServiceProvider _services = null!;

    private IMediaStore Store => _services.GetRequiredService<IMediaStore>();

    public async Task InitializeAsync()
    {
        await _server.StartAsync();
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddInboxReliability().UseS3MediaStore(o =>
        {
            S3Clients.Configure(o, _server, "media-bucket");
            o.MultipartThreshold = 1024 * 1024;
            o.PartSize = S3MediaStoreOptions.MinPartSize;
            o.RequestTimeout = RequestTimeout;
        });
        _services = services.BuildServiceProvider();
    }

    public async Task DisposeAsync()
    {
        await _services.DisposeAsync();
        await _server.DisposeAsync();
    }

    private static byte[] Bytes(int count, int seed)
    {
        var bytes = new byte[count];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    [Fact]
    public async Task While_S3_is_down_a_put_fails_fast_and_clearly_and_once_it_is_back_puts_work_again()
    {
        await Store.PutAsync("a/before.bin", new MemoryStream([1]), null);
        await _server.StopAsync();

        var clock = Stopwatch.StartNew();
        var error = await Assert.ThrowsAsync<S3MediaStoreException>(() =>
            Eventually.Within(Store.PutAsync("a/during.bin", new MemoryStream(Bytes(10_000, 1)), "image/jpeg"), "the put to fail", TimeSpan.FromSeconds(30)));
        output.WriteLine($"failed after {clock.Elapsed.TotalMilliseconds:F0} ms: {error.Message}");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"the failure took {clock.Elapsed}");
        Assert.Null(error.StatusCode);
        Assert.StartsWith("S3 media store: PutObject of \"a/during.bin\" in bucket \"media-bucket\"", error.Message, StringComparison.Ordinal);
        Assert.Contains(_server.ServiceUrl, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(S3Clients.SecretKey, error.ToString(), StringComparison.Ordinal);

        await Assert.ThrowsAsync<S3MediaStoreException>(() => Store.GetAsync("a/before.bin"));

        // Back (on the same port, empty: fauxqs keeps objects in memory).
        await _server.StartAsync();
        var bytes = Bytes(10_000, 2);
        var put = await Store.PutAsync("a/after.bin", new MemoryStream(bytes), "image/jpeg");
        Assert.Equal(bytes.Length, put.Size);
        Assert.Equal(put, await Store.GetAsync("a/after.bin"));
    }

    [Fact]
    public async Task A_hung_server_fails_a_put_within_the_request_timeout_and_puts_work_once_it_answers_again()
    {
        await Store.PutAsync("h/before.bin", new MemoryStream([1]), null);
        _server.Pause();
        try
        {
            var clock = Stopwatch.StartNew();
            var error = await Assert.ThrowsAsync<S3MediaStoreException>(() =>
                Eventually.Within(Store.PutAsync("h/during.bin", new MemoryStream(Bytes(10_000, 3)), null), "the put to time out", TimeSpan.FromSeconds(30)));
            output.WriteLine($"failed after {clock.Elapsed.TotalMilliseconds:F0} ms: {error.Message}");
            Assert.InRange(clock.Elapsed, RequestTimeout - TimeSpan.FromMilliseconds(100), RequestTimeout * 4);
            Assert.Contains("did not finish within 2 s (RequestTimeout)", error.Message, StringComparison.Ordinal);
            Assert.IsAssignableFrom<OperationCanceledException>(error.InnerException);
        }
        finally
        {
            _server.Resume();
        }

        var bytes = Bytes(20_000, 4);
        var put = await Store.PutAsync("h/after.bin", new MemoryStream(bytes), null);
        Assert.Equal(put.Sha256, (await Store.GetAsync("h/after.bin"))?.Sha256);
    }

    [Fact]
    public async Task S3_going_down_in_the_middle_of_a_multipart_put_fails_it_and_the_next_put_works()
    {
        var size = 12 * 1024 * 1024;
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var source = new NonSeekableStream(Bytes(size, 5), maxRead: 64 * 1024) { PauseAt = (7 * 1024 * 1024, gate.Task) };
        var putting = Store.PutAsync("m/big.mp4", source, "video/mp4");

        // Past the threshold, one part uploaded: then S3 goes away.
        await Eventually.TrueAsync(() => source.Paused, "the put to be half way", TimeSpan.FromSeconds(30));
        await _server.StopAsync();
        gate.SetResult();
        var error = await Assert.ThrowsAsync<S3MediaStoreException>(() => Eventually.Within(putting, "the put to fail", TimeSpan.FromSeconds(30)));
        output.WriteLine(error.Message);
        Assert.Contains("UploadPart of \"m/big.mp4\"", error.Message, StringComparison.Ordinal);

        await _server.StartAsync();
        var bytes = Bytes(size, 6);
        var put = await Store.PutAsync("m/big.mp4", new NonSeekableStream(bytes, maxRead: 64 * 1024), "video/mp4");
        Assert.Equal(put, await Store.GetAsync("m/big.mp4"));
        await using var read = await Store.OpenReadAsync("m/big.mp4");
        using var copy = new MemoryStream();
        await read.CopyToAsync(copy);
        Assert.Equal(bytes, copy.ToArray());
    }
}
