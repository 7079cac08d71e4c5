using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Amazon.S3;
using Amazon.S3.Model;
using Inbox.Reliability.Capture;
using Inbox.Reliability.Conformance;
using Inbox.Reliability.Dispatch;
using Inbox.Reliability.Events;
using Inbox.Reliability.Storage;
using Inbox.Reliability.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Xunit.Abstractions;

namespace Inbox.Reliability.S3.Tests;

/// <summary>
/// The media pipeline against S3 through an outage: 500 media events (50 chats) and 100 text messages (10 more chats)
/// flow through a host on SQLite while the S3 server is stopped and started again. Captures and chats without media keep going; every media
/// ends stored once S3 is back; nothing is lost.
/// </summary>
public sealed class S3MediaPipelineOutageTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const string Secret = "zapi-secret-outage";
    private const int MediaChats = 50;
    private const int Chats = 60; // chats 50-59 are text only
    private const int PerChat = 10; // 500 media events, 100 text messages
    private readonly FauxqsServer _s3 = new();
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "inbox-s3-outage-" + Guid.NewGuid().ToString("n")[..12]);
    private readonly EventRecorder _recorder = new();
    private FakeMediaProvider _fake = null!;
    private AmazonS3Client _client = null!;
    private IHost _host = null!;
    private string _bucket = null!;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_folder);
        await _s3.StartAsync();
        _fake = await FakeMediaProvider.StartAsync();
        _client = S3Clients.For(_s3, TimeSpan.FromSeconds(5));
        _bucket = S3Clients.NewBucket();
        await _client.PutBucketAsync(_bucket);

        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Services.AddLogging();
        builder.Services.AddSingleton(_recorder);
        builder.Services.AddInboxReliability()
            .UseSqlite($"Data Source={Path.Combine(_folder, "inbox.db")}")
            .AddZApi(o => o.WebhookSecret = Secret)
            .AddEventHandler<RecordingEventHandler>()
            .UseS3MediaStore(o =>
            {
                S3Clients.Configure(o, _s3, _bucket);
                o.RequestTimeout = TimeSpan.FromSeconds(5);
            })
            .AddWebhookPipeline(o =>
            {
                o.Media.DispatchWait = TimeSpan.FromSeconds(2); // chats with media go on with a placeholder during the outage
                o.Media.MaxAttempts = 60; // retried until S3 is back, at most 2 s apart
                o.Media.Backoff.Base = TimeSpan.FromMilliseconds(200);
                o.Media.Backoff.Cap = TimeSpan.FromSeconds(2);
            });
        _host = builder.Build();
        await _host.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await _host.StopAsync();
        _host.Dispose();
        _client.Dispose();
        await _fake.DisposeAsync();
        await _s3.DisposeAsync();
        Directory.Delete(_folder, recursive: true);
    }

    private async Task CaptureAsync(string body)
    {
        var capture = _host.Services.GetRequiredService<IInboxCapture>();
        var result = await capture.CaptureAsync(new WebhookRequest("zapi", "inst-1", Encoding.UTF8.GetBytes(body), DateTimeOffset.UtcNow)
        {
            Query = new Dictionary<string, string> { ["secret"] = Secret },
        });
        Assert.True(result.Status is CaptureStatus.Stored, $"capture answered {result.Status}");
    }

    private static string Text(int chat, int n) =>
        $$$"""{"type":"ReceivedCallback","instanceId":"I1","messageId":"T-{{{chat}}}-{{{n}}}","phone":"55119{{{chat:D8}}}","fromMe":false,"momment":1767290070000,"status":"RECEIVED","senderName":"Ana","isGroup":false,"text":{"message":"text {{{n}}}"}}""";

    /// <summary>The fake's Z-API image webhook, moved to another chat.</summary>
    private string Image(FakeMedia media, int chat) => _fake.ZApiWebhook(media).Replace("\"5511999990001\"", $"\"55119{chat:D8}\"", StringComparison.Ordinal);

    private async Task<bool> ObjectMatchesAsync(string key, string sha256Hex)
    {
        try
        {
            using var response = await _client.GetObjectAsync(_bucket, key);
            await using var body = response.ResponseStream;
            return Convert.ToHexString(await SHA256.HashDataAsync(body)).Equals(sha256Hex, StringComparison.OrdinalIgnoreCase);
        }
        catch (AmazonS3Exception)
        {
            return false;
        }
    }

    [Fact]
    public async Task Captures_and_text_go_on_while_S3_is_down_and_every_media_ends_stored_once_it_is_back()
    {
        // Chats 0-49 send images only; chats 50-59 text only.
        var medias = new ConcurrentDictionary<string, FakeMedia>();
        var bodies = new List<string>();
        for (var n = 0; n < PerChat; n++)
        {
            for (var chat = 0; chat < Chats; chat++)
            {
                if (chat < MediaChats)
                {
                    var media = _fake.AddMedia(2048 + chat * 10 + n, "image/jpeg");
                    medias[media.MessageId] = media;
                    bodies.Add(Image(media, chat));
                }
                else
                {
                    bodies.Add(Text(chat, n));
                }
            }
        }

        Assert.Equal(500, medias.Count);

        // The first hundred before the outage, and its media stored (checked in S3 now: the restarted server starts empty).
        var verified = new HashSet<string>();
        var firstMedia = bodies.Take(100).Count(b => medias.Keys.Any(id => b.Contains(id, StringComparison.Ordinal)));
        foreach (var body in bodies.Take(100)) await CaptureAsync(body);
        var store = _host.Services.GetRequiredService<IInboxStore>();
        await Eventually.TrueAsync(async () => (await store.CountMediaAsync()).GetValueOrDefault(Storage.MediaStatus.Stored) == firstMedia, "the first media to be stored", TimeSpan.FromSeconds(60));
        await Eventually.TrueAsync(() => _recorder.Seen.Count(c => c.Media.Status == Storage.MediaStatus.Stored) == firstMedia, "the first media to be delivered", TimeSpan.FromSeconds(60));
        foreach (var seen in _recorder.Seen.Where(c => c.Media.Status == Storage.MediaStatus.Stored))
        {
            Assert.True(await ObjectMatchesAsync(seen.Media.Key!, seen.Media.Sha256!), $"{seen.Media.Key} in S3");
            verified.Add(seen.Event.ExternalId);
        }

        // S3 goes down; the rest is captured meanwhile, and the text-only chats are delivered in full.
        await _s3.StopAsync();
        foreach (var body in bodies.Skip(100)) await CaptureAsync(body);
        var textOnly = Enumerable.Range(MediaChats, Chats - MediaChats).SelectMany(chat => Enumerable.Range(0, PerChat).Select(n => $"T-{chat}-{n}")).ToHashSet();
        await Eventually.TrueAsync(() => textOnly.IsSubsetOf(_recorder.Seen.Select(c => c.Event.ExternalId)), "the text-only chats to be delivered while S3 is down", TimeSpan.FromSeconds(60));
        var pendingDuringOutage = (await store.CountMediaAsync()).GetValueOrDefault(Storage.MediaStatus.Pending);
        output.WriteLine($"during the outage: {pendingDuringOutage} media pending, {_recorder.Seen.Count} deliveries");
        Assert.True(pendingDuringOutage > 0, "no media was pending while S3 was down");

        // S3 is back (same port, empty): every media ends stored, each object in S3 with its hash.
        await _s3.StartAsync();
        await _client.PutBucketAsync(_bucket);
        await Eventually.TrueAsync(async () => (await store.CountMediaAsync()).GetValueOrDefault(Storage.MediaStatus.Stored) == medias.Count,
            $"all {medias.Count} media to be stored after the outage", TimeSpan.FromSeconds(120));
        Assert.False((await store.CountMediaAsync()).ContainsKey(Storage.MediaStatus.Failed));

        // Every message delivered (once, or again as a media update), per chat in order, and every media in S3.
        await Eventually.TrueAsync(() => bodies.Count <= _recorder.Seen.Select(c => c.Event.ExternalId).Distinct().Count(), "every message to be delivered", TimeSpan.FromSeconds(60));
        foreach (var chat in _recorder.Seen.Where(c => !c.IsMediaUpdate).GroupBy(c => c.Event.ChatId))
        {
            var sequence = chat.Select(c => c.Sequence).ToList();
            Assert.Equal(sequence.Order().ToList(), sequence);
        }

        foreach (var (messageId, media) in medias)
        {
            if (verified.Contains(messageId)) continue;
            await Eventually.TrueAsync(() => _recorder.Seen.Any(c => c.Event.ExternalId == messageId && c.Media.Status == Storage.MediaStatus.Stored),
                $"{messageId} delivered with its stored media (directly or as a media update)", TimeSpan.FromSeconds(30));
            var stored = _recorder.Seen.First(c => c.Event.ExternalId == messageId && c.Media.Status == Storage.MediaStatus.Stored);
            Assert.Equal(Convert.ToHexString(Convert.FromBase64String(media.Sha256Base64)).ToLowerInvariant(), stored.Media.Sha256);
            Assert.True(await ObjectMatchesAsync(stored.Media.Key!, stored.Media.Sha256!), $"{stored.Media.Key} in S3");
        }
    }
}
