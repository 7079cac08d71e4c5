using System.Buffers;
using System.Buffers.Text;
using System.Text.Json;
using Inbox.Reliability.Media;

namespace Inbox.Reliability.Providers.Media;

/// <summary>
/// The file inside a JSON answer such as Evolution's <c>{"mimetype": "...", "base64": "..."}</c>, decoded while it is
/// read: the answer is scanned up to the <c>base64</c> string (the properties before it, small, are parsed), then the
/// string's characters are decoded a few kilobytes at a time. Neither the base64 text nor the file is ever held whole.
/// Accepts JSON escapes in the string (<c>\/</c>, <c>\u002B</c>), line breaks, and a <c>data:…;base64,</c> prefix.
/// </summary>
internal sealed class JsonBase64Stream : Stream
{
    private const int MaxPrefixBytes = 1024 * 1024;
    private const int ChunkBytes = 32 * 1024;

    private readonly Stream _source;
    private readonly string _what;
    private readonly byte[] _raw;
    private readonly byte[] _chars = new byte[ChunkBytes];
    private readonly byte[] _decoded = new byte[ChunkBytes / 4 * 3];
    private int _rawStart;
    private int _rawEnd;
    private int _charCount;
    private int _decodedStart;
    private int _decodedEnd;
    private bool _stringEnded;
    private bool _finished;
    private bool _prefixChecked;
    private bool _skipToComma;
    private int _escape; // 0: none; 1: after '\'; 2 to 5: reading the hex digits of \uXXXX
    private int _unicode;

    private JsonBase64Stream(Stream source, string what, byte[] raw, int rawStart, int rawEnd)
    {
        _source = source;
        _what = what;
        _raw = raw;
        _rawStart = rawStart;
        _rawEnd = rawEnd;
    }

