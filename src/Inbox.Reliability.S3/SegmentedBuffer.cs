using System.Buffers;
using System.Security.Cryptography;

namespace Inbox.Reliability.S3;

/// <summary>
/// Bytes read from a stream into pooled chunks of a fixed size: appended at the end, consumed from the front (a part once
/// uploaded), so a multipart upload reuses the same few chunks and never holds one large contiguous array. Not thread-safe.
/// </summary>
internal sealed class SegmentedBuffer : IDisposable
{
    /// <summary>The first chunk's size: most media is small, and a full chunk per small put would churn the pool.</summary>
    private const int FirstChunkSize = 64 * 1024;

    private readonly int _chunkSize;
    private readonly List<byte[]> _chunks = [];
    private int _start;
    private int _tail;
    private bool _smallHead;

    public SegmentedBuffer(int chunkSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkSize, 1);
        _chunkSize = chunkSize;
    }

    /// <summary>The bytes held.</summary>
    public long Length { get; private set; }

    /// <summary>
    /// Reads once from <paramref name="source"/>, at most <paramref name="max"/> bytes, appends them and adds them to
    /// <paramref name="hash"/>. Returns the count read; 0 at the end of the stream (or when <paramref name="max"/> is 0).
    /// </summary>
    public async ValueTask<int> AppendAsync(Stream source, long max, IncrementalHash hash, CancellationToken cancellationToken)
    {
        if (max <= 0) return 0;
        if (_chunks.Count == 0)
        {
            _smallHead = FirstChunkSize < _chunkSize;
            _chunks.Add(ArrayPool<byte>.Shared.Rent(_smallHead ? FirstChunkSize : _chunkSize));
            _tail = 0;
        }
        else if (_smallHead && _tail == FirstChunkSize)
        {
            // Outgrew the small first chunk: a full one takes its bytes, at the same offsets.
            var full = ArrayPool<byte>.Shared.Rent(_chunkSize);
            _chunks[0].AsSpan(0, _tail).CopyTo(full);
            ArrayPool<byte>.Shared.Return(_chunks[0]);
            _chunks[0] = full;
            _smallHead = false;
        }
        else if (_tail == _chunkSize)
        {
            _chunks.Add(ArrayPool<byte>.Shared.Rent(_chunkSize));
            _tail = 0;
        }

        var chunk = _chunks[^1];
        var room = (int)Math.Min((_smallHead ? FirstChunkSize : _chunkSize) - _tail, max);
        var read = await source.ReadAsync(chunk.AsMemory(_tail, room), cancellationToken).ConfigureAwait(false);
        if (read > 0)
        {
            hash.AppendData(chunk, _tail, read);
            _tail += read;
            Length += read;
        }

        return read;
    }

    /// <summary>A seekable read-only stream over the first <paramref name="count"/> bytes, valid until they are consumed.</summary>
    public Stream OpenRead(long count)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, Length);
        return new SegmentStream(_chunks.ToArray(), _chunkSize, _start, count);
    }

    /// <summary>Drops the first <paramref name="count"/> bytes; chunks emptied go back to the pool.</summary>
    public void Consume(long count)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, Length);
        Length -= count;
        if (Length == 0)
        {
            ReturnAll();
            return;
        }

        var offset = _start + count;
        var whole = (int)(offset / _chunkSize);
        for (var i = 0; i < whole; i++) ArrayPool<byte>.Shared.Return(_chunks[i]);
        _chunks.RemoveRange(0, whole);
        _start = (int)(offset % _chunkSize);
    }

    public void Dispose() => ReturnAll();

    private void ReturnAll()
    {
        foreach (var chunk in _chunks) ArrayPool<byte>.Shared.Return(chunk);
        _chunks.Clear();
        _start = 0;
        _tail = 0;
        _smallHead = false;
        Length = 0;
    }

    /// <summary>The SDK reads (and on a retry rewinds) a request body through this.</summary>
    private sealed class SegmentStream(byte[][] chunks, int chunkSize, int start, long length) : Stream
    {
        private long _position;

        public override bool CanRead => true;

        public override bool CanSeek => true;

        public override bool CanWrite => false;

        public override long Length => length;

        public override long Position
        {
            get => _position;
            set
            {
                ArgumentOutOfRangeException.ThrowIfNegative(value);
                _position = value;
            }
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var total = 0;
            while (buffer.Length > 0 && _position < length)
            {
                var absolute = start + _position;
                var chunk = chunks[absolute / chunkSize];
                var within = (int)(absolute % chunkSize);
                var count = (int)Math.Min(Math.Min(chunkSize - within, buffer.Length), length - _position);
                chunk.AsSpan(within, count).CopyTo(buffer);
                buffer = buffer[count..];
                _position += count;
                total += count;
            }

            return total;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            Task.FromResult(Read(buffer.AsSpan(offset, count)));

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            ValueTask.FromResult(Read(buffer.Span));

        public override long Seek(long offset, SeekOrigin origin)
        {
            Position = origin switch
            {
                SeekOrigin.Begin => offset,
                SeekOrigin.Current => _position + offset,
                _ => length + offset,
            };
            return _position;
        }

        public override void Flush()
        {
        }

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
