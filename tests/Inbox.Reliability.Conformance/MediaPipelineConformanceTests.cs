using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Inbox.Reliability.Capture;
using Inbox.Reliability.Dispatch;
using Inbox.Reliability.Events;
using Inbox.Reliability.Jobs;
using Inbox.Reliability.Media;
using Inbox.Reliability.Storage;
using Inbox.Reliability.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Xunit;

namespace Inbox.Reliability.Conformance;

/// <summary>
/// Media end to end on the storage under test: webhooks with media captured, the file downloaded from a fake provider on
/// loopback into a real file-system media store, the event recording it, and dispatch holding the chat behind it.
/// </summary>
public abstract partial class MediaPipelineConformanceTests : IAsyncLifetime
{
    private const string ZApiSecret = "zapi-secret-media";
    private const string MetaAppSecret = "meta-app-secret-media";
    private const string Chat = "5511999990001"; // the chat of the fake's Z-API webhooks
    private IStorageUnderTest _storage = null!;
    private IHost _host = null!;
    private string _mediaRoot = null!;

    protected abstract IStorageUnderTest CreateStorage();

    protected ManualTimeProvider Time { get; } = new();

    private EventRecorder Recorder { get; } = new();

    private FakeMediaProvider Fake { get; set; } = null!;

    private IInboxCapture Capture => _host.Services.GetRequiredService<IInboxCapture>();

    private IInboxStore Store => _host.Services.GetRequiredService<IInboxStore>();

    private IMediaStore MediaStore => _host.Services.GetRequiredService<IMediaStore>();

    private IJobQueue Jobs => _host.Services.GetRequiredService<IJobQueue>();

    public async Task InitializeAsync()
    {
        Fake = await FakeMediaProvider.StartAsync();
        _storage = CreateStorage();
        _mediaRoot = Path.Combine(Path.GetTempPath(), "inbox-media-" + Guid.NewGuid().ToString("n")[..12]);
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Services.AddLogging();
        builder.Services.AddSingleton(Recorder);
        var inbox = builder.Services.AddInboxReliability().UseTimeProvider(Time);
        _storage.Configure(inbox);
        inbox.AddZApi(o => o.WebhookSecret = ZApiSecret)
             .AddMetaCloudApi(o =>
             {
                 o.AppSecret = MetaAppSecret;
                 o.AccessToken = FakeMediaProvider.MetaAccessToken;
                 o.GraphApiBaseUrl = Fake.GraphApiBaseUrl;
             })
             .AddEventHandler<RecordingEventHandler>()
             .UseFileSystemMediaStore(_mediaRoot, o => o.LinkBaseUrl = "http://127.0.0.1:5080/media")
             .AddWebhookPipeline(o =>
             {
                 o.Media.MaxBytes = 256 * 1024;
                 o.Media.DispatchWait = TimeSpan.FromMinutes(10);

                 // The tests move the manual clock by seconds to minutes at a time: leases must outlast those jumps.
                 o.LeaseDuration = TimeSpan.FromHours(1);
             });
        _host = builder.Build();
        await _host.StartAsync();
    }

    public async Task DisposeAsync()
    {
        var stop = _host.StopAsync();
        await Eventually.TrueAsync(() => stop.IsCompleted, "the host to stop", between: () => Time.Advance(TimeSpan.FromSeconds(1)));
        _host.Dispose();
        await _storage.DisposeAsync();
        await Fake.DisposeAsync();
        if (Directory.Exists(_mediaRoot)) Directory.Delete(_mediaRoot, recursive: true);
    }

    private async Task<long> CaptureZApi(string body)
    {
        var result = await Capture.CaptureAsync(new WebhookRequest("zapi", "inst-1", Encoding.UTF8.GetBytes(body), Time.GetUtcNow())
        {
            Query = new Dictionary<string, string> { ["secret"] = ZApiSecret },
        });
        Assert.Equal(CaptureStatus.Stored, result.Status);
        return result.RawWebhookId!.Value;
    }

