using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Inbox.Reliability.Capture;
using Inbox.Reliability.Dispatch;
using Inbox.Reliability.Events;
using Inbox.Reliability.Jobs;
using Inbox.Reliability.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Xunit;

namespace Inbox.Reliability.Conformance;

/// <summary>Records what the host's event handler saw; can be told to fail.</summary>
public sealed class EventRecorder
{
    public ConcurrentQueue<InboxEventContext> Seen { get; } = new();

    public Func<InboxEventContext, bool> FailWhen { get; set; } = _ => false;

    /// <summary>When set, the handler waits for it before returning from the event with this external id.</summary>
    public (string ExternalId, TaskCompletionSource Release)? HoldOn { get; set; }
}

public sealed class RecordingEventHandler(EventRecorder recorder) : IInboxEventHandler
{
    public async Task HandleAsync(InboxEventContext context, CancellationToken cancellationToken)
    {
        recorder.Seen.Enqueue(context);
        if (recorder.HoldOn is { } hold && hold.ExternalId == context.Event.ExternalId) await hold.Release.Task.WaitAsync(cancellationToken);
        if (recorder.FailWhen(context)) throw new InvalidOperationException($"handler failed on {context.Event.ExternalId}");
    }
}

/// <summary>Capture, ingest and dispatch end to end on the storage under test: durable before the answer, dedupe, per-chat order.</summary>
public abstract class WebhookPipelineConformanceTests : IAsyncLifetime
{
    protected const string ZApiSecret = "zapi-secret-1";
    protected const string MetaAppSecret = "meta-app-secret";
    private IStorageUnderTest _storage = null!;
    private IHost _host = null!;

    protected abstract IStorageUnderTest CreateStorage();

    protected ManualTimeProvider Time { get; } = new();

    protected EventRecorder Recorder { get; } = new();

    protected IInboxCapture Capture => _host.Services.GetRequiredService<IInboxCapture>();

    protected IInboxStore Store => _host.Services.GetRequiredService<IInboxStore>();

    protected IJobQueue Jobs => _host.Services.GetRequiredService<IJobQueue>();