    /// <summary>
    /// Reads <paramref name="source"/> up to the start of the top-level <paramref name="property"/> string and returns a
    /// stream of its decoded bytes (which owns <paramref name="source"/>), with the top-level string properties named in
    /// <paramref name="wanted"/> that came before it.
    /// </summary>
    /// <exception cref="MediaDownloadException">The answer is not a JSON object, has no such string, or ends early.</exception>
    public static async Task<(JsonBase64Stream Content, Dictionary<string, string> Values)> OpenAsync(Stream source, string what, string property, string[] wanted,
        CancellationToken cancellationToken)
    {
        var buffer = new byte[ChunkBytes];
        int start = 0, end = 0;
        var state = new JsonReaderState();
        var scan = new ScanState(property, wanted);
        var final = false;
        try
        {
            while (true)
            {
                var consumed = Scan(buffer.AsSpan(start, end - start), final, ref state, scan, what);
                start += consumed;
                if (scan.Found) break;
                if (final) throw new MediaDownloadException($"{what}: the answer ended before its \"{property}\".", retryable: true);

                if (start > 0)
                {
                    Buffer.BlockCopy(buffer, start, buffer, 0, end - start);
                    end -= start;
                    start = 0;
                }

                if (end == buffer.Length)
                {
                    if (buffer.Length >= MaxPrefixBytes)
                        throw new MediaDownloadException($"{what}: the answer has more than {MaxPrefixBytes} bytes before its \"{property}\".", retryable: false);
                    Array.Resize(ref buffer, buffer.Length * 2);
                }

                var read = await source.ReadAsync(buffer.AsMemory(end), cancellationToken).ConfigureAwait(false);
                if (read == 0) final = true;
                end += read;
            }

            // After the property name: optional whitespace and the colon, then the string's opening quote.
            while (true)
            {
                while (start < end && buffer[start] is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n' or (byte)':') start++;
                if (start < end) break;
                start = end = 0;
                end = await source.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
                if (end == 0) throw new MediaDownloadException($"{what}: the answer ended before its \"{property}\".", retryable: true);
            }

            if (buffer[start] != (byte)'"')
            {
                throw new MediaDownloadException(
                    buffer[start] == (byte)'n' ? $"{what}: the answer's \"{property}\" is null." : $"{what}: the answer's \"{property}\" is not a string.", retryable: false);
            }

            return (new JsonBase64Stream(source, what, buffer, start + 1, end), scan.Values);
        }
        catch
        {
            await source.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private static int Scan(ReadOnlySpan<byte> data, bool final, ref JsonReaderState state, ScanState scan, string what)
    {
        var reader = new Utf8JsonReader(data, final, state);
        try
        {
            while (reader.Read())
            {
                if (reader.CurrentDepth == 0)
                {
                    if (reader.TokenType == JsonTokenType.StartObject) continue;
                    if (reader.TokenType == JsonTokenType.EndObject) throw new MediaDownloadException($"{what}: the answer has no \"{scan.Property}\".", retryable: false);
                    throw new MediaDownloadException($"{what}: the answer is not a JSON object.", retryable: false);
                }

                if (reader.CurrentDepth != 1) continue;
                if (reader.TokenType == JsonTokenType.PropertyName)
                {
                    var name = reader.GetString()!;
                    if (name == scan.Property)
                    {
                        scan.Found = true;
                        break;
                    }

                    scan.Pending = Array.IndexOf(scan.Wanted, name) >= 0 ? name : null;
                }
                else if (reader.TokenType == JsonTokenType.String && scan.Pending is { } pending)
                {
                    scan.Values[pending] = reader.GetString()!;
                    scan.Pending = null;
                }
                else
                {
                    scan.Pending = null;
                }
            }
        }
        catch (JsonException e)
        {
            throw new MediaDownloadException($"{what}: the answer is not valid JSON.", retryable: false, innerException: e);
        }

        state = reader.CurrentState;
        return (int)reader.BytesConsumed;
    }

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.Length == 0) return 0;
        while (true)
        {
            if (_decodedEnd > _decodedStart)
            {
                var count = Math.Min(buffer.Length, _decodedEnd - _decodedStart);
                _decoded.AsSpan(_decodedStart, count).CopyTo(buffer.Span);
                _decodedStart += count;
                return count;
            }

            if (_finished) return 0;
            if (_rawStart == _rawEnd && !_stringEnded)
            {
                var read = await _source.ReadAsync(_raw, cancellationToken).ConfigureAwait(false);
                if (read == 0) throw new MediaDownloadException($"{_what}: the answer ended inside the base64 text.", retryable: true);
                _rawStart = 0;
                _rawEnd = read;
            }

            Decode();
        }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    /// <summary>Moves base64 characters from the raw bytes to <see cref="_chars"/> and decodes every complete block that is surely not the last.</summary>
    private void Decode()
    {
        while (_rawStart < _rawEnd && _charCount < _chars.Length && !_stringEnded)
        {
            var b = _raw[_rawStart++];
            if (_escape == 1)
            {
                _escape = 0;
                switch (b)
                {
                    case (byte)'/': Add(b); break;
                    case (byte)'n' or (byte)'r' or (byte)'t': break;
                    case (byte)'u': _escape = 2; _unicode = 0; break;
                    default: throw Invalid();
                }
            }
            else if (_escape >= 2)
            {
                var digit = HexDigit(b);
                if (digit < 0) throw Invalid();
                _unicode = (_unicode * 16) + digit;
                if (++_escape == 6)
                {
                    _escape = 0;
                    if (_unicode > 0x7F) throw Invalid();
                    Add((byte)_unicode);
                }
            }
            else if (b == (byte)'\\') _escape = 1;
            else if (b == (byte)'"') _stringEnded = true;
            else Add(b);
        }

        if (!_prefixChecked)
        {
            if (_charCount < 5 && !_stringEnded) return;
            _prefixChecked = true;
            if (_chars.AsSpan(0, _charCount).StartsWith("data:"u8))
            {
                var comma = _chars.AsSpan(0, _charCount).IndexOf((byte)',');
                if (comma < 0)
                {
                    _skipToComma = true;
                    _charCount = 0;
                    return;
                }

                Shift(comma + 1);
            }
        }

        // Until the closing quote is seen, the last complete block may be the padded one: keep it back.
        var take = _stringEnded ? _charCount : (_charCount / 4 * 4) - 4;
        if (take <= 0)
        {
            if (_stringEnded) _finished = true;
            return;
        }

        var status = Base64.DecodeFromUtf8(_chars.AsSpan(0, take), _decoded, out var consumed, out var written, isFinalBlock: true);
        if (status != OperationStatus.Done) throw Invalid();
        Shift(consumed);
        _decodedStart = 0;
        _decodedEnd = written;
        if (_stringEnded) _finished = true;
    }

    private void Add(byte b)
    {
        if (b is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n') return;
        if (_skipToComma)
        {
            if (b == (byte)',') _skipToComma = false;
            return;
        }

        _chars[_charCount++] = b;
    }

    private void Shift(int count)
    {
        Buffer.BlockCopy(_chars, count, _chars, 0, _charCount - count);
        _charCount -= count;
    }

    private static int HexDigit(byte b) => b switch
    {
        >= (byte)'0' and <= (byte)'9' => b - '0',
        >= (byte)'a' and <= (byte)'f' => b - 'a' + 10,
        >= (byte)'A' and <= (byte)'F' => b - 'A' + 10,
        _ => -1,
    };

    private MediaDownloadException Invalid() => new($"{_what}: the answer's base64 text is not valid base64.", retryable: false);

    protected override void Dispose(bool disposing)
    {
        if (disposing) _source.Dispose();
        base.Dispose(disposing);
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    private sealed class ScanState(string property, string[] wanted)
    {
        public string Property { get; } = property;

        public string[] Wanted { get; } = wanted;

        public Dictionary<string, string> Values { get; } = new(StringComparer.Ordinal);

        public string? Pending { get; set; }

        public bool Found { get; set; }
    }
}