    private static string ZApiText(string messageId, string text) =>
        $$$"""{"type":"ReceivedCallback","instanceId":"I1","messageId":"{{{messageId}}}","phone":"{{{Chat}}}","fromMe":false,"momment":1767290070000,"status":"RECEIVED","senderName":"Ana","isGroup":false,"text":{"message":"{{{text}}}"}}""";

    private async Task CaptureMeta(string body)
    {
        var bytes = Encoding.UTF8.GetBytes(body);
        var signature = "sha256=" + Convert.ToHexString(HMACSHA256.HashData(Encoding.UTF8.GetBytes(MetaAppSecret), bytes)).ToLowerInvariant();
        var result = await Capture.CaptureAsync("meta", "phone-1", bytes, new Dictionary<string, string> { ["X-Hub-Signature-256"] = signature, ["Content-Type"] = "application/json" });
        Assert.Equal(CaptureStatus.Stored, result.Status);
    }

    private Task WaitForSeen(int count, string what, TimeSpan? step = null) =>
        Eventually.TrueAsync(() => Recorder.Seen.Count >= count, what, between: () => Time.Advance(step ?? TimeSpan.FromMilliseconds(100)));

    private string[] FilesInStore(string pattern) =>
        Directory.Exists(_mediaRoot) ? Directory.GetFiles(_mediaRoot, pattern, SearchOption.AllDirectories) : [];

