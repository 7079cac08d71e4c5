using System.Net;
using System.Security.Cryptography;
using Inbox.Reliability.Media;
using Inbox.Reliability.Testing;
using Xunit;

namespace Inbox.Reliability.Conformance;

/// <summary>What a media store's tests supply to close <see cref="MediaStoreConformanceTests"/>: a fresh, empty store per test.</summary>
public interface IMediaStoreUnderTest : IAsyncDisposable
{
    /// <summary>The store, built the way a host builds it (through <c>AddInboxReliability</c>).</summary>
    IMediaStore Store { get; }

    /// <summary>
    /// A size over the store's multipart threshold (configured small for the tests), so the suite writes objects that take
    /// the large-object path; any size of a few megabytes for a store without one.
    /// </summary>
    int LargeObjectSize { get; }

    /// <summary>
    /// Everything the backing storage holds for this store, as names (files under the root, temporary files included;
    /// objects and in-progress multipart uploads in the bucket): what a failed or canceled write must not leave.
    /// </summary>
    Task<IReadOnlyList<string>> ListBackingEntriesAsync();
}

/// <summary>
/// The contract of <see cref="IMediaStore"/>. A media store is done when a subclass of this passes against the real thing
/// (a folder, an S3-compatible server): streaming puts of any size from non-seekable streams, atomic replace, SHA-256,
/// read URLs fetched over HTTP, unsafe keys refused, and nothing left behind by a canceled or failed put.
/// </summary>
public abstract class MediaStoreConformanceTests : IAsyncLifetime
{
    private const string EmptySha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private IMediaStoreUnderTest _underTest = null!;

    protected abstract Task<IMediaStoreUnderTest> CreateStoreAsync();

    protected IMediaStore Store => _underTest.Store;

    protected IMediaStoreUnderTest UnderTest => _underTest;

    protected static HttpClient Http { get; } = new() { Timeout = TimeSpan.FromSeconds(30) };

    public async Task InitializeAsync() => _underTest = await CreateStoreAsync();

    public async Task DisposeAsync() => await _underTest.DisposeAsync();

    public static TheoryData<string> UnsafeKeys() =>
    [
        "../escape.bin", "a/../../escape.bin", "a/./b.bin", ".", "..", "/absolute.bin", "a/b/", "a//b.bin", "a\\b.bin", "..\\escape.bin",
        "C:/windows.bin", "a b.bin", "%2e%2e/escape.bin", "a/~meta", "ünicode.bin", "",
    ];

    [Fact]
    public async Task Put_get_open_and_delete_round_trip()
    {
        var bytes = Bytes(100_000, seed: 1);
        var put = await Store.PutAsync("inst-1/2026/01/02/41.jpg", new MemoryStream(bytes), "image/jpeg");
        Assert.Equal(new MediaObject("inst-1/2026/01/02/41.jpg", bytes.Length, "image/jpeg", Sha256(bytes)), put);

        Assert.Equal(put, await Store.GetAsync("inst-1/2026/01/02/41.jpg"));
        Assert.Equal(bytes, await ReadAllAsync("inst-1/2026/01/02/41.jpg"));

        Assert.True(await Store.DeleteAsync("inst-1/2026/01/02/41.jpg"));
        Assert.Null(await Store.GetAsync("inst-1/2026/01/02/41.jpg"));
        await Assert.ThrowsAsync<MediaObjectNotFoundException>(() => Store.OpenReadAsync("inst-1/2026/01/02/41.jpg"));
        Assert.False(await Store.DeleteAsync("inst-1/2026/01/02/41.jpg"));
        Assert.Empty(await UnderTest.ListBackingEntriesAsync());
    }

    [Fact]
    public async Task Missing_keys_read_as_null_not_found_and_false()
    {
        await Store.PutAsync("present/1.bin", new MemoryStream([1, 2, 3]), null);
        foreach (var key in new[] { "never/written.bin", "present/2.bin", "present/1.bin/deeper.bin", "present" })
        {
            Assert.Null(await Store.GetAsync(key));
            var missing = await Assert.ThrowsAsync<MediaObjectNotFoundException>(() => Store.OpenReadAsync(key));
            Assert.Contains(key, missing.Message, StringComparison.Ordinal);
            Assert.False(await Store.DeleteAsync(key));
        }

        Assert.Equal([1, 2, 3], await ReadAllAsync("present/1.bin"));
    }

