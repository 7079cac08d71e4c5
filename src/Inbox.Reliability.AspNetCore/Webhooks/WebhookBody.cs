using System.Buffers;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Inbox.Reliability.AspNetCore.Webhooks;

/// <summary>How reading a webhook body ended.</summary>
internal enum WebhookBodyStatus
{
    /// <summary>The whole body was read (it may be empty).</summary>
    Complete = 0,

    /// <summary>The body is over the limit: declared so by Content-Length, or more bytes than the limit arrived.</summary>
    TooLarge = 1,

    /// <summary>The client went away before the body was complete.</summary>
    Aborted = 2,

    /// <summary>The server could not read the body (bad chunk framing, too slow...); <see cref="WebhookBody.StatusCode"/> says what to answer.</summary>
    Unreadable = 3,
}

/// <summary>A webhook body read with a hard limit: never more than the limit plus one byte is read or buffered.</summary>
internal readonly record struct WebhookBody(WebhookBodyStatus Status, byte[] Bytes, int StatusCode = StatusCodes.Status200OK)
{
    private const int FirstChunk = 16 * 1024;

    private static WebhookBody TooLarge => new(WebhookBodyStatus.TooLarge, []);

    private static WebhookBody Aborted => new(WebhookBodyStatus.Aborted, []);

    /// <summary>
    /// Reads the request body. A Content-Length over <paramref name="limit"/> is refused before a byte is read (so an
    /// <c>Expect: 100-continue</c> client never sends it); without one (chunked), reading stops at limit + 1 bytes.
    /// </summary>
    public static async Task<WebhookBody> ReadAsync(HttpContext context, int limit, CancellationToken cancellationToken)
    {
        var request = context.Request;
        var declared = request.ContentLength;
        if (declared > limit) return TooLarge;

        // This endpoint enforces its own limit below, counting body bytes. The server-wide one (Kestrel's
        // MaxRequestBodySize, 30 MB by default) must not cut a body this endpoint accepts, and it cannot stand in for
        // this one: for chunked bodies Kestrel counts the chunk framing too.
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size) size.MaxRequestBodySize = null;

        try
        {
            return declared is { } length
                ? await ReadDeclaredAsync(request.Body, (int)length, cancellationToken).ConfigureAwait(false)
                : await ReadUndeclaredAsync(request.Body, limit, cancellationToken).ConfigureAwait(false);
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return TooLarge; // a limit set by the host below this endpoint's (e.g. a middleware that read first)
        }
        catch (BadHttpRequestException ex)
        {
            // "Unexpected end of request content" (the client closed mid-body), bad chunk framing, a too-slow upload.
            return cancellationToken.IsCancellationRequested
                ? Aborted
                : new WebhookBody(WebhookBodyStatus.Unreadable, [], ex.StatusCode is >= 400 and < 500 ? ex.StatusCode : StatusCodes.Status400BadRequest);
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException)
        {
            return Aborted; // connection reset or request aborted
        }
    }

    private static async Task<WebhookBody> ReadDeclaredAsync(Stream body, int length, CancellationToken cancellationToken)
    {
        if (length == 0) return new WebhookBody(WebhookBodyStatus.Complete, []);
        var bytes = new byte[length];
        var read = 0;
        while (read < length)
        {
            var n = await body.ReadAsync(bytes.AsMemory(read), cancellationToken).ConfigureAwait(false);
            if (n == 0) return Aborted; // fewer bytes than declared
            read += n;
        }

        return new WebhookBody(WebhookBodyStatus.Complete, bytes);
    }

    private static async Task<WebhookBody> ReadUndeclaredAsync(Stream body, int limit, CancellationToken cancellationToken)
    {
        // Pooled buffers while the size is unknown; the body handed on is an exact copy that nothing else shares
        // (storage may keep a reference until its write is done, so it must not be a pooled array).
        var cap = limit + 1;
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Min(FirstChunk, cap));
        var total = 0;
        try
        {
            while (true)
            {
                if (total == buffer.Length)
                {
                    var larger = ArrayPool<byte>.Shared.Rent((int)Math.Min((long)buffer.Length * 2, cap));
                    buffer.AsSpan(0, total).CopyTo(larger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = larger;
                }

                var n = await body.ReadAsync(buffer.AsMemory(total, Math.Min(buffer.Length, cap) - total), cancellationToken).ConfigureAwait(false);
                if (n == 0) break;
                total += n;
                if (total > limit) return TooLarge;
            }

            return new WebhookBody(WebhookBodyStatus.Complete, buffer.AsSpan(0, total).ToArray());
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