    private static byte[] Bytes(int size, int seed)
    {
        var bytes = new byte[size];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    private InboxEventContext SeenMessage(string externalId) =>
        Recorder.Seen.First(c => c.Event.ExternalId == externalId && !c.IsMediaUpdate);

    [GeneratedRegex(@"^inst-1/\d{4}/\d{2}/\d{2}/\d+\.jpg$")]
    private static partial Regex ZApiImageKey();

    [Fact]
    public async Task A_media_is_stored_under_its_key_with_size_type_and_hash_and_reaches_the_handler_before_the_next_message_of_its_chat()
    {
        var bytes = Bytes(50_000, 1);
        var image = Fake.AddMedia(bytes, "image/jpeg");
        await CaptureZApi(Fake.ZApiWebhook(image));
        await CaptureZApi(ZApiText("T-after", "after the photo"));

        await WaitForSeen(2, "the image and the text");
        Assert.Equal([image.MessageId, "T-after"], Recorder.Seen.Select(c => c.Event.ExternalId).ToArray());
        var seen = Recorder.Seen.First();
        Assert.Equal(MediaStatus.Stored, seen.Media.Status);
        Assert.Matches(ZApiImageKey(), seen.Media.Key);
        Assert.EndsWith("/" + seen.EventId + ".jpg", seen.Media.Key, StringComparison.Ordinal);
        Assert.Equal((50_000L, "image/jpeg"), (seen.Media.Size, seen.Media.MimeType));
        Assert.Equal(Convert.ToHexString(SHA256.HashData(bytes)).ToLowerInvariant(), seen.Media.Sha256);

        // The store holds exactly those bytes; the handler can read them and get a link.
        await using (var stream = (await seen.OpenMediaAsync())!)
        {
            using var copy = new MemoryStream();
            await stream.CopyToAsync(copy);
            Assert.Equal(bytes, copy.ToArray());
        }

        Assert.Contains(seen.Media.Key!, (await seen.GetMediaUrlAsync())!.AbsoluteUri, StringComparison.Ordinal);
        var stored = (await Store.GetEventAsync(seen.EventId))!;
        Assert.Equal(seen.Media, stored.Media);
        Assert.Equal(1, image.DownloadRequests);
        Assert.Equal(1L, (await Store.CountMediaAsync())[MediaStatus.Stored]);
    }

    [Fact]
    public async Task Retryable_failures_are_retried_honouring_Retry_After_while_the_chat_waits()
    {
        var bytes = Bytes(10_000, 2);
        var image = Fake.AddMedia(bytes, "image/jpeg", new FakeMediaBehavior { ServerErrors = 1, TooManyRequests = 1, RetryAfter = "120" });
        await CaptureZApi(Fake.ZApiWebhook(image));
        await CaptureZApi(ZApiText("T-behind", "behind the photo"));

        // The first attempt got a 503 with Retry-After 120: the media job waits at least that long; the chat waits too.
        await Eventually.TrueAsync(() => image.DownloadRequests == 1, "the first download attempt");
        long mediaJobId = 0;
        await Eventually.TrueAsync(async () => (mediaJobId = (await Jobs.ListAsync(new JobQuery { Queue = InboxQueues.Media })).Jobs.FirstOrDefault()?.Id ?? 0) > 0, "the media job");
        await Eventually.TrueAsync(async () => (await Jobs.GetAsync(mediaJobId))!.Status == JobStatus.Pending, "the media job to wait for its retry");
        var job = (await Jobs.GetAsync(mediaJobId))!;
        Assert.True(job.RunAt >= Time.GetUtcNow() + TimeSpan.FromSeconds(119), $"retry at {job.RunAt:O}, now {Time.GetUtcNow():O}");
        Assert.Contains("503", job.LastError, StringComparison.Ordinal);
        Assert.Empty(Recorder.Seen);

        // Time passes: 429 (Retry-After again), then success; the image goes first with its media, then the text.
        await WaitForSeen(2, "both messages after the retries", TimeSpan.FromSeconds(2));
        Assert.Equal(3, image.DownloadRequests);
        Assert.Equal([image.MessageId, "T-behind"], Recorder.Seen.Select(c => c.Event.ExternalId).ToArray());
        Assert.Equal(MediaStatus.Stored, Recorder.Seen.First().Media.Status);

        // The media job's outcome is written after its handler stored the media, so it can land after the delivery.
        await Eventually.TrueAsync(async () => (await Jobs.GetAsync(mediaJobId))!.Status == JobStatus.Completed, "the media job to complete");
        Assert.Equal(3, (await Jobs.GetAttemptsAsync(mediaJobId)).Count);
    }

    [Fact]
    public async Task A_fatal_answer_fails_the_media_at_once_and_the_event_goes_on_with_the_reason()
    {
        var gone = Fake.AddMedia(Bytes(1000, 3), "image/jpeg", new FakeMediaBehavior { Status = 410 });
        await CaptureZApi(Fake.ZApiWebhook(gone));
        await CaptureZApi(ZApiText("T-next", "next"));

        await WaitForSeen(2, "the failed image and the text");
        var seen = SeenMessage(gone.MessageId);
        Assert.Equal(MediaStatus.Failed, seen.Media.Status);
        Assert.Contains("410", seen.Media.Error, StringComparison.Ordinal);
        Assert.Null(seen.Media.Key);
        Assert.Null(await seen.GetMediaUrlAsync());
        Assert.Equal(1, gone.DownloadRequests); // not retried
        Assert.Equal("T-next", Recorder.Seen.Last().Event.ExternalId);
        Assert.Equal(1L, (await Store.CountMediaAsync())[MediaStatus.Failed]);
        Assert.Empty(FilesInStore("*.jpg"));
    }

    [Fact]
    public async Task A_media_over_the_size_limit_fails_without_anything_stored()
    {
        var big = Fake.AddMedia(300 * 1024, "video/mp4");
        await CaptureZApi(Fake.ZApiWebhook(big));

        await WaitForSeen(1, "the oversize video's event");
        var seen = Recorder.Seen.Single();
        Assert.Equal(MediaStatus.Failed, seen.Media.Status);
        Assert.Contains("larger than the limit", seen.Media.Error, StringComparison.Ordinal);
        Assert.Null(await MediaStore.GetAsync(MediaKeys.For("inst-1", (await Store.GetEventAsync(seen.EventId))!.CreatedAt, seen.EventId, "video/mp4")));
        Assert.Empty(FilesInStore("*.mp4"));
    }

    [Fact]
    public async Task A_file_that_does_not_match_the_providers_sha256_fails_and_is_not_kept()
    {
        var bytes = Bytes(20_000, 4);
        var tampered = Fake.AddMedia(bytes, "image/jpeg", new FakeMediaBehavior { MetaSha256 = Convert.ToBase64String(SHA256.HashData("other"u8)) });
        await CaptureMeta(Fake.MetaWebhook(tampered));

        await WaitForSeen(1, "the Meta image's event");
        var seen = Recorder.Seen.Single();
        Assert.Equal(MediaStatus.Failed, seen.Media.Status);
        Assert.Contains("SHA-256", seen.Media.Error, StringComparison.Ordinal);
        Assert.Empty(FilesInStore("*.jpg"));
    }

    [Fact]
    public async Task Meta_media_is_fetched_by_id_with_the_token_and_its_hash_checked()
    {
        var bytes = Bytes(30_000, 5);
        var image = Fake.AddMedia(bytes, "image/jpeg");
        await CaptureMeta(Fake.MetaWebhook(image));

        await WaitForSeen(1, "the Meta image");
        var seen = Recorder.Seen.Single();
        Assert.Equal(MediaStatus.Stored, seen.Media.Status);
        Assert.Equal(Convert.ToHexString(SHA256.HashData(bytes)).ToLowerInvariant(), seen.Media.Sha256);
        Assert.StartsWith("phone-1/", seen.Media.Key, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_chat_waits_for_a_pending_media_up_to_the_limit_then_goes_with_a_placeholder_and_a_media_update_follows()
    {
        // Each failed attempt asks for an hour: the download stays pending far past the chat's ten-minute wait.
        var bytes = Bytes(5_000, 6);
        var slow = Fake.AddMedia(bytes, "image/jpeg", new FakeMediaBehavior { ServerErrors = 1, RetryAfter = "3600" });
        await CaptureZApi(Fake.ZApiWebhook(slow));
        await CaptureZApi(ZApiText("T-held", "held behind the photo"));
        await Eventually.TrueAsync(() => slow.DownloadRequests == 1, "the first download attempt");
        await Eventually.TrueAsync(async () => (await Jobs.ListAsync(new JobQuery { Queue = InboxQueues.Media })).Jobs.SingleOrDefault() is { Status: JobStatus.Pending, Attempts: 1 },
            "the media job to wait for its retry");
        var start = Time.GetUtcNow();

        // Nothing of the chat goes before the wait runs out; then the image (media pending) and the text, in order.
        await WaitForSeen(2, "the chat to go on after the wait", TimeSpan.FromSeconds(2));
        Assert.True(Time.GetUtcNow() - start >= TimeSpan.FromMinutes(10) - TimeSpan.FromSeconds(1), $"went after {Time.GetUtcNow() - start}: " + string.Join("; ", Recorder.Seen.Select(c => $"{c.Event.ExternalId} {c.Media.Status} {c.Media.Error} update={c.IsMediaUpdate}")));
        Assert.Equal([slow.MessageId, "T-held"], Recorder.Seen.Take(2).Select(c => c.Event.ExternalId).ToArray());
        var first = Recorder.Seen.First();
        Assert.Equal((MediaStatus.Pending, false), (first.Media.Status, first.IsMediaUpdate));
        Assert.Contains("503", first.Media.Error, StringComparison.Ordinal);

        // The retry an hour later succeeds: the event comes again as a media update, with the stored media.
        Time.Advance(TimeSpan.FromMinutes(50));
        await WaitForSeen(3, "the media update", TimeSpan.FromSeconds(5));
        var update = Recorder.Seen.Last();
        Assert.Equal((slow.MessageId, true, MediaStatus.Stored), (update.Event.ExternalId, update.IsMediaUpdate, update.Media.Status));
        Assert.Equal(first.EventId, update.EventId);
        Assert.Equal(first.IdempotencyKey + "#media", update.IdempotencyKey);
        Assert.Equal(2, slow.DownloadRequests);
        Assert.Equal(3, Recorder.Seen.Count);
    }

    [Fact]
    public async Task Messages_without_media_and_statuses_do_not_wait_and_get_no_media_job()
    {
        await CaptureZApi(ZApiText("T-plain", "plain text"));
        await WaitForSeen(1, "the text");
        Assert.Equal(MediaStatus.None, Recorder.Seen.Single().Media.Status);
        Assert.Empty((await Jobs.ListAsync(new JobQuery { Queue = InboxQueues.Media })).Jobs);
    }
}
