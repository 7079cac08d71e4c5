using Inbox.Reliability.Media;

namespace Inbox.Reliability.Providers.Media;

/// <summary>
/// A response body as a download reads it: each read waits at most the idle timeout for bytes; a dropped connection or
/// a stall becomes a retryable <see cref="MediaDownloadException"/>; a body longer than the provider announced fails
/// (not retryable) as soon as it passes the announced length, one that ends short of it fails (retryable).
/// </summary>
internal sealed class MediaBodyStream : Stream
{
    private readonly Stream _inner;
    private readonly string _what;
    private readonly TimeSpan _idleTimeout;
    private readonly long? _expectedLength;
    private readonly CancellationTokenSource _idle;
    private long _read;

    public MediaBodyStream(Stream inner, string what, TimeSpan idleTimeout, TimeProvider time, long? expectedLength)
    {
        _inner = inner;
        _what = what;
        _idleTimeout = idleTimeout;
        _expectedLength = expectedLength;
        _idle = new CancellationTokenSource(Timeout.InfiniteTimeSpan, time);
    }

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => _read; set => throw new NotSupportedException(); }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.Length == 0) return 0;
        if (_idle.IsCancellationRequested) throw Stalled(null);
        _idle.CancelAfter(_idleTimeout);
        int read;
        try
        {
            if (cancellationToken.CanBeCanceled)
            {
                using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _idle.Token);
                read = await _inner.ReadAsync(buffer, linked.Token).ConfigureAwait(false);
            }
            else
            {
                read = await _inner.ReadAsync(buffer, _idle.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested && _idle.IsCancellationRequested)
        {
            throw Stalled(e);
        }
        catch (Exception e) when (e is IOException or HttpRequestException)
        {
            throw Lost(e);
        }
        finally
        {
            if (!_idle.IsCancellationRequested) _idle.CancelAfter(Timeout.InfiniteTimeSpan);
        }

        return Count(read);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(Span<byte> buffer)
    {
        int read;
        try
        {
            read = _inner.Read(buffer);
        }
        catch (Exception e) when (e is IOException or HttpRequestException)
        {
            throw Lost(e);
        }

        return buffer.Length == 0 ? 0 : Count(read);
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    private int Count(int read)
    {
        _read += read;
        if (_expectedLength is { } expected)
        {
            if (_read > expected)
                throw new MediaDownloadException($"{_what}: the body is longer than the {expected} bytes the provider announced.", retryable: false);
            if (read == 0 && _read < expected)
                throw new MediaDownloadException($"{_what}: the body ended after {_read} of the {expected} bytes announced.", retryable: true);
        }

        return read;
    }

    private MediaDownloadException Stalled(Exception? inner) =>
        new($"{_what}: no data for {MediaHttpClient.Seconds(_idleTimeout)} after {_read} bytes (MediaReadIdleTimeout).", retryable: true, innerException: inner);

    private MediaDownloadException Lost(Exception inner) =>
        new($"{_what}: the connection was lost after {_read} bytes.", retryable: true, innerException: inner);

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _inner.Dispose();
            _idle.Dispose();
        }

        base.Dispose(disposing);
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