    public async Task InitializeAsync()
    {
        _storage = CreateStorage();
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Services.AddLogging();
        builder.Services.AddSingleton(Recorder);
        builder.Services.AddSingleton<IWebhookProvider, StrictTestProvider>();
        var inbox = builder.Services.AddInboxReliability().UseTimeProvider(Time);
        _storage.Configure(inbox);
        inbox.AddZApi(o => o.WebhookSecret = ZApiSecret)
             .AddMetaCloudApi(o => o.AppSecret = MetaAppSecret)
             .AddEventHandler<RecordingEventHandler>()
             .AddWebhookPipeline(o =>
             {
                 o.MaxBodyBytes = 64 * 1024;
                 o.DispatchMaxAttempts = 3;
                 o.LeaseDuration = TimeSpan.FromMinutes(10); // time jumps by minutes in some tests; no lease may expire meanwhile
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
    }

    protected static string ZApiText(string messageId, string chat, string text, long momentMs = 1767290000000) =>
        $$$"""{"type":"ReceivedCallback","instanceId":"I1","messageId":"{{{messageId}}}","phone":"{{{chat}}}","fromMe":false,"momment":{{{momentMs}}},"status":"RECEIVED","senderName":"Ana","isGroup":false,"text":{"message":"{{{text}}}"}}""";

    protected Task<CaptureResult> CaptureZApi(string body, string instance = "inst-1", string? secret = ZApiSecret) =>
        Capture.CaptureAsync(new WebhookRequest("zapi", instance, Encoding.UTF8.GetBytes(body), Time.GetUtcNow())
        {
            Query = secret is null ? new Dictionary<string, string>() : new Dictionary<string, string> { ["secret"] = secret },
        });

    protected Task<CaptureResult> CaptureMeta(string body, string? signature = null)
    {
        var bytes = Encoding.UTF8.GetBytes(body);
        signature ??= "sha256=" + Convert.ToHexString(HMACSHA256.HashData(Encoding.UTF8.GetBytes(MetaAppSecret), bytes)).ToLowerInvariant();
        return Capture.CaptureAsync("meta", "phone-1", bytes, new Dictionary<string, string> { ["X-Hub-Signature-256"] = signature, ["Content-Type"] = "application/json" });
    }

    private Task WaitForSeen(int count, string what) =>
        Eventually.TrueAsync(() => Recorder.Seen.Count >= count, what, between: () => Time.Advance(TimeSpan.FromMilliseconds(200)));

    [Fact]
    public async Task A_stored_webhook_is_durable_before_the_answer_and_reaches_the_handler_once()
    {
        var result = await CaptureZApi(ZApiText("M1", "5511999990001", "hello"));
        Assert.Equal((CaptureStatus.Stored, 200), (result.Status, result.HttpStatusCode));
        var raw = await Store.GetRawWebhookAsync(result.RawWebhookId!.Value);
        Assert.NotNull(raw); // durable when the answer came back
        Assert.Equal(("zapi", "inst-1"), (raw.Provider, raw.Instance));
        Assert.Equal(SHA256.HashData(Encoding.UTF8.GetBytes(ZApiText("M1", "5511999990001", "hello"))), raw.Sha256);
        Assert.DoesNotContain(raw.Headers.Keys, k => k.Contains("secret", StringComparison.OrdinalIgnoreCase));

        await WaitForSeen(1, "the event to reach the handler");
        var seen = Assert.Single(Recorder.Seen);
        Assert.Equal(("M1", "5511999990001", "hello", InboxEventKind.Message), (seen.Event.ExternalId, seen.Event.ChatId, seen.Event.Text, seen.Event.Kind));
        Assert.Equal(1, seen.Sequence);
        Assert.Equal(seen.Event.DedupeKey, seen.IdempotencyKey);
        await Eventually.TrueAsync(async () => (await Store.GetEventAsync(seen.EventId))?.DispatchStatus == EventDispatchStatus.Dispatched, "the event to be marked dispatched");
        Assert.Equal(RawWebhookStatus.Ingested, (await Store.GetRawWebhookAsync(raw.Id))!.Status);
    }

    [Fact]
    public async Task A_provider_retry_is_stored_once_and_counted_and_a_repeated_message_is_delivered_once()
    {
        var body = ZApiText("M1", "5511999990001", "hello");
        var first = await CaptureZApi(body);
        var retry = await CaptureZApi(body);
        Assert.Equal(CaptureStatus.Duplicate, retry.Status);
        Assert.Equal(200, retry.HttpStatusCode);
        Assert.Equal(first.RawWebhookId, retry.RawWebhookId);
        Assert.Equal(1, (await Store.GetRawWebhookAsync(first.RawWebhookId!.Value))!.Duplicates);

        // The same message in a different body (other whitespace): a second raw row, but the event dedupes.
        var other = await CaptureZApi(body.Replace(",\"fromMe\"", ", \"fromMe\"", StringComparison.Ordinal));
        Assert.Equal(CaptureStatus.Stored, other.Status);
        await Eventually.TrueAsync(async () => (await Store.GetRawWebhookAsync(other.RawWebhookId!.Value))!.Status == RawWebhookStatus.Ingested, "the second body to be ingested",
            between: () => Time.Advance(TimeSpan.FromMilliseconds(200)));
        await WaitForSeen(1, "the event");
        Assert.Single(Recorder.Seen);
        Assert.Equal(0, (await Store.GetRawWebhookAsync(other.RawWebhookId!.Value))!.EventCount);
    }

    [Fact]
    public async Task Events_of_a_chat_reach_the_handler_in_order_and_a_failing_event_holds_its_chat()
    {
        Recorder.FailWhen = c => c.Event.ExternalId == "A2" && c.Attempt == 1;
        foreach (var (id, chat) in new[] { ("A1", "551100000001"), ("B1", "551100000002"), ("A2", "551100000001"), ("A3", "551100000001"), ("B2", "551100000002") })
        {
            Assert.Equal(CaptureStatus.Stored, (await CaptureZApi(ZApiText(id, chat, "m " + id))).Status);
        }

        await Eventually.TrueAsync(() => Recorder.Seen.Select(s => s.Event.ExternalId).Distinct().Count() == 5, "all five events",
            between: () => Time.Advance(TimeSpan.FromMilliseconds(500)));
        var chatA = Recorder.Seen.Where(s => s.Event.ChatId == "551100000001").Select(s => (s.Event.ExternalId, s.Attempt)).ToList();
        Assert.Equal([("A1", 1), ("A2", 1), ("A2", 2), ("A3", 1)], chatA);
        Assert.Equal(["B1", "B2"], Recorder.Seen.Where(s => s.Event.ChatId == "551100000002").Select(s => s.Event.ExternalId));
        Assert.Equal([1L, 2L, 3L, 4L, 5L], Recorder.Seen.Select(s => s.Sequence).Distinct().Order());
    }

    [Fact]
    public async Task A_failing_event_counts_its_own_attempts_then_fails_for_good_and_its_chat_goes_on()
    {
        // DispatchMaxAttempts is 3 here. A1 fails twice then succeeds; A2 always fails; A3 follows.
        Recorder.FailWhen = c => (c.Event.ExternalId == "A1" && c.Attempt < 3) || c.Event.ExternalId == "A2";
        var ids = new Dictionary<string, long>();
        foreach (var id in new[] { "A1", "A2", "A3" })
        {
            Assert.Equal(CaptureStatus.Stored, (await CaptureZApi(ZApiText(id, "551100000001", "m " + id))).Status);
        }

        await Eventually.TrueAsync(() => Recorder.Seen.Any(s => s.Event.ExternalId == "A3"), "A3 after A2 failed for good",
            between: () => Time.Advance(TimeSpan.FromMilliseconds(500)));
        Assert.Equal([("A1", 1), ("A1", 2), ("A1", 3), ("A2", 1), ("A2", 2), ("A2", 3), ("A3", 1)], Recorder.Seen.Select(s => (s.Event.ExternalId, s.Attempt)));
        foreach (var seen in Recorder.Seen) ids[seen.Event.ExternalId] = seen.EventId;

        await Eventually.TrueAsync(async () => (await Store.GetEventAsync(ids["A3"]))?.DispatchStatus == EventDispatchStatus.Dispatched, "A3 to be marked dispatched");
        var a1 = (await Store.GetEventAsync(ids["A1"]))!;
        var a2 = (await Store.GetEventAsync(ids["A2"]))!;
        Assert.Equal((EventDispatchStatus.Dispatched, 2), (a1.DispatchStatus, a1.DispatchAttempts));
        Assert.Equal((EventDispatchStatus.Failed, 3), (a2.DispatchStatus, a2.DispatchAttempts));
        Assert.Empty(await Store.GetPendingEventsAsync("zapi", "inst-1", "551100000001", 10));
    }

    [Fact]
    public async Task A_chat_that_receives_while_it_is_delivered_gets_one_job_for_the_events_that_wait()
    {
        const string Chat = "551100000009";
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Recorder.HoldOn = ("R0", release);
        Assert.Equal(CaptureStatus.Stored, (await CaptureZApi(ZApiText("R0", Chat, "first"))).Status);
        await WaitForSeen(1, "R0 to reach the (held) handler");

        // Forty more while R0 is being delivered: the chat's running job does not take them (it may have read its events
        // already), so the first of them enqueues a job and the other 39 find it pending.
        var sent = Enumerable.Range(1, 40).Select(i => "R" + i).ToList();
        foreach (var id in sent) Assert.Equal(CaptureStatus.Stored, (await CaptureZApi(ZApiText(id, Chat, id))).Status);
        await Eventually.TrueAsync(async () => (await Store.GetPendingEventsAsync("zapi", "inst-1", Chat, 100)).Count == 41, "the 40 events to be ingested",
            between: () => Time.Advance(TimeSpan.FromMilliseconds(200)));
        var dispatch = (await Jobs.GetStatsAsync()).Single(q => q.Queue == "inbox.dispatch");
        Assert.Equal((1L, 1L), (dispatch.Processing, dispatch.Pending));

        release.SetResult();
        await WaitForSeen(41, "all 41 events");
        Assert.Equal(["R0", .. sent], Recorder.Seen.Select(s => s.Event.ExternalId));
        await Eventually.TrueAsync(async () => (await Store.GetPendingEventsAsync("zapi", "inst-1", Chat, 100)).Count == 0, "every event to be marked dispatched",
            between: () => Time.Advance(TimeSpan.FromMilliseconds(200)));
        await Eventually.TrueAsync(async () => (await Jobs.GetStatsAsync()).Single(q => q.Queue == "inbox.dispatch") is { Pending: 0, Processing: 0, Completed: 2 },
            "two dispatch jobs to have completed for 41 events", between: () => Time.Advance(TimeSpan.FromMilliseconds(200)));
    }

    [Fact]
    public async Task A_long_run_of_a_chat_yields_before_the_attempt_timeout_so_no_event_is_blamed_for_it()
    {
        // The dispatch queue's attempt timeout is 5 minutes; each of these events takes 4 (manual time) to handle.
        const string Chat = "551100000010";
        var holds = new[] { "L0", "L1", "L2" }.ToDictionary(id => id, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        var current = "L0";
        Recorder.HoldOn = (current, holds[current]);
        foreach (var id in holds.Keys) Assert.Equal(CaptureStatus.Stored, (await CaptureZApi(ZApiText(id, Chat, id))).Status);

        foreach (var id in holds.Keys)
        {
            await Eventually.TrueAsync(() => Recorder.Seen.Any(s => s.Event.ExternalId == id), id + " to reach the handler",
                between: () => Time.Advance(TimeSpan.FromMilliseconds(200)));
            Time.Advance(TimeSpan.FromMinutes(4));
            var next = holds.Keys.SkipWhile(k => k != id).Skip(1).FirstOrDefault();
            if (next is not null) Recorder.HoldOn = (next, holds[next]);
            holds[id].SetResult();
        }

        await Eventually.TrueAsync(async () => (await Store.GetPendingEventsAsync("zapi", "inst-1", Chat, 10)).Count == 0, "every event to be marked dispatched",
            between: () => Time.Advance(TimeSpan.FromMilliseconds(200)));
        Assert.Equal([("L0", 1), ("L1", 1), ("L2", 1)], Recorder.Seen.Select(s => (s.Event.ExternalId, s.Attempt)));
    }

    [Fact]
    public async Task A_burst_of_webhooks_ingested_in_parallel_reaches_the_handler_in_arrival_order_per_chat()
    {
        // Three chats send at once; within a chat each webhook is sent once the previous one was answered, which is what
        // defines arrival order (webhooks in flight at the same moment have none). Captures of the three chats share commits.
        var chats = Enumerable.Range(0, 3).Select(c => "55110000000" + c).ToArray();
        var sent = chats.ToDictionary(c => c, c => Enumerable.Range(0, 100).Select(i => "burst-" + c[^1] + "-" + i).ToList());
        await Task.WhenAll(chats.Select(chat => Task.Run(async () =>
        {
            foreach (var id in sent[chat]) Assert.Equal(CaptureStatus.Stored, (await CaptureZApi(ZApiText(id, chat, id))).Status);
        })));

        await WaitForSeen(300, "all 300 events");
        foreach (var chat in chats)
        {
            Assert.Equal(sent[chat], Recorder.Seen.Where(s => s.Event.ChatId == chat).Select(s => s.Event.ExternalId));
        }

        Assert.Equal(Enumerable.Range(1, 300).Select(i => (long)i), Recorder.Seen.Select(s => s.Sequence).Order());
    }

    [Fact]
    public async Task A_meta_batch_becomes_one_event_per_message_in_order()
    {
        var messages = string.Join(",", Enumerable.Range(1, 50).Select(i =>
            $$$"""{"from":"5511888880000","id":"wamid.{{{i}}}","timestamp":"1767290{{{i:000}}}","type":"text","text":{"body":"n{{{i}}}"}}"""));
        var body = $$$"""{"object":"whatsapp_business_account","entry":[{"id":"WABA","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550000000","phone_number_id":"PN1"},"contacts":[{"profile":{"name":"Bob"},"wa_id":"5511888880000"}],"messages":[{{{messages}}}]}}]}]}""";
        Assert.Equal(CaptureStatus.Stored, (await CaptureMeta(body)).Status);
        await WaitForSeen(50, "50 events");
        Assert.Equal(Enumerable.Range(1, 50).Select(i => "wamid." + i), Recorder.Seen.Select(s => s.Event.ExternalId));
    }

    [Fact]
    public async Task Bad_input_gets_its_answer_and_nothing_is_stored()
    {
        Assert.Equal(401, (await CaptureMeta("{\"object\":\"x\"}", signature: "sha256=" + new string('0', 64))).HttpStatusCode);
        Assert.Equal(401, (await CaptureZApi(ZApiText("M1", "1", "x"), secret: "wrong")).HttpStatusCode);
        Assert.Equal(401, (await CaptureZApi(ZApiText("M1", "1", "x"), secret: null)).HttpStatusCode);
        Assert.Equal(400, (await CaptureZApi("")).HttpStatusCode);
        Assert.Equal(413, (await CaptureZApi(new string(' ', 64 * 1024 + 1))).HttpStatusCode);
        Assert.Equal(404, (await Capture.CaptureAsync("nope", "inst-1", new byte[] { 1 }, new Dictionary<string, string>())).HttpStatusCode);
        Assert.Equal(400, (await Capture.CaptureAsync("zapi", "../etc", new byte[] { 1 }, new Dictionary<string, string>())).HttpStatusCode);
        Assert.Empty(await Store.ListRawWebhooksAsync(new RawWebhookQuery()));
    }

    [Fact]
    public async Task A_payload_no_adapter_understands_is_kept_failed_with_the_reason()
    {
        var result = await CaptureZApi("{\"this is\": \"not z-api\"");
        Assert.Equal(CaptureStatus.Stored, result.Status); // durable first, parsed later
        await Eventually.TrueAsync(async () => (await Store.GetRawWebhookAsync(result.RawWebhookId!.Value))!.Status == RawWebhookStatus.Failed, "the raw webhook to fail",
            between: () => Time.Advance(TimeSpan.FromMilliseconds(200)));
        var raw = (await Store.GetRawWebhookAsync(result.RawWebhookId!.Value))!;
        Assert.False(string.IsNullOrWhiteSpace(raw.Error));
        Assert.Single(await Store.ListRawWebhooksAsync(new RawWebhookQuery { Status = RawWebhookStatus.Failed }));
        Assert.Empty(Recorder.Seen);

        // Reprocessing (after an upgrade) parses it again: with the same adapter it fails again, with a fresh time.
        Time.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal(1, await Capture.ReprocessRawAsync(new RawWebhookQuery { Provider = "zapi" }));
        await Eventually.TrueAsync(async () => (await Store.GetRawWebhookAsync(raw.Id))! is { Status: RawWebhookStatus.Failed } again && again.ProcessedAt > raw.ProcessedAt,
            "the reprocessed raw webhook to fail again", between: () => Time.Advance(TimeSpan.FromMilliseconds(200)));
        Assert.Equal(0, await Capture.ReprocessRawAsync(new RawWebhookQuery { Provider = "meta" }));
    }

    [Fact]
    public async Task A_message_from_a_disconnected_instance_marks_it_connected_again()
    {
        var disconnected = """{"type":"DisconnectedCallback","instanceId":"I1","momment":1767290000,"error":"Device has been disconnected","disconnected":true}""";
        await CaptureZApi(disconnected);
        await Eventually.TrueAsync(async () => (await Store.GetInstanceAsync("zapi", "inst-1"))?.Status == InstanceStatus.Disconnected, "the instance to be disconnected",
            between: () => Time.Advance(TimeSpan.FromMilliseconds(200)));
        await CaptureZApi(ZApiText("M9", "5511999990001", "back"));
        await Eventually.TrueAsync(async () => (await Store.GetInstanceAsync("zapi", "inst-1"))?.Status == InstanceStatus.Connected, "the instance to be connected again",
            between: () => Time.Advance(TimeSpan.FromMilliseconds(200)));
    }

    [Fact]
    public async Task A_webhook_whose_events_the_storage_refuses_is_marked_failed_with_the_reason_and_the_webhooks_around_it_are_delivered_in_order()
    {
        // A host's own adapter that gives an event without the id the storage requires (NOT NULL): the database refuses that
        // webhook's events however often they are written.
        var ids = new List<long>();
        foreach (var id in new[] { "T1", "T2", StrictTestProvider.Refused, "T4" })
        {
            var result = await Capture.CaptureAsync(StrictTestProvider.ProviderName, "inst-1", Encoding.UTF8.GetBytes(id), new Dictionary<string, string>());
            Assert.Equal(CaptureStatus.Stored, result.Status);
            ids.Add(result.RawWebhookId!.Value);
        }

        await Eventually.TrueAsync(async () => (await Store.GetRawWebhookAsync(ids[2]))!.Status == RawWebhookStatus.Failed, "the refused webhook to be marked failed",
            between: () => Time.Advance(TimeSpan.FromMilliseconds(200)));
        await WaitForSeen(3, "the three other webhooks to be delivered");
        Assert.Equal(["T1", "T2", "T4"], Recorder.Seen.Select(s => s.Event.ExternalId));
        Assert.False(string.IsNullOrWhiteSpace((await Store.GetRawWebhookAsync(ids[2]))!.Error));
        foreach (var i in new[] { 0, 1, 3 }) Assert.Equal(RawWebhookStatus.Ingested, (await Store.GetRawWebhookAsync(ids[i]))!.Status);

        // No ingest job is left failing or retrying over it.
        await Eventually.TrueAsync(async () => (await Jobs.GetStatsAsync()).Single(s => s.Queue == InboxQueues.Ingest) is { Pending: 0, Processing: 0, Failed: 0 },
            "every ingest job to complete", between: () => Time.Advance(TimeSpan.FromMilliseconds(200)));
    }
}

/// <summary>A host's own adapter for tests: the body is the message id; <see cref="Refused"/> gives an event without one.</summary>
public sealed class StrictTestProvider : IWebhookProvider
{
    public const string ProviderName = "strict";
    public const string Refused = "REFUSED";

    public string Name => ProviderName;

    public WebhookAuthResult Authenticate(WebhookRequest request) => WebhookAuthResult.NotConfigured("test adapter");

    public IReadOnlyList<InboxEvent> Parse(WebhookRequest request)
    {
        var id = Encoding.UTF8.GetString(request.Body.Span);
        return
        [
            new InboxEvent
            {
                Kind = InboxEventKind.Message,
                Provider = ProviderName,
                Instance = request.Instance,
                ExternalId = id == Refused ? null! : id,
                DedupeKey = InboxDedupeKey.ForMessage(ProviderName, request.Instance, id),
                ChatId = "chat-1",
                OccurredAt = request.ReceivedAt,
                MessageType = InboxMessageType.Text,
                Text = id,
            },
        ];
    }
}