    [Fact]
    public async Task Put_without_a_content_type_reads_back_as_the_put_reported_it()
    {
        var put = await Store.PutAsync("types/clip.mp4", new MemoryStream([1, 2, 3]), null);
        Assert.True(put.ContentType is null or "application/octet-stream", $"recorded {put.ContentType} for no type");
        Assert.Equal(put, await Store.GetAsync("types/clip.mp4"));
    }

    [Fact]
    public async Task Read_url_serves_the_bytes_over_http()
    {
        var bytes = Bytes(250_000, seed: 2);
        await Store.PutAsync("urls/photo.png", new MemoryStream(bytes), "image/png");
        var url = await Store.GetReadUrlAsync("urls/photo.png", TimeSpan.FromMinutes(5));
        Assert.True(url.IsAbsoluteUri);

        using var response = await Http.GetAsync(url);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("image/png", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(bytes.Length, response.Content.Headers.ContentLength);
        Assert.Equal(bytes, await response.Content.ReadAsByteArrayAsync());

        // A new URL on every call, each one valid.
        var again = await Store.GetReadUrlAsync("urls/photo.png", TimeSpan.FromMinutes(10));
        Assert.Equal(bytes, await Http.GetByteArrayAsync(again));
    }

    [Fact]
    public async Task Read_url_of_a_missing_object_answers_404()
    {
        var url = await Store.GetReadUrlAsync("urls/none.png", TimeSpan.FromMinutes(5));
        using var response = await Http.GetAsync(url);
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    [Fact]
    public async Task Read_url_must_expire_in_the_future()
    {
        await Store.PutAsync("urls/a.bin", new MemoryStream([1]), null);
        await Assert.ThrowsAnyAsync<ArgumentOutOfRangeException>(() => Store.GetReadUrlAsync("urls/a.bin", TimeSpan.Zero));
        await Assert.ThrowsAnyAsync<ArgumentOutOfRangeException>(() => Store.GetReadUrlAsync("urls/a.bin", TimeSpan.FromSeconds(-1)));
    }

    [Fact]
    public async Task Put_replaces_an_existing_object()
    {
        var first = Bytes(10_000, seed: 3);
        var second = Bytes(20_000, seed: 4);
        await Store.PutAsync("replace/doc.bin", new MemoryStream(first), "application/pdf");
        var put = await Store.PutAsync("replace/doc.bin", new MemoryStream(second), "audio/ogg");

        Assert.Equal(new MediaObject("replace/doc.bin", second.Length, "audio/ogg", Sha256(second)), put);
        Assert.Equal(put, await Store.GetAsync("replace/doc.bin"));
        Assert.Equal(second, await ReadAllAsync("replace/doc.bin"));
        Assert.Equal(second, await Http.GetByteArrayAsync(await Store.GetReadUrlAsync("replace/doc.bin", TimeSpan.FromMinutes(1))));
    }

    [Theory]
    [MemberData(nameof(UnsafeKeys))]
    public async Task Unsafe_keys_are_refused_by_every_method(string key)
    {
        await Assert.ThrowsAnyAsync<ArgumentException>(() => Store.PutAsync(key, new MemoryStream([1, 2, 3]), null));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => Store.GetAsync(key));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => Store.OpenReadAsync(key));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => Store.DeleteAsync(key));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => Store.GetReadUrlAsync(key, TimeSpan.FromMinutes(1)));
        Assert.Empty(await UnderTest.ListBackingEntriesAsync());
    }

    [Fact]
    public async Task Non_seekable_stream_of_unknown_length_is_streamed()
    {
        var bytes = Bytes(300_001, seed: 5);
        await using var source = new NonSeekableStream(bytes, maxRead: 7_777);
        var put = await Store.PutAsync("streams/voice.ogg", source, "audio/ogg");

        Assert.Equal(bytes.Length, put.Size);
        Assert.Equal(Sha256(bytes), put.Sha256);
        Assert.True(source.ReachedEnd);
        Assert.Equal(bytes, await ReadAllAsync("streams/voice.ogg"));
    }

    [Fact]
    public async Task Empty_object_is_stored()
    {
        await using var source = new NonSeekableStream([], maxRead: 10);
        var put = await Store.PutAsync("empty/0.bin", source, "application/octet-stream");

        Assert.Equal(new MediaObject("empty/0.bin", 0, "application/octet-stream", EmptySha256), put);
        Assert.Equal(put, await Store.GetAsync("empty/0.bin"));
        Assert.Empty(await ReadAllAsync("empty/0.bin"));
        using var response = await Http.GetAsync(await Store.GetReadUrlAsync("empty/0.bin", TimeSpan.FromMinutes(1)));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Empty(await response.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task Object_larger_than_the_multipart_threshold_is_streamed_whole()
    {
        var bytes = Bytes(UnderTest.LargeObjectSize * 2 + 12_345, seed: 6);
        await using var source = new NonSeekableStream(bytes, maxRead: 64 * 1024 + 3);
        var put = await Eventually.Within(Store.PutAsync("large/video.mp4", source, "video/mp4"), "the large put", Timeout);

        Assert.Equal(new MediaObject("large/video.mp4", bytes.Length, "video/mp4", Sha256(bytes)), put);
        Assert.Equal(put, await Store.GetAsync("large/video.mp4"));
        Assert.Equal(bytes, await ReadAllAsync("large/video.mp4"));
        Assert.Equal(bytes, await Http.GetByteArrayAsync(await Store.GetReadUrlAsync("large/video.mp4", TimeSpan.FromMinutes(1))));
    }

    [Fact]
    public async Task Object_of_exactly_the_large_size_round_trips()
    {
        var bytes = Bytes(UnderTest.LargeObjectSize, seed: 7);
        var put = await Store.PutAsync("large/exact.bin", new NonSeekableStream(bytes, maxRead: 1 << 20), null);
        Assert.Equal(Sha256(bytes), put.Sha256);
        Assert.Equal(Sha256(bytes), (await Store.GetAsync("large/exact.bin"))?.Sha256);
        Assert.Equal(bytes, await ReadAllAsync("large/exact.bin"));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Canceled_put_leaves_nothing(bool large)
    {
        var size = large ? UnderTest.LargeObjectSize * 2 : 50_000;
        using var cancel = new CancellationTokenSource();
        await using var source = new NonSeekableStream(Bytes(size, seed: 8), maxRead: 16 * 1024) { CancelAfter = (size - 1_000, cancel) };

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Store.PutAsync("cancel/new.bin", source, "image/jpeg", cancel.Token));

        Assert.Null(await Store.GetAsync("cancel/new.bin"));
        await Assert.ThrowsAsync<MediaObjectNotFoundException>(() => Store.OpenReadAsync("cancel/new.bin"));
        Assert.Empty(await UnderTest.ListBackingEntriesAsync());
    }

    [Fact]
    public async Task Put_canceled_before_it_starts_writes_nothing()
    {
        using var cancel = new CancellationTokenSource();
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Store.PutAsync("cancel/early.bin", new MemoryStream([1, 2]), null, cancel.Token));
        Assert.Empty(await UnderTest.ListBackingEntriesAsync());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Failed_or_canceled_put_keeps_the_previous_object(bool large)
    {
        var previous = Bytes(5_000, seed: 9);
        await Store.PutAsync("keep/a.bin", new MemoryStream(previous), "image/webp");
        var size = large ? UnderTest.LargeObjectSize * 2 : 40_000;

        using var cancel = new CancellationTokenSource();
        await using (var canceled = new NonSeekableStream(Bytes(size, seed: 10), maxRead: 16 * 1024) { CancelAfter = (size / 2, cancel) })
        {
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Store.PutAsync("keep/a.bin", canceled, "image/png", cancel.Token));
        }

        await using (var failing = new NonSeekableStream(Bytes(size, seed: 11), maxRead: 16 * 1024) { FailAfter = size / 2 })
        {
            var failure = await Assert.ThrowsAsync<IOException>(() => Store.PutAsync("keep/a.bin", failing, "image/png"));
            Assert.Equal(NonSeekableStream.FailureMessage, failure.Message);
        }

        Assert.Equal(new MediaObject("keep/a.bin", previous.Length, "image/webp", Sha256(previous)), await Store.GetAsync("keep/a.bin"));
        Assert.Equal(previous, await ReadAllAsync("keep/a.bin"));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Failed_put_of_a_new_key_leaves_nothing(bool large)
    {
        var size = large ? UnderTest.LargeObjectSize * 2 : 40_000;
        await using var failing = new NonSeekableStream(Bytes(size, seed: 12), maxRead: 16 * 1024) { FailAfter = size - 10 };
        await Assert.ThrowsAsync<IOException>(() => Store.PutAsync("fail/new.bin", failing, null));
        Assert.Null(await Store.GetAsync("fail/new.bin"));
        Assert.Empty(await UnderTest.ListBackingEntriesAsync());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Readers_never_see_a_partial_object(bool large)
    {
        var previous = Bytes(1_000, seed: 13);
        await Store.PutAsync("partial/a.bin", new MemoryStream(previous), "image/jpeg");
        var size = large ? UnderTest.LargeObjectSize * 2 : 80_000;
        var next = Bytes(size, seed: 14);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var source = new NonSeekableStream(next, maxRead: 16 * 1024) { PauseAt = (size - 5_000, gate.Task) };

        var putting = Store.PutAsync("partial/a.bin", source, "image/png");
        var fresh = Store.PutAsync("partial/b.bin", new NonSeekableStream(next, maxRead: 16 * 1024) { PauseAt = (size - 5_000, gate.Task) }, null);
        await Eventually.TrueAsync(() => source.Paused, "the put to be half way", Timeout);

        // Half written: the old object whole, and no new one at all.
        Assert.Equal(Sha256(previous), (await Store.GetAsync("partial/a.bin"))?.Sha256);
        Assert.Equal(previous, await ReadAllAsync("partial/a.bin"));
        Assert.Null(await Store.GetAsync("partial/b.bin"));
        await Assert.ThrowsAsync<MediaObjectNotFoundException>(() => Store.OpenReadAsync("partial/b.bin"));

        gate.SetResult();
        await Eventually.Within(putting, "the put to finish", Timeout);
        await Eventually.Within(fresh, "the second put to finish", Timeout);
        Assert.Equal(next, await ReadAllAsync("partial/a.bin"));
        Assert.Equal(next, await ReadAllAsync("partial/b.bin"));
    }

    [Fact]
    public async Task Concurrent_puts_to_one_key_leave_one_whole_object()
    {
        var a = Bytes(200_000, seed: 15);
        var b = Bytes(300_000, seed: 16);
        await Eventually.Within(
            Task.WhenAll(
                Store.PutAsync("race/x.bin", new NonSeekableStream(a, maxRead: 8 * 1024), "image/jpeg"),
                Store.PutAsync("race/x.bin", new NonSeekableStream(b, maxRead: 8 * 1024), "image/png")),
            "both puts", Timeout);

        var stored = await ReadAllAsync("race/x.bin");
        Assert.True(stored.SequenceEqual(a) || stored.SequenceEqual(b), "the object is one of the two writes, whole");
        var info = await Store.GetAsync("race/x.bin");
        Assert.NotNull(info);
        Assert.Equal(stored.Length, info.Size);

        // A store may not know the hash right after a race, but never reports another write's.
        if (info.Sha256 is not null) Assert.Equal(Sha256(stored), info.Sha256);
    }

    [Fact]
    public async Task Keys_are_independent()
    {
        await Store.PutAsync("ind/1.bin", new MemoryStream([1]), null);
        await Store.PutAsync("ind/10.bin", new MemoryStream([10]), null);
        await Store.PutAsync("ind/1.bin.bin", new MemoryStream([11]), null);
        await Store.PutAsync("ind2/1.bin", new MemoryStream([2]), null);

        Assert.True(await Store.DeleteAsync("ind/1.bin"));
        Assert.Null(await Store.GetAsync("ind/1.bin"));
        Assert.Equal([10], await ReadAllAsync("ind/10.bin"));
        Assert.Equal([11], await ReadAllAsync("ind/1.bin.bin"));
        Assert.Equal([2], await ReadAllAsync("ind2/1.bin"));
    }

    [Fact]
    public async Task Sha256_matches_the_bytes_for_keys_from_MediaKeys()
    {
        var key = MediaKeys.For("phone 1/../x", new DateTimeOffset(2026, 3, 4, 23, 59, 0, TimeSpan.FromHours(-3)), 987654, "image/jpeg; charset=binary");
        Assert.Equal("phone_1_.._x/2026/03/05/987654.jpg", key);
        var bytes = Bytes(1_000_000, seed: 17);
        var put = await Store.PutAsync(key, new NonSeekableStream(bytes, maxRead: 100_000), "image/jpeg");
        Assert.Equal(Convert.ToHexString(SHA256.HashData(bytes)).ToLowerInvariant(), put.Sha256);
        Assert.Equal(put.Sha256, (await Store.GetAsync(key))?.Sha256);
    }

    protected async Task<byte[]> ReadAllAsync(string key)
    {
        await using var stream = await Store.OpenReadAsync(key);
        using var copy = new MemoryStream();
        await stream.CopyToAsync(copy);
        return copy.ToArray();
    }

    protected static byte[] Bytes(int count, int seed)
    {
        var bytes = new byte[count];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    protected static string Sha256(byte[] bytes) => Convert.ToHexString(SHA256.HashData(bytes)).ToLowerInvariant();
}

/// <summary>
/// A source like an HTTP response body: not seekable, no length, reads of irregular sizes. Can cancel a token, fail, or
/// pause at a given offset.
/// </summary>
public sealed class NonSeekableStream(byte[] bytes, int maxRead) : NonSeekableReadStream
{
    public const string FailureMessage = "The source failed half way (test).";
    private int _position;
    private int _reads;

    /// <summary>Cancels the source after this many bytes (the next read throws, as a source honoring the token does).</summary>
    public (int Offset, CancellationTokenSource Source)? CancelAfter { get; init; }

    /// <summary>Throws <see cref="IOException"/> once this many bytes were read.</summary>
    public int? FailAfter { get; init; }

    /// <summary>Waits for the task once this many bytes were read.</summary>
    public (int Offset, Task Gate)? PauseAt { get; init; }

    public bool Paused { get; private set; }

    public bool ReachedEnd { get; private set; }

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.Length == 0) return 0;
        if (CancelAfter is { } cancel && _position >= cancel.Offset)
        {
            await cancel.Source.CancelAsync();
            cancellationToken.ThrowIfCancellationRequested();
            throw new OperationCanceledException(cancel.Source.Token);
        }

        if (FailAfter is { } fail && _position >= fail) throw new IOException(FailureMessage);
        if (PauseAt is { } pause && _position >= pause.Offset && !pause.Gate.IsCompleted)
        {
            Paused = true;
            await pause.Gate.WaitAsync(cancellationToken);
        }

        // Each trigger's offset ends a read, so the trigger fires on the next one.
        var end = bytes.Length;
        if (CancelAfter is { } c && c.Offset > _position) end = Math.Min(end, c.Offset);
        if (FailAfter is { } f && f > _position) end = Math.Min(end, f);
        if (PauseAt is { } p && p.Offset > _position && !p.Gate.IsCompleted) end = Math.Min(end, p.Offset);

        // Irregular sizes: a short read every third call.
        var limit = ++_reads % 3 == 0 ? Math.Max(1, maxRead / 3) : maxRead;
        var count = Math.Min(Math.Min(buffer.Length, limit), end - _position);
        if (count <= 0)
        {
            ReachedEnd = true;
            return 0;
        }

        bytes.AsSpan(_position, count).CopyTo(buffer.Span);
        _position += count;
        return count;
    }
}
