using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Inbox.Reliability.Capture;
using Inbox.Reliability.Conformance;
using Inbox.Reliability.Events;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Inbox.Reliability.AspNetCore.Tests;

/// <summary>The HTTP forwarder against a real receiver on loopback (Kestrel) that checks the Standard Webhooks signature.</summary>
public sealed class HttpForwarderTests : IAsyncLifetime
{
    private const string Secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    private readonly TempDatabase _storage = new();
    private readonly ConcurrentQueue<(string Id, string MessageId, string Chat)> _received = new();
    private readonly ConcurrentDictionary<string, int> _attempts = new();
    private WebApplication _receiver = null!;
    private IHost _host = null!;
    private int _badSignatures;

    public async Task InitializeAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        _receiver = builder.Build();
        _receiver.MapPost("/hook", async (HttpContext http) =>
        {
            using var reader = new StreamReader(http.Request.Body);
            var body = await reader.ReadToEndAsync();
            var id = http.Request.Headers["webhook-id"].ToString();
            var timestamp = http.Request.Headers["webhook-timestamp"].ToString();
            var expected = "v1," + Convert.ToBase64String(HMACSHA256.HashData(Convert.FromBase64String(Secret["whsec_".Length..]), Encoding.UTF8.GetBytes($"{id}.{timestamp}.{body}")));
            if (!CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(expected), Encoding.UTF8.GetBytes(http.Request.Headers["webhook-signature"].ToString())))
            {
                Interlocked.Increment(ref _badSignatures);
                return Results.StatusCode(401);
            }

            using var json = JsonDocument.Parse(body);
            var data = json.RootElement.GetProperty("data");
            var messageId = data.GetProperty("externalId").GetString()!;
            // The first delivery of B2 fails: the forwarder must retry it and hold chat B behind it.
            if (_attempts.AddOrUpdate(messageId, 1, (_, n) => n + 1) == 1 && messageId == "B2") return Results.StatusCode(503);
            _received.Enqueue((id, messageId, data.GetProperty("chatId").GetString()!));
            return Results.Ok();
        });
        await _receiver.StartAsync();
        var url = _receiver.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();

        var host = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        host.Services.AddLogging();
        host.Services.AddInboxReliability().UseSqlite(_storage.ConnectionString)
            .AddZApi()
            .AddHttpForwarder(o => { o.Url = new Uri(url + "/hook"); o.Secret = Secret; })
            .AddWebhookPipeline(o => o.DispatchConcurrency = 4);
        _host = host.Build();
        await _host.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await _host.StopAsync();
        _host.Dispose();
        await _receiver.StopAsync();
        await _receiver.DisposeAsync();
        await _storage.DisposeAsync();
    }

    private static string ZApiText(string id, string chat) =>
        $$$"""{"type":"ReceivedCallback","instanceId":"I1","messageId":"{{{id}}}","phone":"{{{chat}}}","fromMe":false,"momment":1767290000000,"text":{"message":"m"}}""";

    [Fact]
    public async Task Events_are_forwarded_signed_in_per_chat_order_and_a_failed_post_is_retried()
    {
        var capture = _host.Services.GetRequiredService<IInboxCapture>();
        foreach (var (id, chat) in new[] { ("A1", "5511000001"), ("B1", "5511000002"), ("B2", "5511000002"), ("A2", "5511000001"), ("B3", "5511000002") })
        {
            var result = await capture.CaptureAsync("zapi", "inst", Encoding.UTF8.GetBytes(ZApiText(id, chat)), new Dictionary<string, string>());
            Assert.Equal(CaptureStatus.Stored, result.Status);
        }

        // B2's first POST got 503: the retry comes after the worker's backoff (about a second), in real time here.
        await Eventually.TrueAsync(() => _received.Count == 5, "five events forwarded");
        Assert.Equal(0, _badSignatures);
        Assert.Equal(["B1", "B2", "B3"], _received.Where(r => r.Chat == "5511000002").Select(r => r.MessageId));
        Assert.Equal(["A1", "A2"], _received.Where(r => r.Chat == "5511000001").Select(r => r.MessageId));
        Assert.Equal(2, _attempts["B2"]);
        Assert.All(_received, r => Assert.StartsWith("evt_", r.Id, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Invalid_forwarder_settings_are_reported_at_startup()
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Services.AddInboxReliability().UseSqlite(_storage.ConnectionString).AddZApi()
            .AddHttpForwarder(o => { o.Url = new Uri("ftp://x/"); o.Secret = "whsec_***"; });
        using var host = builder.Build();
        var error = await Assert.ThrowsAsync<InboxConfigurationException>(() => host.StartAsync());
        Assert.Contains(error.Errors, e => e.Contains("Url", StringComparison.Ordinal));
        Assert.Contains(error.Errors, e => e.Contains("base64", StringComparison.Ordinal));
        Assert.DoesNotContain("***", error.Message, StringComparison.Ordinal);
    }
}

/// <summary>A SQLite file in a fresh temporary folder, deleted afterwards.</summary>
internal sealed class TempDatabase : IAsyncDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "inbox-forwarder-tests", Guid.NewGuid().ToString("n"));

    public string ConnectionString => $"Data Source={Path.Combine(_folder, "inbox.db")}";

    public ValueTask DisposeAsync()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: the OS cleans temp folders.
        }
        catch (UnauthorizedAccessException)
        {
            // Same.
        }

        return ValueTask.CompletedTask;
    }
}
