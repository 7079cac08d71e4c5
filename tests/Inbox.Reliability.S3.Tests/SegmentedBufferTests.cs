using System.Security.Cryptography;
using Inbox.Reliability.Conformance;

namespace Inbox.Reliability.S3.Tests;

/// <summary>The pooled chunk buffer behind S3 puts: parts read back exactly, whatever the read, part and chunk sizes.</summary>
public sealed class SegmentedBufferTests
{
    [Theory]
    [InlineData(256 * 1024, 300_001, 7_777)]
    [InlineData(256 * 1024, 256 * 1024, 64 * 1024)]
    [InlineData(1024 * 1024, 100_000, 1_000_000)]
    [InlineData(1000, 2_500, 333)]
    public async Task Parts_read_back_the_bytes_in_order_and_the_hash_covers_them_all(int chunkSize, int partSize, int maxRead)
    {
        var bytes = new byte[1_234_567];
        new Random(chunkSize + partSize).NextBytes(bytes);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using var buffer = new SegmentedBuffer(chunkSize);
        var source = new NonSeekableStream(bytes, maxRead);
        var parts = new List<byte[]>();
        while (true)
        {
            while (buffer.Length >= partSize) parts.Add(await TakeAsync(buffer, partSize));
            if (await buffer.AppendAsync(source, partSize - buffer.Length, hash, CancellationToken.None) == 0) break;
        }

        if (buffer.Length > 0) parts.Add(await TakeAsync(buffer, buffer.Length));

        Assert.Equal(bytes, parts.SelectMany(p => p).ToArray());
        Assert.All(parts.SkipLast(1), p => Assert.Equal(partSize, p.Length));
        Assert.Equal(SHA256.HashData(bytes), hash.GetHashAndReset());
        Assert.Equal(0, buffer.Length);
    }

    [Fact]
    public async Task A_part_stream_can_be_rewound_for_a_retry()
    {
        var bytes = new byte[200_000];
        new Random(3).NextBytes(bytes);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using var buffer = new SegmentedBuffer(64 * 1024);
        var source = new MemoryStream(bytes);
        while (await buffer.AppendAsync(source, bytes.Length - buffer.Length, hash, CancellationToken.None) > 0)
        {
        }

        await using var part = buffer.OpenRead(150_000);
        var first = new byte[150_000];
        await part.ReadExactlyAsync(first);
        part.Position = 0;
        var again = new byte[150_000];
        await part.ReadExactlyAsync(again);
        Assert.Equal(bytes[..150_000], first);
        Assert.Equal(first, again);
        Assert.Equal(0, await part.ReadAsync(new byte[10]));
    }

    private static async Task<byte[]> TakeAsync(SegmentedBuffer buffer, long count)
    {
        await using var part = buffer.OpenRead(count);
        Assert.Equal(count, part.Length);
        var bytes = new byte[count];
        await part.ReadExactlyAsync(bytes);
        buffer.Consume(count);
        return bytes;
    }
}
