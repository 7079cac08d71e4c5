using System.Text;
using Inbox.Reliability.Capture;
using Inbox.Reliability.Conformance;
using Inbox.Reliability.Events;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;

namespace Inbox.Reliability.PostgreSql.Tests;

/// <summary>
/// A web tier and a worker tier on one database: a host with <c>ProcessJobs = false</c> captures webhooks and a host with
/// the default processes them, while both run.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgreSqlEnqueueOnlyHostTests(PostgresServer server) : IAsyncLifetime
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

    private async Task<(IHost Host, EventRecorder Recorder)> StartHostAsync(string name, bool processJobs)
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
            .AddEventHandler<RecordingEventHandler>();
        var host = builder.Build();
        _hosts.Add(host);
        await host.StartAsync();
        return (host, recorder);
    }

    private static string Text(string messageId, string chat) =>
        $$$"""{"type":"ReceivedCallback","instanceId":"I1","messageId":"{{{messageId}}}","phone":"{{{chat}}}","fromMe":false,"momment":1767290000000,"status":"RECEIVED","senderName":"Ana","isGroup":false,"text":{"message":"text of {{{messageId}}}"}}""";

    [Fact]
    public async Task Webhooks_captured_on_an_enqueue_only_host_are_processed_by_the_worker_host_in_chat_order()
    {
        var (web, webSeen) = await StartHostAsync("web", processJobs: false);
        var (_, workerSeen) = await StartHostAsync("worker", processJobs: true);
        var capture = web.Services.GetRequiredService<IInboxCapture>();

        const int perChat = 20;
        string[] chats = ["5511999990001", "5511999990002", "5511999990003"];
        var sent = new List<(string Chat, string Id)>();
        for (var i = 0; i < perChat; i++)
        {
            foreach (var chat in chats)
            {
                var id = $"M-{chat[^1]}-{i:D3}";
                sent.Add((chat, id));
                var result = await capture.CaptureAsync(new WebhookRequest("zapi", "inst-1", Encoding.UTF8.GetBytes(Text(id, chat)), DateTimeOffset.UtcNow)
                {
                    Query = new Dictionary<string, string> { ["secret"] = Secret },
                });
                Assert.Equal(CaptureStatus.Stored, result.Status);
            }
        }

        await Eventually.TrueAsync(() => workerSeen.Seen.Count >= sent.Count, $"the worker host to handle {sent.Count} events");

        // Every event once, each chat in the order it was sent, and none of it on the web host.
        Assert.Equal(sent.Count, workerSeen.Seen.Count);
        foreach (var chat in chats)
        {
            Assert.Equal(sent.Where(s => s.Chat == chat).Select(s => s.Id), workerSeen.Seen.Where(c => c.Event.ChatId == chat).Select(c => c.Event.ExternalId));
        }

        Assert.Empty(webSeen.Seen);

        // Every job ran on the worker host (a finished job keeps its last worker), and only the worker host listens for wake-ups.
        await using var connection = await server.OpenAsync();
        await using (var command = new NpgsqlCommand($"SELECT lease_owner, count(*) FROM {_schema}.jobs GROUP BY lease_owner", connection))
        await using (var reader = await command.ExecuteReaderAsync())
        {
            var owners = new Dictionary<string, long>();
            while (await reader.ReadAsync()) owners[reader.IsDBNull(0) ? "(none)" : reader.GetString(0)] = reader.GetInt64(1);
            Assert.Equal(["worker"], owners.Keys);
        }

        await using (var command = new NpgsqlCommand("SELECT count(*) FROM pg_stat_activity WHERE query = $1", connection))
        {
            command.Parameters.AddWithValue($"LISTEN \"{_schema}_jobs\"");
            Assert.Equal(1L, (long)(await command.ExecuteScalarAsync())!);
        }
    }
}
