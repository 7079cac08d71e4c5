using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;

namespace Inbox.Reliability.Benchmarks;

/// <summary>
/// What an idle host costs the database: the host runs with the bench handlers (queues "bench" and "lat", default
/// options) and no jobs, and the database's transactions (<c>xact_commit + xact_rollback</c> of pg_stat_database) are
/// counted over <see cref="BenchOptions.Seconds"/>. Each of the library's statements runs in its own transaction, so this
/// is its queries per second; this measure's own transaction inside the window is subtracted.
/// </summary>
/// <remarks>
/// PostgreSQL 15+ flushes a backend's counters to pg_stat_database at the end of a transaction at most once a second,
/// and otherwise when the backend has been idle for 10 s (PGSTAT_IDLE_INTERVAL); older versions go through the stats
/// collector, about twice a second. So the window opens only 3 s (settling) + 11 s (the startup's own queries flushed)
/// after the host started, and is long (20 s by default) so the counters still pending at either end, about the same
/// number, hardly matter. The reading connection forces its own flush (pg_stat_force_next_flush, PostgreSQL 15+), so
/// exactly one of its transactions falls in the window.
/// </remarks>
public static class IdleMeasure
{
    private static readonly TimeSpan Settle = TimeSpan.FromSeconds(3);
    private static readonly TimeSpan StatsFlush = TimeSpan.FromSeconds(11);

    public static async Task<JsonObject> RunAsync(BenchOptions options, IBenchStorage storage)
    {
        if (storage is not PostgreSqlBenchStorage postgres)
            throw new NotSupportedException("--measure idle counts the database's transactions in pg_stat_database: PostgreSQL only.");

        var where = await storage.PrepareAsync();
        await Console.Error.WriteLineAsync($"[bench] idle for {options.Seconds} s: {storage.Name} at {where}");

        var builder = BenchRun.CreateHostBuilder();
        builder.Services.AddSingleton(new BurnDownCounter(int.MaxValue));
        builder.Services.AddSingleton(new LatencyRecorder(1));
        var inbox = builder.Services.AddInboxReliability();
        storage.Configure(inbox);
        inbox.AddJobHandler<NoopHandler>(BenchRun.BenchQueue);
        inbox.AddJobHandler<LatencyHandler>(BenchRun.LatencyQueue);
        using var host = builder.Build();

        // The reading connection: not pooled, opened before the host starts; its own startup is flushed right away.
        var stats = new NpgsqlConnectionStringBuilder(postgres.ConnectionString) { Pooling = false, ApplicationName = "inbox-bench-idle-reader" };
        await using var connection = new NpgsqlConnection(stats.ConnectionString);
        await connection.OpenAsync();
        var forceFlush = connection.PostgreSqlVersion.Major >= 15;
        if (forceFlush) await ScalarAsync(connection, "SELECT pg_stat_force_next_flush()");

        await host.StartAsync();
        await Task.Delay(Settle + StatsFlush);

        var first = await ReadAsync(connection, forceFlush);
        var clock = Stopwatch.StartNew();
        await Task.Delay(TimeSpan.FromSeconds(options.Seconds));
        var second = await ReadAsync(connection, forceFlush);
        var window = clock.Elapsed.TotalSeconds;
        var backends = Convert.ToInt64(await ScalarAsync(connection,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"), CultureInfo.InvariantCulture);
        await host.StopAsync();

        const int own = 1; // the first read's transaction (the second one is counted after it read)
        var transactions = Math.Max(0, second - first - own);
        return new JsonObject
        {
            ["measure"] = BenchMeasures.Idle,
            ["system"] = "inbox-reliability",
            ["version"] = BenchRun.PackageVersion(),
            ["storage"] = storage.Name,
            ["queues"] = 2,
            ["seconds"] = Math.Round(window, 1),
            ["transactions"] = transactions,
            ["own_transactions_subtracted"] = own,
            ["connections"] = backends,
            ["queries_per_s"] = Math.Round(transactions / window, 2),
        };
    }

    private static async Task<long> ReadAsync(NpgsqlConnection connection, bool forceFlush)
    {
        // One statement, one transaction. pg_stat_clear_snapshot: read the shared counters now, not a cached snapshot.
        var sql = (forceFlush ? "SELECT pg_stat_force_next_flush(), " : "SELECT ") +
            "pg_stat_clear_snapshot(), (SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database())";
        await using var command = new NpgsqlCommand(sql, connection);
        await using var reader = await command.ExecuteReaderAsync();
        await reader.ReadAsync();
        return reader.GetInt64(reader.FieldCount - 1);
    }

    private static async Task<object?> ScalarAsync(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        return await command.ExecuteScalarAsync();
    }
}
