using System.Text;
using Inbox.Reliability.Capture;
using Inbox.Reliability.Conformance;
using Inbox.Reliability.Events;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Inbox.Reliability.PostgreSql.Tests;

/// <summary>
/// Whole pipeline hosts on PostgreSQL: a web tier and a worker tier on one database (a host with <c>ProcessJobs = false</c>
/// captures, a host with the default processes, while both run), and the drain jobs an ingest hands to its own process.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgreSqlPipelineHostTests(PostgresServer server) : IAsyncLifetime
{
    private const string Secret = "zapi-secret";
    private readonly string _schema = PostgresServer.NewSchema();
    private readonly List<IHost> _hosts = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var host in _hosts)
        {
            await host.StopAsync();
            host.Dispose();
        }

        await server.DropSchemaAsync(_schema);
    }

    private async Task<(IHost Host, EventRecorder Recorder)> StartHostAsync(string name, bool processJobs, Action<InboxPipelineOptions>? pipeline = null)
    {
        var recorder = new EventRecorder();
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Services.AddLogging();
        builder.Services.AddSingleton(recorder);
        builder.Services.AddInboxReliability(o =>
            {
                o.WorkerName = name;
                o.ProcessJobs = processJobs;
            })
            .UsePostgreSql(server.ConnectionString, o => o.Schema = _schema)
            .AddZApi(o => o.WebhookSecret = Secret)
            .AddEventHandler<RecordingEventHandler>()
            .AddWebhookPipeline(o => pipeline?.Invoke(o));
        var host = builder.Build();
        _hosts.Add(host);
        await host.StartAsync();
        return (host, recorder);
    }

    /// <summary>Captures <paramref name="perChat"/> text messages into each chat, interleaved; returns (chat, message id) in sending order.</summary>
    private static async Task<List<(string Chat, string Id)>> CaptureAsync(IHost host, string[] chats, int perChat, Func<int, Task>? between = null)
    {
        var capture = host.Services.GetRequiredService<IInboxCapture>();
        var sent = new List<(string Chat, string Id)>();
        for (var i = 0; i < perChat; i++)
        {
            foreach (var chat in chats)
            {
                var id = $"M-{chat}-{i:D3}";
                sent.Add((chat, id));
                var result = await capture.CaptureAsync(new WebhookRequest("zapi", "inst-1", Encoding.UTF8.GetBytes(Text(id, chat)), DateTimeOffset.UtcNow)
                {
                    Query = new Dictionary<string, string> { ["secret"] = Secret },
                });
                Assert.Equal(CaptureStatus.Stored, result.Status);
            }

            if (between is not null) await between(i);
        }

        return sent;
    }

    private static void AssertDeliveredOnceInChatOrder(List<(string Chat, string Id)> sent, EventRecorder recorder)
    {
        Assert.Equal(sent.Count, recorder.Seen.Count);
        foreach (var chat in sent.Select(s => s.Chat).Distinct())
        {
            Assert.Equal(sent.Where(s => s.Chat == chat).Select(s => s.Id), recorder.Seen.Where(c => c.Event.ChatId == chat).Select(c => c.Event.ExternalId));
        }
    }

    /// <summary>A job's outcome is written after its handler returns: wait until no job is pending or running.</summary>
    private Task WaitForJobsToFinishAsync() => Eventually.TrueAsync(
        async () => (await server.QueryAsync($"SELECT count(*) FROM {_schema}.jobs WHERE status IN (0, 1)", r => r.GetInt64(0)))[0] == 0, "every job to finish");

    private static string Text(string messageId, string chat) =>
        $$$"""{"type":"ReceivedCallback","instanceId":"I1","messageId":"{{{messageId}}}","phone":"{{{chat}}}","fromMe":false,"momment":1767290000000,"status":"RECEIVED","senderName":"Ana","isGroup":false,"text":{"message":"text of {{{messageId}}}"}}""";

    [Fact]
    public async Task Webhooks_captured_on_an_enqueue_only_host_are_processed_by_the_worker_host_in_chat_order()
    {
        var (web, webSeen) = await StartHostAsync("web", processJobs: false);
        var (_, workerSeen) = await StartHostAsync("worker", processJobs: true);
        await using var notifications = await NotificationRecorder.StartAsync(server.ConnectionString, _schema + "_jobs");
        string[] chats = ["5511999990001", "5511999990002", "5511999990003"];
        var sent = await CaptureAsync(web, chats, perChat: 20);

        // The web host has no ingest worker: its captures' ingest jobs wait for a claim, and their commits wake the workers.
        await Eventually.TrueAsync(() => notifications.Queues.Contains("inbox.ingest"), "a NOTIFY for the ingest queue");

        await Eventually.TrueAsync(() => workerSeen.Seen.Count >= sent.Count, $"the worker host to handle {sent.Count} events");

        // Every event once, each chat in the order it was sent, and none of it on the web host.
        AssertDeliveredOnceInChatOrder(sent, workerSeen);
        Assert.Empty(webSeen.Seen);

        // Every job ran on the worker host (a finished job keeps its last worker), and only the worker host listens for wake-ups.
        Assert.Equal(["worker"], await server.QueryAsync($"SELECT DISTINCT coalesce(lease_owner, '(none)') FROM {_schema}.jobs", r => r.GetString(0)));
        Assert.Equal([1L], await server.QueryAsync($"SELECT count(*) FROM pg_stat_activity WHERE query = 'LISTEN \"{_schema}_jobs\"'", r => r.GetInt64(0)));
    }

    [Fact]
    public async Task Capture_and_ingest_hand_their_jobs_to_their_own_process_workers_already_leased_and_events_deliver_in_order()
    {
        var (host, seen) = await StartHostAsync("host-1", processJobs: true);
        await using var notifications = await NotificationRecorder.StartAsync(server.ConnectionString, _schema + "_jobs");
        string[] chats = ["5511999990001", "5511999990002", "5511999990003", "5511999990004"];

        // Every capture's ingest job is inserted leased to this process's ingest worker and handed over at the commit. Each
        // round waits until it is delivered and its jobs' outcomes are recorded (a handler sees its event before its drain
        // job's completion commits), so each ingest finds its chats without a live drain: every drain is inserted leased
        // to this process's dispatch worker and handed over the same way. None is claimed.
        var sent = await CaptureAsync(host, chats, perChat: 5, between: async i =>
        {
            await Eventually.TrueAsync(() => seen.Seen.Count >= (i + 1) * chats.Length, $"round {i} to be delivered");
            await WaitForJobsToFinishAsync();
        });
        AssertDeliveredOnceInChatOrder(sent, seen);

        // A handed-over job started when it was created (a claim would have started it later), on this host, and completed.
        await WaitForJobsToFinishAsync();
        var jobs = await server.QueryAsync($"SELECT queue, started_at = created_at, lease_owner, status, attempts FROM {_schema}.jobs",
            r => (Queue: r.GetString(0), HandedOver: r.GetBoolean(1), Owner: r.GetString(2), Status: r.GetInt16(3), Attempts: r.GetInt32(4)));
        Assert.Equal(sent.Count, jobs.Count(j => j.Queue == "inbox.ingest"));
        Assert.Equal(sent.Count, jobs.Count(j => j.Queue == "inbox.dispatch"));
        Assert.All(jobs, j => Assert.Equal((true, "host-1", (short)2, 1), (j.HandedOver, j.Owner, j.Status, j.Attempts)));

        // Jobs leased at insert wake no one (no other process could claim them): neither the captures nor the ingests sent
        // a NOTIFY. A listener gets notifications in the order they were sent: once a marker sent after every job finished
        // is in, all are. (The enqueue-only host test shows the NOTIFY sent when jobs wait for a claim.)
        await server.QueryAsync($"SELECT pg_notify('{_schema}_jobs', 'test/end')", r => r.GetValue(0));
        await Eventually.TrueAsync(() => notifications.Queues.Contains("end"), "the marker NOTIFY");
        Assert.Equal(["end"], notifications.Queues);
    }

    /// <summary>
    /// Listens on the store's channel from a connection of its own and keeps the queue named by each NOTIFY payload. Its
    /// LISTEN is spelled in lower case, so the hosts' own LISTEN connections can still be counted by their statement text.
    /// </summary>
    private sealed class NotificationRecorder : IAsyncDisposable
    {
        private readonly Npgsql.NpgsqlConnection _connection;
        private readonly CancellationTokenSource _stop = new();
        private readonly System.Collections.Concurrent.ConcurrentQueue<string> _queues = new();
        private Task _loop = Task.CompletedTask;

        private NotificationRecorder(Npgsql.NpgsqlConnection connection) => _connection = connection;

        /// <summary>The queues notified so far (a payload is the sender, '/', and the queue).</summary>
        public List<string> Queues => [.. _queues];

        public static async Task<NotificationRecorder> StartAsync(string connectionString, string channel)
        {
            var connection = new Npgsql.NpgsqlConnection(connectionString);
            await connection.OpenAsync();
            var recorder = new NotificationRecorder(connection);
            connection.Notification += (_, e) => recorder._queues.Enqueue(e.Payload[(e.Payload.IndexOf('/', StringComparison.Ordinal) + 1)..]);
            await using (var listen = new Npgsql.NpgsqlCommand($"listen \"{channel}\"", connection)) await listen.ExecuteNonQueryAsync();
            recorder._loop = Task.Run(async () =>
            {
                try
                {
                    while (true) await connection.WaitAsync(recorder._stop.Token);
                }
                catch (OperationCanceledException)
                {
                }
            });
            return recorder;
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            await _loop;
            await _connection.DisposeAsync();
            _stop.Dispose();
        }
    }

    [Fact]
    public async Task An_ingest_leases_no_more_drain_jobs_than_its_dispatch_worker_can_start_and_the_others_are_claimed()
    {
        // 40 chats' webhooks captured by a host that processes nothing, then ingested in one batch by a worker host whose
        // dispatch worker can start 1 + 16 (prefetch) jobs: it leases at most 17 drains, the others wait for a claim.
        var (web, _) = await StartHostAsync("web", processJobs: false);
        var chats = Enumerable.Range(1, 40).Select(i => $"55119999{i:D5}").ToArray();
        var sent = await CaptureAsync(web, chats, perChat: 1);
        var (_, seen) = await StartHostAsync("worker", processJobs: true, o => o.DispatchConcurrency = 1);

        await Eventually.TrueAsync(() => seen.Seen.Count >= sent.Count, $"the worker host to handle {sent.Count} events");
        AssertDeliveredOnceInChatOrder(sent, seen);
        await WaitForJobsToFinishAsync();
        var drains = await server.QueryAsync($"SELECT started_at = created_at FROM {_schema}.jobs WHERE queue = 'inbox.dispatch' AND status = 2", r => r.GetBoolean(0));
        Assert.Equal(40, drains.Count);
        Assert.InRange(drains.Count(handedOver => handedOver), 1, 17);
    }
}
