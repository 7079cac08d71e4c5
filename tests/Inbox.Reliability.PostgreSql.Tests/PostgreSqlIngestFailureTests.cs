using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Inbox.Reliability.Capture;
using Inbox.Reliability.Conformance;
using Inbox.Reliability.Events;
using Inbox.Reliability.Jobs;
using Inbox.Reliability.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;

namespace Inbox.Reliability.PostgreSql.Tests;

/// <summary>
/// Ingest when PostgreSQL fails in the middle of it: a write canceled while a batch of webhooks is being stored (what a
/// statement timeout does) must not let later webhooks' events in ahead of earlier ones (per-chat order), and a webhook
/// whose events the database refuses is marked failed with the reason while the webhooks around it are delivered.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgreSqlIngestFailureTests(PostgresServer server) : IAsyncLifetime
{
    private const string Secret = "zapi-secret";
    private readonly ManualTimeProvider _time = new();
    private readonly EventRecorder _recorder = new();
    private PostgreSqlStorage _storage = null!;
    private IHost _host = null!;

    public async Task InitializeAsync()
    {
        _storage = new PostgreSqlStorage(server);
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Services.AddLogging();
        builder.Services.AddSingleton(_recorder);
        var inbox = builder.Services.AddInboxReliability().UseTimeProvider(_time);
        _storage.Configure(inbox);
        inbox.AddZApi(o => o.WebhookSecret = Secret).AddEventHandler<RecordingEventHandler>();
        _host = builder.Build();
        await _host.StartAsync();
    }

    public async Task DisposeAsync()
    {
        var stop = _host.StopAsync();
        await Eventually.TrueAsync(() => stop.IsCompleted, "the host to stop", between: () => _time.Advance(TimeSpan.FromSeconds(1)));
        _host.Dispose();
        await _storage.DisposeAsync();
    }

    private IInboxStore Store => _host.Services.GetRequiredService<IInboxStore>();

    private static string ZApiText(string messageId, string chat, long momentMs) =>
        $$$"""{"type":"ReceivedCallback","instanceId":"I1","messageId":"{{{messageId}}}","phone":"{{{chat}}}","fromMe":false,"momment":{{{momentMs}}},"status":"RECEIVED","senderName":"Ana","isGroup":false,"text":{"message":"text of {{{messageId}}}"}}""";

    private async Task<long> CaptureAsync(string body)
    {
        var result = await _host.Services.GetRequiredService<IInboxCapture>().CaptureAsync(new WebhookRequest("zapi", "inst-1", Encoding.UTF8.GetBytes(body), _time.GetUtcNow())
        {
            Query = new Dictionary<string, string> { ["secret"] = Secret },
        });
        Assert.Equal(CaptureStatus.Stored, result.Status);
        return result.RawWebhookId!.Value;
    }

    /// <summary>The statements waiting on the instance's row lock: backend and statement start (a new statement of the same backend is another one).</summary>
    private async Task<List<(int Pid, DateTime Started)>> StatementsWaitingOnTheInstanceLock(NpgsqlConnection connection)
    {
        await using var command = new NpgsqlCommand(
            "SELECT pid, query_start FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid() AND query LIKE '%' || $1 || '%instances%'", connection);
        command.Parameters.Add(new NpgsqlParameter { Value = _storage.Schema });
        await using var reader = await command.ExecuteReaderAsync();
        var statements = new List<(int, DateTime)>();
        while (await reader.ReadAsync()) statements.Add((reader.GetInt32(0), reader.GetDateTime(1)));
        return statements;
    }

    [Fact]
    public async Task Writes_canceled_while_a_batch_is_stored_let_no_later_webhook_in_ahead_of_an_earlier_one()
    {
        // The instance's row exists once its first webhook is ingested.
        var first = await CaptureAsync(ZApiText("M000", "chat-0", 1767290000000));
        await Eventually.TrueAsync(() => !_recorder.Seen.IsEmpty, "the first webhook to be delivered", between: () => _time.Advance(TimeSpan.FromMilliseconds(200)));

        // Ingest locks the instance's row before it stores events: hold that lock, so each write of the webhooks below waits
        // on it, and cancel the waiting statement three times (as a statement_timeout would). Written one by one after a
        // failed group, the first webhooks would fail and a later one commit ahead of them.
        await using var holder = await server.OpenAsync();
        await using var transaction = await holder.BeginTransactionAsync();
        await using (var lockRow = new NpgsqlCommand($"SELECT 1 FROM \"{_storage.Schema}\".instances WHERE provider = 'zapi' AND instance = 'inst-1' FOR UPDATE", holder, transaction))
        {
            Assert.NotNull(await lockRow.ExecuteScalarAsync());
        }

        const int Webhooks = 24;
        var rawIds = new List<long> { first };
        for (var i = 1; i <= Webhooks; i++) rawIds.Add(await CaptureAsync(ZApiText("M" + i.ToString("D3", CultureInfo.InvariantCulture), "chat-" + (i % 4), 1767290000000 + i)));

        await using var observer = await server.OpenAsync();
        var canceled = new List<(int Pid, DateTime Started)>();
        while (canceled.Count < 3)
        {
            var waiting = new List<(int Pid, DateTime Started)>();
            await Eventually.TrueAsync(async () => (waiting = (await StatementsWaitingOnTheInstanceLock(observer)).Except(canceled).ToList()).Count > 0,
                $"an ingest write to wait on the instance's lock (cancel {canceled.Count + 1})", between: () => _time.Advance(TimeSpan.FromSeconds(1)));
            var statement = waiting[0];
            await using var cancel = new NpgsqlCommand($"SELECT pg_cancel_backend({statement.Pid})", observer);
            await cancel.ExecuteScalarAsync();
            canceled.Add(statement);
            await Eventually.TrueAsync(async () => !(await StatementsWaitingOnTheInstanceLock(observer)).Contains(statement), "the canceled statement to end");
        }

        await transaction.RollbackAsync();
        await Eventually.TrueAsync(() => _recorder.Seen.Count >= Webhooks + 1, "every webhook to be delivered", between: () => _time.Advance(TimeSpan.FromSeconds(1)));

        // Arrival order is the raw rows' order: the events' sequence numbers follow it exactly, and each chat saw its
        // messages in that order, once each.
        await using var query = new NpgsqlCommand($"SELECT e.external_id FROM \"{_storage.Schema}\".events e ORDER BY e.seq", observer);
        var bySequence = new List<string>();
        await using (var reader = await query.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync()) bySequence.Add(reader.GetString(0));
        }

        Assert.Equal(Enumerable.Range(0, Webhooks + 1).Select(i => "M" + i.ToString("D3", CultureInfo.InvariantCulture)), bySequence);
        foreach (var chat in _recorder.Seen.GroupBy(s => s.Event.ChatId))
        {
            var seen = chat.Select(s => s.Event.ExternalId).ToList();
            Assert.Equal(seen.Order(StringComparer.Ordinal), seen);
            Assert.Equal(seen.Distinct().Count(), seen.Count);
        }

        foreach (var id in rawIds) Assert.Equal(RawWebhookStatus.Ingested, (await Store.GetRawWebhookAsync(id))!.Status);
    }

    [Fact]
    public async Task A_webhook_whose_events_PostgreSQL_refuses_is_marked_failed_with_the_reason_and_the_others_are_delivered_in_order()
    {
        // A message id too long for the dedupe key's index: PostgreSQL refuses that event (54000, index row too large), and
        // writing it again fails the same way.
        var tooLong = Convert.ToHexString(RandomNumberGenerator.GetBytes(6000));
        var ids = new List<long>();
        for (var i = 0; i < 5; i++)
        {
            var body = i == 2 ? ZApiText(tooLong, "chat-1", 1767290000000 + i) : ZApiText("M" + i, "chat-1", 1767290000000 + i);
            ids.Add(await CaptureAsync(body));
        }

        await Eventually.TrueAsync(() => _recorder.Seen.Count >= 4, "the four other webhooks to be delivered", between: () => _time.Advance(TimeSpan.FromMilliseconds(200)));
        await Eventually.TrueAsync(async () => (await Store.GetRawWebhookAsync(ids[2]))!.Status == RawWebhookStatus.Failed, "the refused webhook to be marked failed",
            between: () => _time.Advance(TimeSpan.FromMilliseconds(200)));

        Assert.Equal(["M0", "M1", "M3", "M4"], _recorder.Seen.Select(s => s.Event.ExternalId));
        var refused = (await Store.GetRawWebhookAsync(ids[2]))!;
        Assert.Contains("54000", refused.Error, StringComparison.Ordinal);
        Assert.DoesNotContain(tooLong[..64], refused.Error, StringComparison.Ordinal);
        foreach (var i in new[] { 0, 1, 3, 4 }) Assert.Equal(RawWebhookStatus.Ingested, (await Store.GetRawWebhookAsync(ids[i]))!.Status);

        // No ingest job is left failing or retrying over it: all of them complete.
        var queue = _host.Services.GetRequiredService<IJobQueue>();
        await Eventually.TrueAsync(async () => (await queue.GetStatsAsync()).Single(s => s.Queue == "inbox.ingest") is { Pending: 0, Processing: 0, Failed: 0, Completed: > 0 },
            "every ingest job to complete", between: () => _time.Advance(TimeSpan.FromMilliseconds(200)));
    }
}
