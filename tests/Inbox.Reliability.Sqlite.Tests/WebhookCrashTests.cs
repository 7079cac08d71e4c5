using Microsoft.Data.Sqlite;
using Xunit.Abstractions;

namespace Inbox.Reliability.Sqlite.Tests;

/// <summary>
/// Webhook crash test on SQLite (<see cref="WebhookCrashScenario"/>): 10,000 Z-API text webhooks (100 chats) over HTTP to
/// a child host killed with SIGKILL three times. Set INBOX_CRASH_SEED to replay the kill points of a run (the seed is printed).
/// </summary>
[Collection(CrashTestsCollection.Name)]
public sealed class WebhookCrashTests(ITestOutputHelper output)
{
    private const int Total = 10_000;
    private const int Chats = 100;

    [Fact]
    public async Task Webhooks_over_http_survive_kill_9_three_times_one_raw_row_each_every_message_delivered_in_chat_order()
    {
        var scenario = new WebhookCrashScenario(output, Total, Chats);

        // Kills 1 and 2 while the clients send (10% to 80% answered), so they land on requests in flight; ingest and
        // dispatch lag capture by far, so kill 3 comes while the pipeline works through the backlog (20% to 70% delivered).
        var points = scenario.KillPoints(Total / 10, Total * 8 / 10, Total * 2 / 10, Total * 7 / 10);
        var database = Path.Combine(scenario.Folder, "inbox.db");
        var passed = false;
        try
        {
            await scenario.RunAsync(["--storage", "sqlite", "--connection", $"Data Source={database}"], points, () => Task.FromResult(RawCounts(database)));

            // Exactly one raw row per body: no body stored twice, each answered id holds the body sent, all ingested.
            var idOf = scenario.AssertOneRawIdPerBody();
            var rows = ReadRaw(database);
            var rawStatuses = rows.Values.GroupBy(r => r.Status).ToDictionary(g => g.Key, g => g.Count());
            output.WriteLine($"raw rows {rows.Count}, statuses {string.Join(", ", rawStatuses.Select(s => $"{s.Key}: {s.Value}"))}, duplicates counted {rows.Values.Sum(r => r.Duplicates)}");
            Assert.Equal(Total, rows.Count);
            Assert.Equal(Total, rows.Values.Select(r => Convert.ToHexString(r.Sha256)).Distinct().Count());
            foreach (var (n, id) in idOf)
            {
                var message = scenario.Messages[n];
                Assert.True(rows.TryGetValue(id, out var row), $"{message.MessageId} was answered 2xx with raw id {id}, which has no row.");
                Assert.True(row.Sha256.AsSpan().SequenceEqual(message.Sha256), $"Raw row {id} does not hold the body of {message.MessageId} answered with it.");
            }

            Assert.True(rows.Values.All(r => r.Status == 1), "Not every raw webhook was ingested (status 1).");
            scenario.AssertHandlerLog();
            output.WriteLine($"passed in {scenario.Clock.Elapsed.TotalSeconds:F1} s");
            passed = true;
        }
        finally
        {
            scenario.CleanUp(passed);
        }
    }

    private static SqliteConnection Open(string database)
    {
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = database, Pooling = false, DefaultTimeout = 30 }.ToString());
        connection.Open();
        return connection;
    }

    /// <summary>Raw webhook rows, and how many are still waiting to be ingested (status 0).</summary>
    private static (long Raw, long Captured) RawCounts(string database)
    {
        if (!File.Exists(database)) return (0, 0);
        using var connection = Open(database);
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT COUNT(*), COALESCE(SUM(CASE WHEN status = 0 THEN 1 ELSE 0 END), 0) FROM inbox_raw_webhooks";
        using var reader = command.ExecuteReader();
        reader.Read();
        return (reader.GetInt64(0), reader.GetInt64(1));
    }

    private static Dictionary<long, (byte[] Sha256, int Status, long Duplicates)> ReadRaw(string database)
    {
        using var connection = Open(database);
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT id, sha256, status, duplicates FROM inbox_raw_webhooks";
        using var reader = command.ExecuteReader();
        var rows = new Dictionary<long, (byte[], int, long)>();
        while (reader.Read()) rows[reader.GetInt64(0)] = ((byte[])reader.GetValue(1), reader.GetInt32(2), reader.GetInt64(3));
        return rows;
    }
}
