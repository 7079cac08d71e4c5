using Inbox.Reliability.Sqlite.Tests;
using Npgsql;
using Xunit.Abstractions;

namespace Inbox.Reliability.PostgreSql.Tests;

/// <summary>
/// The webhook crash test on PostgreSQL (<see cref="WebhookCrashScenario"/>), smaller than the SQLite one: 4,000 Z-API
/// text webhooks (100 chats) over HTTP to a child host on PostgreSQL killed with SIGKILL three times (twice while the
/// clients send, so group commits of captures are cut mid-way, once while the pipeline works through the backlog, so
/// ingest and dispatch transactions are). Set INBOX_CRASH_SEED to replay the kill points of a run (the seed is printed).
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgreSqlWebhookCrashTests(PostgresServer server, ITestOutputHelper output)
{
    private const int Total = 4_000;
    private const int Chats = 100;

    [Fact]
    public async Task Webhooks_over_http_survive_kill_9_three_times_one_raw_row_each_gap_free_sequences_every_message_delivered_in_chat_order()
    {
        var scenario = new WebhookCrashScenario(output, Total, Chats);
        var points = scenario.KillPoints(Total / 10, Total * 7 / 10, Total * 2 / 10, Total * 6 / 10);
        await using var storage = new PostgreSqlStorage(server);
        var schema = storage.Schema;
        var passed = false;
        try
        {
            await scenario.RunAsync(["--storage", "postgres", "--connection", server.ConnectionString, "--schema", schema], points, () => RawCountsAsync(schema));

            // Every 2xx for one body named the same raw row, which holds that body; one row per body, all ingested.
            var idOf = scenario.AssertOneRawIdPerBody();
            var rows = new Dictionary<long, (byte[] Sha256, int Status)>();
            await using (var connection = await server.OpenAsync())
            await using (var command = new NpgsqlCommand($"SELECT id, sha256, status FROM \"{schema}\".raw_webhooks", connection))
            await using (var reader = await command.ExecuteReaderAsync())
            {
                while (await reader.ReadAsync()) rows[reader.GetInt64(0)] = (reader.GetFieldValue<byte[]>(1), reader.GetInt16(2));
            }

            Assert.Equal(Total, rows.Count);
            foreach (var (n, id) in idOf)
            {
                var message = scenario.Messages[n];
                Assert.True(rows.TryGetValue(id, out var row) && row.Sha256.AsSpan().SequenceEqual(message.Sha256), $"{message.MessageId} was answered with raw id {id}, which does not hold its body.");
            }

            Assert.All(rows.Values, r => Assert.Equal(1, r.Status));

            // One event per message, sequence numbers 1..Total without a gap, even with ingest transactions cut by kill -9.
            await using (var connection = await server.OpenAsync())
            await using (var command = new NpgsqlCommand($"SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM \"{schema}\".events", connection))
            await using (var reader = await command.ExecuteReaderAsync())
            {
                await reader.ReadAsync();
                Assert.Equal((long)Total, reader.GetInt64(0));
                Assert.Equal((long)Total, reader.GetInt64(1));
                Assert.Equal((1L, (long)Total), (reader.GetInt64(2), reader.GetInt64(3)));
            }

            scenario.AssertHandlerLog();
            output.WriteLine($"passed in {scenario.Clock.Elapsed.TotalSeconds:F1} s");
            passed = true;
        }
        finally
        {
            scenario.CleanUp(passed);
        }
    }

    private async Task<(long Raw, long Captured)> RawCountsAsync(string schema)
    {
        await using var connection = await server.OpenAsync();
        await using var exists = new NpgsqlCommand("SELECT to_regclass($1) IS NOT NULL", connection);
        exists.Parameters.Add(new NpgsqlParameter { Value = $"\"{schema}\".raw_webhooks" });
        if (!(bool)(await exists.ExecuteScalarAsync())!) return (0, 0);
        await using var command = new NpgsqlCommand($"SELECT count(*), count(*) FILTER (WHERE status = 0) FROM \"{schema}\".raw_webhooks", connection);
        await using var reader = await command.ExecuteReaderAsync();
        await reader.ReadAsync();
        return (reader.GetInt64(0), reader.GetInt64(1));
    }
}
