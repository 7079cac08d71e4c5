using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Inbox.Reliability.AspNetCore.Tests;

/// <summary>A plain TCP client speaking HTTP/1.1 by hand, for what HttpClient will not do: stop mid-body, or wait mid-body.</summary>
public sealed class RawHttp : IAsyncDisposable
{
    private readonly TcpClient _client;
    private readonly NetworkStream _stream;

    private RawHttp(TcpClient client)
    {
        _client = client;
        _stream = client.GetStream();
    }

    public static async Task<RawHttp> ConnectAsync(int port)
    {
        var client = new TcpClient { NoDelay = true };
        await client.ConnectAsync(IPAddress.Loopback, port);
        return new RawHttp(client);
    }

    public Task SendAsync(string text) => SendAsync(Encoding.ASCII.GetBytes(text));

    public async Task SendAsync(byte[] bytes)
    {
        await _stream.WriteAsync(bytes);
        await _stream.FlushAsync();
    }

    /// <summary>Sends one chunk of a chunked body.</summary>
    public Task SendChunkAsync(byte[] data) =>
        SendAsync([.. Encoding.ASCII.GetBytes(data.Length.ToString("x") + "\r\n"), .. data, .. "\r\n"u8]);

    /// <summary>Reads the response head (status line and headers) within the timeout, without sending anything more.</summary>
    public async Task<(int Status, string Head)> ReadHeadAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        var received = new List<byte>();
        var buffer = new byte[4096];
        while (true)
        {
            var text = Encoding.ASCII.GetString(received.ToArray());
            var end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            if (end >= 0)
            {
                var head = text[..end];
                return (int.Parse(head.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture), head);
            }

            var n = await _stream.ReadAsync(buffer, cts.Token);
            if (n == 0) throw new IOException("The server closed the connection before answering. Received: " + text);
            received.AddRange(buffer.AsSpan(0, n).ToArray());
        }
    }

    /// <summary>Drops the connection at once (RST), as a client that crashes mid-request.</summary>
    public void Abort()
    {
        _client.Client.LingerState = new LingerOption(true, 0);
        _client.Client.Close();
    }

    public ValueTask DisposeAsync()
    {
        _stream.Dispose();
        _client.Dispose();
        return ValueTask.CompletedTask;
    }
}
