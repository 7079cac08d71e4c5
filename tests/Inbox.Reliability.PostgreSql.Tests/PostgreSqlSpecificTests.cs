using System.Collections.Concurrent;
using System.Data;
using System.Globalization;
using Inbox.Reliability.Conformance;
using Inbox.Reliability.Jobs;
using Inbox.Reliability.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Inbox.Reliability.PostgreSql.Tests;

/// <summary>What only PostgreSQL does: concurrent migrations, transactional enqueue, LISTEN/NOTIFY, several processes on one schema.</summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgreSqlSpecificTests(PostgresServer server) : IAsyncLifetime
{
    private readonly List<IAsyncDisposable> _cleanup = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        for (var i = _cleanup.Count - 1; i >= 0; i--) await _cleanup[i].DisposeAsync();
    }

    private PostgreSqlStorage NewStorage()
    {
        var storage = new PostgreSqlStorage(server);
        _cleanup.Add(storage);
        return storage;
    }

    /// <summary>A separate "process": its own service provider, store, connection pool and notification sender id.</summary>
    private ServiceProvider NewProvider(string schema, TimeProvider? time = null, bool synchronousClaimsAndOutcomes = false)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        var builder = services.AddInboxReliability();
        if (time is not null) builder.UseTimeProvider(time);
        builder.UsePostgreSql(server.ConnectionString, o =>
        {
            o.Schema = schema;
            o.SynchronousClaimsAndOutcomes = synchronousClaimsAndOutcomes;
        });
        var provider = services.BuildServiceProvider();
        _cleanup.Add(provider);
        return provider;
    }

    private async Task<long> Scalar(string sql)
    {
        await using var connection = await server.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return Convert.ToInt64(await command.ExecuteScalarAsync());
    }

    private Task WaitForListener(string schema) =>
        Eventually.TrueAsync(async () => await Scalar($"SELECT count(*) FROM pg_stat_activity WHERE query = 'LISTEN \"{schema}_jobs\"'") > 0, "the LISTEN connection");

    [Fact]
    public async Task Four_hosts_migrating_one_fresh_schema_at_once_apply_each_migration_once()
    {
        for (var round = 0; round < 3; round++)
        {
            var storage = NewStorage();
            var stores = Enumerable.Range(0, 4).Select(_ => NewProvider(storage.Schema).GetRequiredService<IJobStore>()).ToList();
            using var start = new Barrier(4);
            await Task.WhenAll(stores.Select(store => Task.Run(async () =>
            {
                start.SignalAndWait();
                await store.MigrateAsync();
            })));

            Assert.Equal(PostgreSqlMigrations.All.Length, await Scalar($"SELECT count(*) FROM \"{storage.Schema}\".migrations"));
            var id = (await stores[1].EnqueueAsync([new NewJob("q", "{}", "k", DateTimeOffset.UtcNow, null, 3, 0)]))[0].Id;
            Assert.Equal(id, Assert.Single(await stores[3].ClaimAsync("q", 10, "w", TimeSpan.FromMinutes(1))).Lease.JobId);
            await stores[2].MigrateAsync(); // and again later: nothing to do
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Claims_and_completions_planned_on_an_empty_table_still_probe_indexes_once_it_is_full(bool synchronous)
    {
        // A connection's prepared statements keep their generic plan. Build it while the jobs table is empty (a new
        // schema), as the store's first claims and completions do, then fill the table: the cached plans must still read
        // one index entry per job, not the whole table.
        var storage = NewStorage();
        await NewProvider(storage.Schema).GetRequiredService<IJobStore>().MigrateAsync();
        var sql = new Sql(storage.Schema);
        await using var connection = await server.OpenAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        async Task<string> Run(string text)
        {
            await using var command = new NpgsqlCommand(text, connection, transaction);
            var lines = new List<string>();
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync()) lines.Add(reader.GetValue(0)?.ToString() ?? "");
            return string.Join('\n', lines);
        }

        await Run("SET LOCAL plan_cache_mode = force_generic_plan");
        await Run(synchronous ? sql.IndexPlans : sql.IndexPlansAsynchronousCommit);
        await Run($"PREPARE finish_plan(bigint[], bigint[], integer[], text[], timestamptz[], timestamptz) AS {sql.Finish}");
        await Run($"PREPARE claim_plan(text, timestamptz, integer, text, timestamptz) AS {sql.Claim}");
        const string finish = "EXPLAIN EXECUTE finish_plan('{1,2}', '{1,1}', '{0,0}', '{NULL,NULL}', '{2026-01-01,2026-01-01}', '2026-01-01')";
        const string claim = "EXPLAIN EXECUTE claim_plan('q', '2026-01-01', 100, 'w', '2026-01-02')";
        await Run(finish);
        await Run(claim);

        await Run($"""
            INSERT INTO {sql.S}.jobs (queue, key, is_head, payload, status, priority, attempts, max_attempts, run_at, created_at, lease_token, lease_expires_at)
            SELECT 'q', NULL, true, '[]', i % 2, 0, 1, 3, '2025-12-31', '2025-12-31', 1, CASE WHEN i % 2 = 1 THEN timestamptz '2026-01-02' END
            FROM generate_series(1, 20000) AS i
            """);
        await Run($"ANALYZE {sql.S}.jobs"); // fresh statistics do not replan a prepared statement's generic plan

        foreach (var plan in new[] { await Run(finish), await Run(claim) })
        {
            Assert.DoesNotContain("Seq Scan", plan, StringComparison.Ordinal);
            Assert.DoesNotContain("Hash Join", plan, StringComparison.Ordinal);
            Assert.DoesNotContain("Bitmap", plan, StringComparison.Ordinal);
            Assert.Contains("Index Scan", plan, StringComparison.Ordinal);
        }
    }

    [Fact]
    public Task A_schema_from_before_migration_6_indexes_only_pending_keyed_jobs_and_keys_stay_fifo_behind_a_processing_head() =>
        KeysStayFifoAcrossMigrationAsync(
            6,
            s => $"DROP INDEX {s}.ix_jobs_key_pending; CREATE INDEX ix_jobs_key ON {s}.jobs (queue, key, id) WHERE status IN (0, 1) AND key IS NOT NULL;",
            async schema =>
            {
                Assert.Equal(0, await Scalar($"SELECT count(*) FROM pg_indexes WHERE schemaname = '{schema}' AND indexname = 'ix_jobs_key'"));
                Assert.Equal(1, await Scalar($"SELECT count(*) FROM pg_indexes WHERE schemaname = '{schema}' AND indexname = 'ix_jobs_key_pending' AND indexdef LIKE '%WHERE ((status = 0) AND (key IS NOT NULL))'"));
            });

    [Fact]
    public Task A_schema_from_before_migration_7_loses_the_unique_check_on_key_heads_and_keys_stay_fifo() =>
        KeysStayFifoAcrossMigrationAsync(
            7,
            s => $"DROP INDEX {s}.ix_jobs_key_head; CREATE UNIQUE INDEX ux_jobs_key_head ON {s}.jobs (queue, key) WHERE is_head AND status IN (0, 1) AND key IS NOT NULL;",
            async schema =>
            {
                Assert.Equal(0, await Scalar($"SELECT count(*) FROM pg_indexes WHERE schemaname = '{schema}' AND indexname = 'ux_jobs_key_head'"));
                Assert.Equal(1, await Scalar($"SELECT count(*) FROM pg_indexes WHERE schemaname = '{schema}' AND indexname = 'ix_jobs_key_head' AND indexdef NOT LIKE '%UNIQUE%' AND indexdef LIKE '%WHERE (is_head AND (status = ANY%'"));
            });

    /// <summary>
    /// A schema as the version before migration <paramref name="version"/> left it (<paramref name="undo"/>, given the quoted
    /// schema, run on a migrated one, and the migration's row deleted), with a key's first job processing; the current
    /// version migrates it, <paramref name="check"/> looks at the result, and the key stays FIFO behind its processing head.
    /// </summary>
    private async Task KeysStayFifoAcrossMigrationAsync(int version, Func<string, string> undo, Func<string, Task> check)
    {
        var storage = NewStorage();
        var store = NewProvider(storage.Schema).GetRequiredService<IJobStore>();
        await store.MigrateAsync();
        var s = $"\"{storage.Schema}\"";
        await Scalar($"{undo(s)} DELETE FROM {s}.migrations WHERE version = {version.ToString(CultureInfo.InvariantCulture)}; SELECT 1");
        var first = (await store.EnqueueAsync([new NewJob("q", "1", "k", DateTimeOffset.UtcNow, null, 3, 0)]))[0].Id;
        var claimed = Assert.Single(await store.ClaimAsync("q", 10, "w", TimeSpan.FromMinutes(1)));

        await NewProvider(storage.Schema).GetRequiredService<IJobStore>().MigrateAsync();
        await check(storage.Schema);

        // The key's only live job is processing: a new job of the key waits for it, then runs, then the next.
        var second = (await store.EnqueueAsync([new NewJob("q", "2", "k", DateTimeOffset.UtcNow, null, 3, 0)]))[0].Id;
        var third = (await store.EnqueueAsync([new NewJob("q", "3", "k", DateTimeOffset.UtcNow, null, 3, 0)]))[0].Id;
        Assert.Empty(await store.ClaimAsync("q", 10, "w", TimeSpan.FromMinutes(1)));
        Assert.True(await store.FinishAsync(claimed.Lease, JobOutcome.Completed));
        Assert.Equal(first, claimed.Lease.JobId);
        var next = Assert.Single(await store.ClaimAsync("q", 10, "w", TimeSpan.FromMinutes(1)));
        Assert.Equal(second, next.Lease.JobId);
        Assert.True(await store.FinishAsync(next.Lease, JobOutcome.Completed));
        Assert.Equal(third, Assert.Single(await store.ClaimAsync("q", 10, "w", TimeSpan.FromMinutes(1))).Lease.JobId);
    }

    [Fact]
    public async Task Names_and_keys_compare_byte_by_byte_whatever_the_databases_locale()
    {
        var storage = NewStorage();
        await NewProvider(storage.Schema).GetRequiredService<IJobStore>().MigrateAsync();
        var identifiers = new[]
        {
            ("jobs", "queue"), ("jobs", "key"), ("jobs", "dedupe_key"), ("raw_webhooks", "provider"), ("raw_webhooks", "instance"),
            ("events", "provider"), ("events", "instance"), ("events", "dedupe_key"), ("events", "chat_id"), ("instances", "provider"), ("instances", "instance"),
        };
        foreach (var (table, column) in identifiers)
        {
            Assert.True(1 == await Scalar($"SELECT count(*) FROM information_schema.columns WHERE table_schema = '{storage.Schema}' AND table_name = '{table}' AND column_name = '{column}' AND collation_name = 'C'"),
                $"{table}.{column} is not in collation C");
        }

        // Every index over them compares the same way (rebuilt with the column's collation).
        Assert.Equal(0, await Scalar($"""
            SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            CROSS JOIN LATERAL unnest(i.indcollation::oid[]) AS k(coll)
            WHERE n.nspname = '{storage.Schema}' AND k.coll <> 0 AND k.coll <> (SELECT oid FROM pg_collation WHERE collname = 'C' AND collnamespace = 'pg_catalog'::regnamespace)
            """));
    }

    [Fact]
    public void The_dispatch_queue_runs_32_chats_at_once_on_postgresql_unless_the_host_sets_it_whatever_the_call_order()
    {
        static int Dispatch(Action<IInboxReliabilityBuilder> build)
        {
            var services = new ServiceCollection();
            build(services.AddInboxReliability());
            // The queues' registrations are the core's own (internal) objects: read their Queue and Options by name.
            var dispatch = services.Select(d => d.ImplementationInstance)
                .Single(r => r?.GetType().Name == "JobHandlerRegistration" && (string?)r.GetType().GetProperty("Queue")!.GetValue(r) == Capture.InboxQueues.Dispatch)!;
            return ((JobHandlerOptions)dispatch.GetType().GetProperty("Options")!.GetValue(dispatch)!).Concurrency;
        }

        const string Connection = "Host=127.0.0.1;Username=x";
        Assert.Equal(16, Dispatch(b => b.AddWebhookPipeline()));
        Assert.Equal(32, Dispatch(b => b.UsePostgreSql(Connection).AddWebhookPipeline()));
        Assert.Equal(32, Dispatch(b => b.AddWebhookPipeline().UsePostgreSql(Connection)));
        Assert.Equal(8, Dispatch(b => b.AddWebhookPipeline(o => o.DispatchConcurrency = 8).UsePostgreSql(Connection)));
        Assert.Equal(8, Dispatch(b => b.UsePostgreSql(Connection).AddWebhookPipeline(o => o.DispatchConcurrency = 8)));
    }

    [Fact]
    public async Task Webhook_bodies_are_compressed_with_lz4_when_the_server_has_it_and_events_carry_no_unread_index()
    {
        var storage = NewStorage();
        await NewProvider(storage.Schema).GetRequiredService<IJobStore>().MigrateAsync();
        var lz4 = 1 == await Scalar("SELECT count(*) FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)");
        foreach (var table in new[] { "events", "raw_webhooks" })
        {
            var method = await Scalar($"SELECT count(*) FROM pg_attribute WHERE attrelid = '\"{storage.Schema}\".{table}'::regclass AND attname = 'body' AND attcompression = 'l'");
            Assert.True(method == (lz4 ? 1 : 0), $"{table}.body: lz4 {(lz4 ? "expected" : "not available on this server")}, found {method}");
        }

        // What the benchmark's webhooks look like after ingest: a body over PostgreSQL's 2 KB threshold is stored compressed.
        if (lz4)
        {
            await using var connection = await server.OpenAsync();
            await using var insert = new NpgsqlCommand($"""
                INSERT INTO "{storage.Schema}".events (provider, instance, seq, kind, external_id, dedupe_key, from_me, occurred_at, message_type, body, raw_id, created_at)
                VALUES ('zapi', 'i', 1, 0, 'm', 'zapi|i|m', false, now(), 0, repeat('<text>abc</text>', 400), 1, now())
                """, connection);
            await insert.ExecuteNonQueryAsync();
            await using var stored = new NpgsqlCommand($"SELECT pg_column_compression(body) FROM \"{storage.Schema}\".events", connection);
            Assert.Equal("lz4", (string?)await stored.ExecuteScalarAsync());
        }

        Assert.Equal(0, await Scalar($"SELECT count(*) FROM pg_indexes WHERE schemaname = '{storage.Schema}' AND indexname = 'ix_events_chat'"));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Claims_and_outcomes_behave_the_same_whether_or_not_they_wait_for_the_flush(bool synchronous)
    {
        var storage = NewStorage();
        var store = NewProvider(storage.Schema, synchronousClaimsAndOutcomes: synchronous).GetRequiredService<IJobStore>();
        await store.MigrateAsync();
        var now = DateTimeOffset.UtcNow;
        var ids = (await store.EnqueueAsync(
        [
            new NewJob("q", "a1", "A", now, null, 3, 0), new NewJob("q", "a2", "A", now, null, 3, 0),
            new NewJob("q", "b1", "B", now, null, 3, 0), new NewJob("q", "u1", null, now, null, 3, 0),
        ])).Select(r => r.Id).ToArray();

        // Only each key's head and the unkeyed job are claimable; outcomes of keyed and unkeyed jobs in one group.
        var claimed = await store.ClaimAsync("q", 10, "w", TimeSpan.FromMinutes(1));
        Assert.Equal([ids[0], ids[2], ids[3]], claimed.Select(c => c.Lease.JobId).Order().ToArray());
        var byId = claimed.ToDictionary(c => c.Lease.JobId);
        var outcomes = await Task.WhenAll(
            store.FinishAsync(byId[ids[0]].Lease, JobOutcome.Completed),
            store.FinishAsync(byId[ids[2]].Lease, new JobOutcome(JobOutcomeKind.Retry, "later", now.AddHours(1))),
            store.FinishAsync(byId[ids[3]].Lease, JobOutcome.Completed));
        Assert.All(outcomes, Assert.True);
        Assert.False(await store.FinishAsync(byId[ids[3]].Lease, JobOutcome.Completed)); // the fencing token still holds

        Assert.Equal(JobStatus.Completed, (await store.GetJobAsync(ids[0]))!.Status);
        Assert.Equal((JobStatus.Pending, "later"), ((await store.GetJobAsync(ids[2]))!.Status, (await store.GetJobAsync(ids[2]))!.LastError));
        Assert.Equal([ids[1]], (await store.ClaimAsync("q", 10, "w", TimeSpan.FromMinutes(1))).Select(c => c.Lease.JobId).ToArray()); // A's next; B waits to retry
    }

    [Fact]
    public async Task Startup_lists_every_postgresql_configuration_problem()
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Services.AddInboxReliability().UsePostgreSql("", o =>
        {
            o.Schema = "bad-name; DROP";
            o.BackstopPollInterval = TimeSpan.Zero;
        });
        using var host = builder.Build();
        var error = await Assert.ThrowsAsync<InboxConfigurationException>(() => host.StartAsync());
        Assert.Equal(3, error.Errors.Count);
        Assert.Contains("connection string is required", error.Message, StringComparison.Ordinal);
        Assert.Contains("Schema", error.Message, StringComparison.Ordinal);
        Assert.Contains("BackstopPollInterval", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_job_enqueued_in_the_hosts_transaction_exists_only_if_it_commits_and_the_worker_runs_it()
    {
        var storage = NewStorage();
        var handled = new ConcurrentQueue<string>();
        var host = EngineHarness.Build(storage, (job, _) => { handled.Enqueue(job.Payload); return Task.CompletedTask; }, o =>
        {
            // Only the NOTIFY sent at commit can start the job: the clock never moves and polls are an hour apart.
            o.MinPollInterval = TimeSpan.FromHours(1);
            o.MaxPollInterval = TimeSpan.FromHours(1);
        });
        _cleanup.Add(host);
        await host.StartAsync();
        await WaitForListener(storage.Schema);
        await using (var setup = await server.OpenAsync())
        {
            await using var create = new NpgsqlCommand($"CREATE TABLE \"{storage.Schema}\".orders (id integer PRIMARY KEY)", setup);
            await create.ExecuteNonQueryAsync();
        }

        async Task<long> SubmitOrder(int order, bool commit)
        {
            await using var connection = await server.OpenAsync();
            await using var transaction = await connection.BeginTransactionAsync();
            await using (var insert = new NpgsqlCommand($"INSERT INTO \"{storage.Schema}\".orders (id) VALUES ({order})", connection, transaction))
            {
                await insert.ExecuteNonQueryAsync();
            }

            var result = await host.Queue.EnqueueAsync(new JobRequest(EngineHarness.QueueName, $"\"order-{order}\"") { Key = "customer-1" }, transaction);
            Assert.False(result.Duplicate);
            if (commit) await transaction.CommitAsync();
            else await transaction.RollbackAsync();
            return result.Id;
        }

        var rolledBack = await SubmitOrder(1, commit: false);
        Assert.Null(await host.Queue.GetAsync(rolledBack));
        Assert.Equal(0, await Scalar($"SELECT count(*) FROM \"{storage.Schema}\".orders"));

        var committed = await SubmitOrder(2, commit: true);
        await host.WaitForStatus(committed, JobStatus.Completed);
        Assert.Equal(["\"order-2\""], handled);
        Assert.Equal(1, await Scalar($"SELECT count(*) FROM \"{storage.Schema}\".jobs"));

        // A batch in one transaction keeps its order within the key.
        await using (var connection = await server.OpenAsync())
        {
            await using var transaction = await connection.BeginTransactionAsync();
            var batch = await host.Queue.EnqueueBatchAsync(
                [new JobRequest(EngineHarness.QueueName, "\"a\"") { Key = "customer-2" }, new JobRequest(EngineHarness.QueueName, "\"b\"") { Key = "customer-2" }], transaction);
            await transaction.CommitAsync();
            foreach (var result in batch) await host.WaitForStatus(result.Id, JobStatus.Completed);
        }

        Assert.Equal(["\"order-2\"", "\"a\"", "\"b\""], handled);

        // Per-key order needs READ COMMITTED: other isolation levels are refused before anything is written.
        await using (var connection = await server.OpenAsync())
        {
            await using var transaction = await connection.BeginTransactionAsync(IsolationLevel.RepeatableRead);
            await Assert.ThrowsAsync<ArgumentException>(() => host.Queue.EnqueueAsync(new JobRequest(EngineHarness.QueueName, "{}"), transaction));
        }
    }

    [Fact]
    public async Task An_enqueue_in_another_process_notifies_the_listener_and_its_own_are_not_echoed()
    {
        var storage = NewStorage();
        var producer = NewProvider(storage.Schema);
        var consumer = NewProvider(storage.Schema);
        var producerStore = producer.GetRequiredService<IJobStore>();
        await producerStore.MigrateAsync();
        var woken = new ConcurrentQueue<string>();
        using var stop = new CancellationTokenSource();
        var listening = ((IJobWakeupSource)consumer.GetRequiredService<IJobStore>()).ListenAsync(woken.Enqueue, stop.Token);
        await WaitForListener(storage.Schema);

        await consumer.GetRequiredService<IJobQueue>().EnqueueAsync(new JobRequest("mine", "{}"));
        await producer.GetRequiredService<IJobQueue>().EnqueueBatchAsync(
            Enumerable.Range(0, 50).Select(i => new JobRequest(i % 2 == 0 ? "even" : "odd", "{}")).ToList());
        await Eventually.TrueAsync(() => woken.Contains("even") && woken.Contains("odd"), "both queues to be notified");

        // One notification per queue per commit, never one per job; and none for the consumer's own enqueue.
        Assert.Equal(2, woken.Count);
        Assert.DoesNotContain("mine", woken);
        await stop.CancelAsync();
        await listening;
    }

    [Fact]
    public async Task Wake_ups_asked_for_while_one_is_being_sent_all_reach_the_listener()
    {
        var storage = NewStorage();
        var producer = NewProvider(storage.Schema);
        var consumer = NewProvider(storage.Schema);
        await producer.GetRequiredService<IJobStore>().MigrateAsync();
        var woken = new ConcurrentQueue<string>();
        using var stop = new CancellationTokenSource();
        var listening = ((IJobWakeupSource)consumer.GetRequiredService<IJobStore>()).ListenAsync(woken.Enqueue, stop.Token);
        await WaitForListener(storage.Schema);

        // The NOTIFY goes after each commit, one statement at a time carrying every wake-up asked for meanwhile: 60
        // concurrent enqueues to 60 queues commit in several groups while earlier wake-ups are on their way.
        var queue = producer.GetRequiredService<IJobQueue>();
        var names = Enumerable.Range(0, 60).Select(i => "q" + i).ToArray();
        await Task.WhenAll(names.Select(name => Task.Run(() => queue.EnqueueAsync(new JobRequest(name, "{}")))));
        await Eventually.TrueAsync(() => names.All(woken.Contains), "every queue to be notified");
        Assert.Equal(names.Length, woken.Count); // once per queue here: each was asked for once
        await stop.CancelAsync();
        await listening;
    }

    [Fact]
    public async Task A_worker_in_another_host_is_woken_by_notify_without_waiting_for_its_poll()
    {
        var storage = NewStorage();
        var handled = new ConcurrentQueue<long>();
        var consumer = EngineHarness.Build(storage, (job, _) => { handled.Enqueue(job.Id); return Task.CompletedTask; }, o =>
        {
            o.MinPollInterval = TimeSpan.FromHours(1);
            o.MaxPollInterval = TimeSpan.FromHours(1);
        });
        _cleanup.Add(consumer);
        await consumer.StartAsync();
        await WaitForListener(storage.Schema);

        // The producer is another process: its own store and pool, no worker, and no in-process signal reaches the consumer.
        // The two share the consumer's clock, which never moves, so the hour-long poll never fires.
        var producer = NewProvider(storage.Schema, consumer.Time).GetRequiredService<IJobQueue>();
        for (var i = 0; i < 3; i++)
        {
            var id = (await producer.EnqueueAsync(new JobRequest(EngineHarness.QueueName, "{}") { Key = i == 2 ? "k" : null })).Id;
            await consumer.WaitForStatus(id, JobStatus.Completed);
        }

        Assert.Equal(3, handled.Count);
    }

    [Fact]
    public async Task Concurrent_same_key_enqueues_and_completions_from_several_processes_never_make_two_heads_and_keep_fifo()
    {
        var storage = NewStorage();
        var providers = Enumerable.Range(0, 4).Select(_ => NewProvider(storage.Schema)).ToList();
        await providers[0].GetRequiredService<IJobStore>().MigrateAsync();
        var keys = Enumerable.Range(0, 5).Select(k => "key-" + k).ToArray();
        const int PerProducer = 120;
        var total = providers.Count * (PerProducer + 30);

        var holders = new ConcurrentDictionary<string, long>();
        var overlaps = new ConcurrentQueue<string>();
        var completedByKey = new ConcurrentDictionary<string, ConcurrentQueue<long>>();
        var completed = 0;
        var producing = providers.Select((p, n) => Task.Run(async () =>
        {
            var queue = p.GetRequiredService<IJobQueue>();
            var singles = Enumerable.Range(0, PerProducer).Select(async i =>
                await queue.EnqueueAsync(new JobRequest("q", $"{{\"p\":{n},\"i\":{i}}}") { Key = keys[(i + n) % keys.Length] }));
            await Task.WhenAll(singles);
            await queue.EnqueueBatchAsync(Enumerable.Range(0, 30).Select(i => new JobRequest("q", "{}") { Key = keys[i % keys.Length] }).ToList());
        })).ToList();

        using var done = new CancellationTokenSource();
        var consuming = providers.Select((p, n) => Task.Run(async () =>
        {
            var store = p.GetRequiredService<IJobStore>();
            using var idle = new PeriodicTimer(TimeSpan.FromMilliseconds(5));
            while (!done.IsCancellationRequested)
            {
                var jobs = await store.ClaimAsync("q", 8, "consumer-" + n, TimeSpan.FromMinutes(5));
                if (jobs.Count == 0) await idle.WaitForNextTickAsync();
                await Task.WhenAll(jobs.Select(async job =>
                {
                    if (!holders.TryAdd(job.Key!, job.Lease.JobId)) overlaps.Enqueue($"{job.Key}: {holders.GetValueOrDefault(job.Key!)} and {job.Lease.JobId}");
                    completedByKey.GetOrAdd(job.Key!, _ => new ConcurrentQueue<long>()).Enqueue(job.Lease.JobId);
                    await Task.Yield();

                    // Released before the completion commits: the next job of the key cannot be claimed before that.
                    holders.TryRemove(job.Key!, out _);
                    Assert.True(await store.FinishAsync(job.Lease, JobOutcome.Completed));
                    Interlocked.Increment(ref completed);
                }));
            }
        })).ToList();

        await Task.WhenAll(producing);
        await Eventually.TrueAsync(() => Volatile.Read(ref completed) == total, $"all {total} jobs to complete (a headless key would stall)", TimeSpan.FromSeconds(60));
        await done.CancelAsync();
        await Task.WhenAll(consuming);

        Assert.Empty(overlaps);
        foreach (var (key, ids) in completedByKey)
        {
            var order = ids.ToList();
            Assert.True(order.SequenceEqual(order.Order()), $"{key} ran out of enqueue order");
        }

        Assert.Equal(total, await Scalar($"SELECT count(*) FROM \"{storage.Schema}\".jobs WHERE status = 2"));
    }

    [Fact]
    public async Task A_completed_keyed_job_hands_its_keys_next_job_to_its_worker_at_once_and_keys_stay_fifo()
    {
        var storage = NewStorage();
        var log = new KeyedRunLog();
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Services.AddLogging();
        builder.Services.AddSingleton(log);
        builder.Services.AddInboxReliability(o => o.WorkerName = "solo")
            .UsePostgreSql(server.ConnectionString, o => o.Schema = storage.Schema)
            .AddJobHandler<KeyedRunHandler>("keyed", o =>
            {
                o.Concurrency = 8;
                o.Prefetch = 16;
            });
        using var host = builder.Build();
        await host.Services.GetRequiredService<IJobStore>().MigrateAsync();
        var queue = host.Services.GetRequiredService<IJobQueue>();
        var enqueued = await queue.EnqueueBatchAsync(Enumerable.Range(0, 200).Select(i => new JobRequest("keyed", "{}") { Key = "k" + (i % 50) }).ToList());

        await host.StartAsync();
        try
        {
            await Eventually.TrueAsync(async () => (await queue.GetStatsAsync()).SingleOrDefault(q => q.Queue == "keyed")?.Completed == 200, "all 200 jobs completed", TimeSpan.FromSeconds(60));
        }
        finally
        {
            await host.StopAsync();
        }

        Assert.Empty(log.Overlaps);
        Assert.Equal(enqueued.Select(r => r.Id).Order(), log.Runs.Select(r => r.Id).Order()); // each once
        foreach (var key in log.Runs.GroupBy(r => r.Key))
        {
            var order = key.Select(r => r.Id).ToList();
            Assert.True(order.SequenceEqual(order.Order()), $"{key.Key} ran out of enqueue order");
        }

        // Handed over: leased in the statement that recorded its predecessor's completion (same instant), first attempt.
        // Every job but each key's first, though the worker's buffer (16) is full while 50 keys have work: each completion
        // leaves the place its successor takes.
        var s = $"\"{storage.Schema}\"";
        var handedOver = await Scalar($"""
            SELECT count(*) FROM {s}.jobs j
            JOIN {s}.jobs p ON p.queue = j.queue AND p.key = j.key
                AND p.id = (SELECT max(x.id) FROM {s}.jobs x WHERE x.queue = j.queue AND x.key = j.key AND x.id < j.id)
            WHERE j.started_at = p.finished_at AND j.attempts = 1 AND j.lease_owner = 'solo'
            """);
        Assert.Equal(200 - 50, handedOver);
    }

    /// <summary>Every run of <see cref="KeyedRunHandler"/>, in start order, and any two runs of one key at once.</summary>
    private sealed class KeyedRunLog
    {
        private readonly ConcurrentDictionary<string, long> _running = new();

        public ConcurrentQueue<(string Key, long Id)> Runs { get; } = new();

        public ConcurrentQueue<string> Overlaps { get; } = new();

        public void Start(string key, long id)
        {
            if (!_running.TryAdd(key, id)) Overlaps.Enqueue($"{key}: {id} while {_running.GetValueOrDefault(key)} ran");
            Runs.Enqueue((key, id));
        }

        public void End(string key) => _running.TryRemove(key, out _);
    }

    private sealed class KeyedRunHandler(KeyedRunLog log) : IJobHandler
    {
        public async Task HandleAsync(JobContext job, CancellationToken cancellationToken)
        {
            log.Start(job.Key!, job.Id);
            await Task.Yield();
            log.End(job.Key!);
        }
    }

    [Fact]
    public async Task Concurrent_single_enqueues_and_completions_share_commits_and_a_bad_one_fails_alone()
    {
        var storage = NewStorage();
        var provider = NewProvider(storage.Schema);
        var store = (PostgreSqlJobStore)provider.GetRequiredService<IJobStore>();
        var queue = provider.GetRequiredService<IJobQueue>();
        await store.MigrateAsync();

        // 8 callers enqueue 50 jobs each, one at a time; one payload holds a NUL, which PostgreSQL text refuses.
        var bad = Task.Run(() => queue.EnqueueAsync(new JobRequest("q", "bad\0payload")));
        var callers = Enumerable.Range(0, 8).Select(c => Task.Run(async () =>
        {
            var ids = new List<long>();
            for (var i = 0; i < 50; i++) ids.Add((await queue.EnqueueAsync(new JobRequest("q", $"{{\"c\":{c},\"i\":{i}}}") { Key = "k" + (i % 3) })).Id);
            return ids;
        })).ToList();
        var all = (await Task.WhenAll(callers)).SelectMany(ids => ids).ToList();
        await Assert.ThrowsAsync<PostgresException>(() => bad);
        Assert.Equal(400, all.Distinct().Count());
        Assert.Equal(400, Assert.Single(await store.GetStatsAsync()).Pending);
        Assert.True(store.EnqueueGroups < 400, $"400 enqueues took {store.EnqueueGroups} commits");

        // Completions from concurrent handlers share commits the same way.
        Assert.Equal(3, (await store.ClaimAsync("q", 1000, "w", TimeSpan.FromMinutes(5))).Count); // one head per key
        await queue.EnqueueBatchAsync(Enumerable.Range(0, 200).Select(_ => new JobRequest("u", "{}")).ToList());
        var claimed = await store.ClaimAsync("u", 1000, "w", TimeSpan.FromMinutes(5));
        Assert.Equal(200, claimed.Count);
        var before = store.FinishGroups;
        var finished = await Task.WhenAll(claimed.Select(job => Task.Run(() => store.FinishAsync(job.Lease, JobOutcome.Completed))));
        Assert.All(finished, Assert.True);
        Assert.True(store.FinishGroups - before < claimed.Count, $"{claimed.Count} completions took {store.FinishGroups - before} commits");
    }

    [Fact]
    public async Task A_key_with_a_huge_backlog_does_not_slow_claims_of_other_keys()
    {
        var storage = NewStorage();
        var store = NewProvider(storage.Schema).GetRequiredService<IJobStore>();
        await store.MigrateAsync();
        var now = DateTimeOffset.UtcNow;
        for (var chunk = 0; chunk < 5; chunk++)
        {
            await store.EnqueueAsync(Enumerable.Range(0, 2000).Select(_ => new NewJob("q", "{}", "blocked", now, null, 5, 0)).ToList());
        }

        var head = Assert.Single(await store.ClaimAsync("q", 100, "w", TimeSpan.FromMinutes(5)));
        var others = await store.EnqueueAsync(Enumerable.Range(0, 100).Select(i => new NewJob("q", "{}", "other-" + i, now, null, 5, 0)).ToList());

        // Only heads are in the ready index: the 9,999 jobs behind "blocked" are never read by a claim.
        var claimed = await store.ClaimAsync("q", 1000, "w", TimeSpan.FromMinutes(5));
        Assert.Equal(others.Select(o => o.Id).Order(), claimed.Select(c => c.Lease.JobId).Order());
        Assert.True(await store.FinishAsync(head.Lease, JobOutcome.Completed));
        Assert.Equal(head.Lease.JobId + 1, Assert.Single(await store.ClaimAsync("q", 1000, "w", TimeSpan.FromMinutes(5))).Lease.JobId);
    }

    [Fact]
    public async Task A_database_restart_mid_run_loses_nothing_and_the_host_recovers_by_itself()
    {
        if (!server.OwnsServer) return; // only a server this run started may be restarted

        var storage = NewStorage();
        var logs = new CapturingLoggerProvider();
        var runs = new ConcurrentDictionary<long, int>();
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Services.AddLogging(l => l.AddProvider(logs));
        builder.Services.AddSingleton(new HandlerScript(async (job, ct) =>
        {
            runs.AddOrUpdate(job.Id, 1, (_, n) => n + 1);
            await Task.Yield();
        }));
        builder.Services.AddInboxReliability(o =>
        {
            o.WorkerName = "restart-test";
            o.LeaseReaperInterval = TimeSpan.FromSeconds(1);
        })
        .UsePostgreSql(server.ConnectionString, o => o.Schema = storage.Schema)
        .AddJobHandler<ScriptedHandler>("stream", o =>
        {
            o.Concurrency = 4;
            o.LeaseDuration = TimeSpan.FromSeconds(3);
            o.MinPollInterval = TimeSpan.FromMilliseconds(20);
            o.MaxPollInterval = TimeSpan.FromMilliseconds(200);
            o.Backoff.Base = TimeSpan.FromMilliseconds(100);
        });
        using var host = builder.Build();
        await host.StartAsync();
        var lifetime = host.Services.GetRequiredService<IHostApplicationLifetime>();
        var queue = host.Services.GetRequiredService<IJobQueue>();
        await WaitForListener(storage.Schema);

        // A steady stream: every job has a dedupe key, so a retried enqueue whose first try did commit is not added twice.
        var enqueued = new ConcurrentDictionary<long, byte>();
        const int Jobs = 400;
        var producer = Task.Run(async () =>
        {
            for (var i = 0; i < Jobs; i++)
            {
                var request = new JobRequest("stream", $"{{\"n\":{i}}}") { DedupeKey = "job-" + i, Key = i % 3 == 0 ? "chat-" + (i % 7) : null };
                await Eventually.TrueAsync(async () =>
                {
                    try
                    {
                        enqueued[(await queue.EnqueueAsync(request)).Id] = 0;
                        return true;
                    }
                    catch (Exception ex) when (ex is NpgsqlException or ObjectDisposedException or TimeoutException)
                    {
                        return false; // the database is restarting: try again
                    }
                }, $"enqueue {i}", TimeSpan.FromSeconds(60));
            }
        });

        await Eventually.TrueAsync(() => runs.Count >= 60, "the first jobs to run");
        await server.RestartAsync();
        await producer;
        await Eventually.TrueAsync(async () =>
        {
            try
            {
                return await Scalar($"SELECT count(*) FROM \"{storage.Schema}\".jobs WHERE status = 2") == enqueued.Count;
            }
            catch (NpgsqlException)
            {
                return false;
            }
        }, "every enqueued job to complete after the restart", TimeSpan.FromSeconds(90));

        Assert.Equal(Jobs, enqueued.Count);
        Assert.All(enqueued.Keys, id => Assert.True(runs.ContainsKey(id), $"job {id} never ran"));
        Assert.False(lifetime.ApplicationStopping.IsCancellationRequested, "a failure escaped and stopped the host");
        await Eventually.TrueAsync(() => logs.Entries.Any(e => e.EventId.Id == PostgreSqlEventIds.ListenRestored), "the listener to reconnect");
        Assert.Contains(logs.Entries, e => e.Level >= LogLevel.Warning && e.Exception is NpgsqlException);
        await host.StopAsync();
    }
}
