using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Inbox.Reliability.Conformance;
using Inbox.Reliability.Events;
using Inbox.Reliability.Storage;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace Inbox.Reliability.PostgreSql.Tests;

/// <summary>
/// The webhook pipeline's storage on PostgreSQL where only PostgreSQL can be tested: several hosts (service providers with
/// their own pools and group-commit queues) on one schema capturing the same bodies and ingesting the same instance at once,
/// and captures sharing commits.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgreSqlWebhookStoreTests(PostgresServer server) : IAsyncLifetime
{
    private const string IngestQueue = "test.ingest";
    private const string DispatchQueue = "test.dispatch";
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

    /// <summary>A separate "host": its own service provider, pool, job store and inbox store (with their own group commits).</summary>
    private async Task<PostgreSqlInboxStore> NewHostAsync(string schema)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddInboxReliability().UsePostgreSql(server.ConnectionString, o => o.Schema = schema);
        var provider = services.BuildServiceProvider();
        _cleanup.Add(provider);
        await provider.GetRequiredService<IJobStore>().MigrateAsync();
        return Assert.IsType<PostgreSqlInboxStore>(provider.GetRequiredService<IInboxStore>());
    }

    private static RawWebhook Raw(string instance, string body)
    {
        var bytes = Encoding.UTF8.GetBytes(body);
        return new RawWebhook("zapi", instance, DateTimeOffset.UtcNow, SHA256.HashData(bytes), bytes, "application/json", new Dictionary<string, string> { ["User-Agent"] = "tests" });
    }

    private static NewJob IngestJob() => new(IngestQueue, "", null, DateTimeOffset.UtcNow, null, 10, 0);

    private static InboxEvent Message(string instance, string messageId, string chat = "5511999990001") => new()
    {
        Kind = InboxEventKind.Message,
        Provider = "zapi",
        Instance = instance,
        ExternalId = messageId,
        DedupeKey = InboxDedupeKey.ForMessage("zapi", instance, messageId),
        ChatId = chat,
        OccurredAt = DateTimeOffset.UtcNow,
        MessageType = InboxMessageType.Text,
        Text = "text of " + messageId,
    };

    private static EventFollowUp Dispatch(long id) => new([new NewJob(DispatchQueue, id.ToString(CultureInfo.InvariantCulture), null, DateTimeOffset.UtcNow, null, 10, 0)], false);

    private Task<List<T>> Query<T>(string sql, Func<NpgsqlDataReader, T> read) => server.QueryAsync(sql, read);

    private async Task<long> Scalar(string sql) => (await Query(sql, r => r.GetInt64(0))).Single();

    [Fact]
    public async Task Identical_bodies_captured_by_two_hosts_at_once_are_stored_once_and_every_answer_names_that_row()
    {
        var storage = NewStorage();
        var hosts = new[] { await NewHostAsync(storage.Schema), await NewHostAsync(storage.Schema) };
        const int Bodies = 100;
        const int PerHost = 2; // each host also gets each body twice at once: duplicates within one group too
        for (var round = 0; round < 3; round++)
        {
            var bodies = Enumerable.Range(0, Bodies).Select(b => $"{{\"round\":{round},\"body\":{b}}}").ToArray();
            var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var captures = new List<(int Body, Task<CaptureOutcome> Outcome)>();
            foreach (var host in hosts)
            {
                for (var copy = 0; copy < PerHost; copy++)
                {
                    for (var b = 0; b < Bodies; b++)
                    {
                        var body = bodies[b];
                        captures.Add((b, Task.Run(async () =>
                        {
                            await start.Task;
                            return await host.CaptureAsync(Raw("inst-1", body), IngestJob());
                        })));
                    }
                }
            }

            start.SetResult();
            var answers = await Task.WhenAll(captures.Select(c => c.Outcome));

            var rows = await Query(
                $"SELECT id, convert_from(body, 'UTF8'), duplicates FROM \"{storage.Schema}\".raw_webhooks WHERE convert_from(body, 'UTF8') LIKE '{{\"round\":{round},%'",
                r => (Id: r.GetInt64(0), Body: r.GetString(1), Duplicates: r.GetInt32(2)));
            Assert.Equal(Bodies, rows.Count); // one row per body, whichever host and copy came first
            var byBody = rows.ToDictionary(r => r.Body);
            for (var b = 0; b < Bodies; b++)
            {
                var outcomes = answers.Where((_, i) => captures[i].Body == b).ToList();
                var row = byBody[bodies[b]];
                Assert.All(outcomes, o => Assert.Equal(row.Id, o.RawWebhookId));
                Assert.Single(outcomes, o => !o.Duplicate);
                Assert.Equal(hosts.Length * PerHost - 1, row.Duplicates);
            }

            // Ingest jobs name stored rows (one per instance per commit, its newest row); every row is covered by a job
            // naming it or a newer row of the same commit; none for a duplicate.
            var payloads = await Query($"SELECT payload FROM \"{storage.Schema}\".jobs WHERE queue = '{IngestQueue}'", r => long.Parse(r.GetString(0), CultureInfo.InvariantCulture));
            var ids = rows.Select(r => r.Id).ToHashSet();
            var named = payloads.Where(ids.Contains).ToList();
            Assert.NotEmpty(named);
            Assert.Contains(ids.Max(), named);
            Assert.All(ids, id => Assert.Contains(named, p => p >= id));
            Assert.True(named.Count <= Bodies);
        }
    }

    [Fact]
    public async Task Captures_of_new_bodies_bodies_stored_before_and_other_ingest_jobs_at_once_each_get_the_right_row_and_job()
    {
        var storage = NewStorage();
        var store = await NewHostAsync(storage.Schema);
        var earlier = await store.CaptureAsync(Raw("inst-1", "{\"stored\":\"before\"}"), IngestJob());
        Assert.False(earlier.Duplicate);

        // At once: a provider's retry of that body (twice), new bodies of two instances, and a capture asking for a keyed ingest job.
        var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Task<CaptureOutcome> Capture(RawWebhook raw, NewJob job) => Task.Run(async () =>
        {
            await start.Task;
            return await store.CaptureAsync(raw, job);
        });
        var retries = Enumerable.Range(0, 2).Select(_ => Capture(Raw("inst-1", "{\"stored\":\"before\"}"), IngestJob())).ToList();
        var fresh = Enumerable.Range(0, 20).Select(i => Capture(Raw(i % 2 == 0 ? "inst-1" : "inst-2", $"{{\"fresh\":{i}}}"), IngestJob())).ToList();
        var keyed = Capture(Raw("inst-3", "{\"keyed\":1}"), IngestJob() with { Key = "inst-3" });
        start.SetResult();
        await Task.WhenAll(retries.Concat(fresh).Append(keyed));
        var retried = await Task.WhenAll(retries);
        var freshIds = await Task.WhenAll(fresh);
        var keyedOutcome = await keyed;

        Assert.All(retried, r => Assert.Equal(new CaptureOutcome(earlier.RawWebhookId, true), r));
        Assert.Equal(2, await Scalar($"SELECT duplicates FROM \"{storage.Schema}\".raw_webhooks WHERE id = {earlier.RawWebhookId}"));
        Assert.All(freshIds, f => Assert.False(f.Duplicate));
        Assert.Equal(20, freshIds.Select(f => f.RawWebhookId).Distinct().Count());
        Assert.Equal(22, await Scalar($"SELECT count(*) FROM \"{storage.Schema}\".raw_webhooks"));

        // Every new row is reached by an ingest job of its instance naming it or a newer row; the keyed job kept its key.
        var jobs = await Query($"SELECT r.instance, j.key, r.id FROM \"{storage.Schema}\".jobs j JOIN \"{storage.Schema}\".raw_webhooks r ON r.id = j.payload::bigint WHERE j.queue = '{IngestQueue}'",
            r => (Instance: r.GetString(0), Key: r.IsDBNull(1) ? null : r.GetString(1), RawId: r.GetInt64(2)));
        var rows = await Query($"SELECT instance, id FROM \"{storage.Schema}\".raw_webhooks", r => (Instance: r.GetString(0), Id: r.GetInt64(1)));
        Assert.All(rows, row => Assert.Contains(jobs, j => j.Instance == row.Instance && j.RawId >= row.Id));
        Assert.Equal(("inst-3", "inst-3", keyedOutcome.RawWebhookId), Assert.Single(jobs, j => j.Instance == "inst-3"));
        Assert.All(jobs.Where(j => j.Instance != "inst-3"), j => Assert.Null(j.Key));
    }

    [Fact]
    public async Task Captures_during_a_database_restart_either_fail_or_are_stored_and_a_resend_of_a_failed_one_is_stored_once()
    {
        if (!server.OwnsServer) return; // only a server this run started may be restarted

        var storage = NewStorage();
        var store = await NewHostAsync(storage.Schema);
        var answered = new ConcurrentDictionary<string, long>();
        var failed = new ConcurrentQueue<string>();
        using var stop = new CancellationTokenSource();
        var next = 0;
        var senders = Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                var body = $"{{\"n\":{Interlocked.Increment(ref next)}}}";
                try
                {
                    answered[body] = (await store.CaptureAsync(Raw("inst-1", body), IngestJob())).RawWebhookId;
                }
                catch (Exception ex) when (ex is NpgsqlException or ObjectDisposedException or TimeoutException or InvalidOperationException)
                {
                    failed.Enqueue(body); // what the endpoint answers 503: the provider sends it again
                }
            }
        })).ToList();

        await Eventually.TrueAsync(() => answered.Count >= 200, "captures before the restart");
        await server.RestartAsync();
        var atRestart = answered.Count;
        await Eventually.TrueAsync(() => answered.Count >= atRestart + 200, "captures to be stored again after the restart", TimeSpan.FromSeconds(60));
        await stop.CancelAsync();
        await Task.WhenAll(senders);

        // The provider's resends: a failed capture that did commit is now a duplicate of its row, the others are stored.
        foreach (var body in failed)
        {
            var outcome = await store.CaptureAsync(Raw("inst-1", body), IngestJob());
            Assert.False(answered.ContainsKey(body));
            answered[body] = outcome.RawWebhookId;
        }

        var rows = await Query($"SELECT convert_from(body, 'UTF8'), id FROM \"{storage.Schema}\".raw_webhooks", r => (Body: r.GetString(0), Id: r.GetInt64(1)));
        Assert.Equal(answered.Count, rows.Count);
        Assert.All(rows, row => Assert.Equal(answered[row.Body], row.Id));

        // Every row has an ingest job that reaches it.
        var reach = await Scalar($"SELECT coalesce(max(payload::bigint), 0) FROM \"{storage.Schema}\".jobs WHERE queue = '{IngestQueue}'");
        Assert.Equal(rows.Max(r => r.Id), reach);
    }

    [Fact]
    public async Task Concurrent_reads_of_chats_pending_events_share_statements_and_each_gets_its_own_chats_events_in_order()
    {
        var storage = NewStorage();
        var store = await NewHostAsync(storage.Schema);
        const int Chats = 60;
        var raw = await store.CaptureAsync(Raw("inst-1", "{\"chats\":60}"), IngestJob());
        var messages = Enumerable.Range(0, Chats * 3).Select(i => Message("inst-1", "m" + i, "chat-" + (i % Chats))).ToList();
        var saved = await store.SaveEventsAsync(raw.RawWebhookId, messages, (id, _) => Dispatch(id));
        Assert.Equal(Chats * 3, saved.Stored.Count);
        var other = await store.CaptureAsync(Raw("inst-2", "{\"other\":1}"), IngestJob());
        await store.SaveEventsAsync(other.RawWebhookId, [Message("inst-2", "elsewhere", "chat-0")], (id, _) => Dispatch(id));
        await store.MarkEventDispatchAsync(saved.Stored[0].Id, EventDispatchStatus.Dispatched, null); // chat-0's first is done

        var before = store.PendingReadGroups;
        var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var reads = Enumerable.Range(0, Chats).Select(c => Task.Run(async () =>
        {
            await start.Task;
            return await store.GetPendingEventsAsync("zapi", "inst-1", "chat-" + c, c == 1 ? 2 : 50);
        })).ToList();
        start.SetResult();
        var results = await Task.WhenAll(reads);

        for (var c = 0; c < Chats; c++)
        {
            var expected = saved.Stored.Where(e => e.Event.ChatId == "chat-" + c && e.Id != saved.Stored[0].Id).Select(e => e.Event.ExternalId).ToList();
            Assert.Equal(c == 1 ? expected.Take(2) : expected, results[c].Select(e => e.Event.ExternalId));
            Assert.All(results[c], e => Assert.Equal(EventDispatchStatus.Pending, e.DispatchStatus));
        }

        Assert.True(store.PendingReadGroups - before < Chats, $"{Chats} concurrent reads took {store.PendingReadGroups - before} statements");
        Assert.Empty(await store.GetPendingEventsAsync("zapi", "inst-1", "no-such-chat", 10));
    }

    [Fact]
    public async Task Concurrent_captures_share_commits_and_each_is_durable_when_it_returns()
    {
        var storage = NewStorage();
        var store = await NewHostAsync(storage.Schema);
        await using var check = await server.OpenAsync();
        var checkLock = new SemaphoreSlim(1);
        var notYetVisible = 0;

        const int Captures = 200;
        var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var tasks = Enumerable.Range(0, Captures).Select(i => Task.Run(async () =>
        {
            await start.Task;
            var outcome = await store.CaptureAsync(Raw("inst-1", $"{{\"n\":{i}}}"), IngestJob());

            // Answered: the row must already be committed, as seen from another connection.
            await checkLock.WaitAsync();
            try
            {
                await using var command = new NpgsqlCommand($"SELECT count(*) FROM \"{storage.Schema}\".raw_webhooks WHERE id = $1", check);
                command.Parameters.Add(new NpgsqlParameter { Value = outcome.RawWebhookId });
                if ((long)(await command.ExecuteScalarAsync())! != 1) Interlocked.Increment(ref notYetVisible);
            }
            finally
            {
                checkLock.Release();
            }

            return outcome;
        })).ToList();
        start.SetResult();
        var outcomes = await Task.WhenAll(tasks);

        Assert.Equal(0, notYetVisible);
        Assert.All(outcomes, o => Assert.False(o.Duplicate));
        Assert.Equal(Captures, outcomes.Select(o => o.RawWebhookId).Distinct().Count());
        Assert.Equal(Captures, await Scalar($"SELECT count(*) FROM \"{storage.Schema}\".raw_webhooks"));
        Assert.True(store.CaptureGroups < Captures, $"{Captures} concurrent captures took {store.CaptureGroups} commits");

        // One ingest job per commit (one instance here), naming the newest row it committed.
        var payloads = await Query($"SELECT payload FROM \"{storage.Schema}\".jobs WHERE queue = '{IngestQueue}'", r => long.Parse(r.GetString(0), CultureInfo.InvariantCulture));
        Assert.Equal(store.CaptureGroups, payloads.Count);
        Assert.Subset(outcomes.Select(o => o.RawWebhookId).ToHashSet(), payloads.ToHashSet());
        Assert.Contains(outcomes.Max(o => o.RawWebhookId), payloads);
    }

    [Fact]
    public async Task Two_hosts_ingesting_one_instance_at_once_give_gap_free_unique_sequences_in_arrival_order()
    {
        var storage = NewStorage();
        var hosts = new[] { await NewHostAsync(storage.Schema), await NewHostAsync(storage.Schema) };
        const int Raws = 300;
        const string Instance = "inst-shared";

        // Arrival order is the order of the raw ids.
        var rawIds = new List<long>();
        for (var r = 0; r < Raws; r++) rawIds.Add((await hosts[r % 2].CaptureAsync(Raw(Instance, $"{{\"raw\":{r}}}"), IngestJob())).RawWebhookId);
        Assert.Equal(rawIds.Order(), rawIds);

        // Raw r carries messages r.a and r.b; every 10th raw repeats the previous raw's message a (a duplicate by its key).
        IReadOnlyList<InboxEvent> EventsOf(int r) => r % 10 == 9
            ? [Message(Instance, $"m{r}a", "chat" + (r % 7)), Message(Instance, $"m{r - 1}a"), Message(Instance, $"m{r}b", "chat" + (r % 5))]
            : [Message(Instance, $"m{r}a", "chat" + (r % 7)), Message(Instance, $"m{r}b", "chat" + (r % 5))];

        // Both hosts ingest every raw webhook at once, each submitting its saves in arrival order without waiting (as ingest does).
        var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var perHost = hosts.Select(host => Task.Run(async () =>
        {
            await start.Task;
            var saves = Enumerable.Range(0, Raws).Select(r => host.SaveEventsAsync(rawIds[r], EventsOf(r), (id, _) => Dispatch(id))).ToList();
            return await Task.WhenAll(saves);
        })).ToList();
        start.SetResult();
        var results = await Task.WhenAll(perHost);

        // Each raw webhook was stored by exactly one host; the other host's save was a no-op.
        var stored = new List<StoredInboxEvent>();
        var duplicates = new List<InboxEvent>();
        for (var r = 0; r < Raws; r++)
        {
            var outcomes = results.Select(h => h[r]).Where(o => o.Stored.Count + o.Duplicates.Count > 0).ToList();
            var outcome = Assert.Single(outcomes);
            Assert.Equal(new[] { $"m{r}a", $"m{r}b" }, outcome.Stored.Select(e => e.Event.ExternalId));
            Assert.Equal(r % 10 == 9 ? new[] { $"m{r - 1}a" } : [], outcome.Duplicates.Select(e => e.ExternalId));
            Assert.All(outcome.Stored, e => Assert.Equal(rawIds[r], e.RawWebhookId));
            stored.AddRange(outcome.Stored);
            duplicates.AddRange(outcome.Duplicates);
        }

        // Gap-free, unique, and in arrival order (raw id, then payload order), in the answers and in the table.
        Assert.Equal(Enumerable.Range(1, Raws * 2).Select(i => (long)i), stored.Select(e => e.Sequence));
        var rows = await Query($"SELECT seq, raw_id, external_id FROM \"{storage.Schema}\".events ORDER BY seq", r => (Seq: r.GetInt64(0), Raw: r.GetInt64(1), Id: r.GetString(2)));
        Assert.Equal(stored.Select(e => (e.Sequence, e.RawWebhookId, e.Event.ExternalId)), rows.Select(r => (r.Seq, r.Raw, r.Id)));
        Assert.Equal(Raws / 10, duplicates.Count);
        Assert.Equal(Raws * 2 + 1, await Scalar($"SELECT next_seq FROM \"{storage.Schema}\".instances WHERE instance = '{Instance}'"));
        Assert.Equal(Raws, await Scalar($"SELECT count(*) FROM \"{storage.Schema}\".raw_webhooks WHERE status = 1 AND event_count = 2"));
        Assert.Equal(Raws * 2, await Scalar($"SELECT count(DISTINCT payload) FROM \"{storage.Schema}\".jobs WHERE queue = '{DispatchQueue}'"));
        Assert.Equal(Raws * 2, await Scalar($"SELECT count(*) FROM \"{storage.Schema}\".jobs WHERE queue = '{DispatchQueue}'"));
    }

    [Fact]
    public async Task Saves_media_states_failures_and_reprocessing_round_trip_with_what_postgresql_text_cannot_hold()
    {
        var storage = NewStorage();
        var store = await NewHostAsync(storage.Schema);
        var first = await store.CaptureAsync(Raw("inst-2", "{\"a\":1}"), IngestJob());
        var second = await store.CaptureAsync(Raw("inst-2", "{\"b\":2}"), IngestJob());

        // A raw webhook no longer captured is a no-op.
        await store.MarkRawWebhookFailedAsync(second.RawWebhookId, "cannot parse");
        var noop = await store.SaveEventsAsync(second.RawWebhookId, [Message("inst-2", "x1")], (id, _) => Dispatch(id));
        Assert.Empty(noop.Stored);
        Assert.Empty(noop.Duplicates);
        Assert.Equal(RawWebhookStatus.Failed, (await store.GetRawWebhookAsync(second.RawWebhookId))!.Status);

        // NUL and a lone surrogate (PostgreSQL text refuses both) in indexed fields; the event comes back as its JSON holds it.
        var media = Message("inst-2", "img\0\ud800-1", "chat\0one") with { MessageType = InboxMessageType.Image, Media = new MediaReference { Url = "https://example.invalid/a.jpg", MimeType = "image/jpeg" } };
        var saved = await store.SaveEventsAsync(first.RawWebhookId, [media, Message("inst-2", "plain")], (id, e) => e.Media is null ? Dispatch(id) : Dispatch(id) with { MediaPending = true });
        Assert.Equal([1L, 2L], saved.Stored.Select(e => e.Sequence));
        var withMedia = saved.Stored[0];
        Assert.Equal(MediaStatus.Pending, withMedia.Media.Status);
        var read = (await store.GetEventAsync(withMedia.Id))!;
        var json = InboxEventSerializer.Deserialize(InboxEventSerializer.Serialize(media)); // the JSON form every storage keeps (a lone surrogate becomes U+FFFD there)
        Assert.Equal("chat\0one", read.Event.ChatId);
        Assert.Equal((json.ExternalId, json.ChatId, json.DedupeKey, json.Media!.Url), (read.Event.ExternalId, read.Event.ChatId, read.Event.DedupeKey, read.Event.Media?.Url));
        Assert.Equal(withMedia.CreatedAt, read.CreatedAt);
        Assert.Equal(new EventMedia(MediaStatus.Pending, MimeType: "image/jpeg"), read.Media);
        Assert.Equal(EventMedia.None, (await store.GetEventAsync(saved.Stored[1].Id))!.Media);
        Assert.Equal(new Dictionary<MediaStatus, long> { [MediaStatus.Pending] = 1 }, await store.CountMediaAsync());

        // Saving the same raw webhook again (another ingest job got there too): nothing more.
        var again = await store.SaveEventsAsync(first.RawWebhookId, [media], (id, _) => Dispatch(id));
        Assert.Empty(again.Stored);
        Assert.Equal(2, await Scalar($"SELECT count(*) FROM \"{storage.Schema}\".events"));

        // The media ends: its state and the follow-up job commit together; the MIME type stays when none is given.
        await store.SetMediaAsync(withMedia.Id, new EventMedia(MediaStatus.Stored, "k/1.jpg", 1234, null, "ab12"), new NewJob(DispatchQueue, "media-update", "chat", DateTimeOffset.UtcNow, null, 10, 0));
        Assert.Equal(new EventMedia(MediaStatus.Stored, "k/1.jpg", 1234, "image/jpeg", "ab12"), (await store.GetEventAsync(withMedia.Id))!.Media);
        Assert.Equal(new Dictionary<MediaStatus, long> { [MediaStatus.Stored] = 1 }, await store.CountMediaAsync());
        Assert.Equal(1, await Scalar($"SELECT count(*) FROM \"{storage.Schema}\".jobs WHERE payload = 'media-update'"));

        await store.MarkEventDispatchAsync(withMedia.Id, EventDispatchStatus.Failed, "boom\0" + new string('x', 5000));
        Assert.Equal(EventDispatchStatus.Failed, (await store.GetEventAsync(withMedia.Id))!.DispatchStatus);
        Assert.Equal(2000, await Scalar($"SELECT length(dispatch_error) FROM \"{storage.Schema}\".events WHERE id = {withMedia.Id}"));

        var instance = (await store.GetInstanceAsync("zapi", "inst-2"))!;
        Assert.NotNull(instance.LastWebhookAt);
        Assert.Null(await store.GetInstanceAsync("zapi", "never-seen"));

        // Lists, newest first, filtered; the failed one goes back to captured with a new ingest job.
        Assert.Equal([second.RawWebhookId, first.RawWebhookId], (await store.ListRawWebhooksAsync(new RawWebhookQuery { Instance = "inst-2" })).Select(r => r.Id));
        var failed = Assert.Single(await store.ListRawWebhooksAsync(new RawWebhookQuery { Provider = "zapi", Status = RawWebhookStatus.Failed }));
        Assert.Equal(("cannot parse", 0), (failed.Error, failed.Body.Length));
        Assert.Equal("tests", failed.Headers["user-agent"]);
        var jobsBefore = await Scalar($"SELECT count(*) FROM \"{storage.Schema}\".jobs WHERE queue = '{IngestQueue}'");
        Assert.Equal(1, await store.ReprocessRawWebhooksAsync(new RawWebhookQuery { Instance = "inst-2" }, _ => IngestJob()));
        Assert.Equal(0, await store.ReprocessRawWebhooksAsync(new RawWebhookQuery { Instance = "inst-2" }, _ => IngestJob()));
        Assert.Equal(jobsBefore + 1, await Scalar($"SELECT count(*) FROM \"{storage.Schema}\".jobs WHERE queue = '{IngestQueue}'"));
        Assert.Equal(2, await Scalar($"SELECT count(*) FROM \"{storage.Schema}\".jobs WHERE queue = '{IngestQueue}' AND payload = '{second.RawWebhookId}'"));
        var captured = Assert.Single(await store.GetCapturedRawWebhooksAsync("zapi", "inst-2", 10));
        Assert.Equal((second.RawWebhookId, "{\"b\":2}", (string?)null), (captured.Id, Encoding.UTF8.GetString(captured.Body.Span), captured.Error));
    }

    [Fact]
    public async Task Ingest_reads_the_captured_batch_of_a_webhooks_instance_in_one_statement_only_while_that_webhook_is_captured()
    {
        var storage = NewStorage();
        var store = await NewHostAsync(storage.Schema);
        var a1 = await store.CaptureAsync(Raw("inst-a", "{\"a\":1}"), IngestJob());
        var b1 = await store.CaptureAsync(Raw("inst-b", "{\"b\":1}"), IngestJob());
        var a2 = await store.CaptureAsync(Raw("inst-a", "{\"a\":2}"), IngestJob());
        var a3 = await store.CaptureAsync(Raw("inst-a", "{\"a\":3}"), IngestJob());

        // Oldest first, its own instance only, with bodies, up to the limit; the same batch whichever of them is asked for.
        var batch = await store.GetCapturedBatchOfAsync(a2.RawWebhookId, 10);
        Assert.Equal([a1.RawWebhookId, a2.RawWebhookId, a3.RawWebhookId], batch.Select(r => r.Id));
        Assert.Equal(["{\"a\":1}", "{\"a\":2}", "{\"a\":3}"], batch.Select(r => Encoding.UTF8.GetString(r.Body.Span)));
        Assert.Equal([a1.RawWebhookId, a2.RawWebhookId], (await store.GetCapturedBatchOfAsync(a3.RawWebhookId, 2)).Select(r => r.Id));
        Assert.Equal([b1.RawWebhookId], (await store.GetCapturedBatchOfAsync(b1.RawWebhookId, 10)).Select(r => r.Id));

        // Once the webhook is ingested or failed (or never existed), nothing: its job has nothing left to do.
        await store.SaveEventsAsync(a1.RawWebhookId, [Message("inst-a", "A1")], (id, _) => Dispatch(id));
        await store.MarkRawWebhookFailedAsync(a2.RawWebhookId, "cannot parse");
        Assert.Empty(await store.GetCapturedBatchOfAsync(a1.RawWebhookId, 10));
        Assert.Empty(await store.GetCapturedBatchOfAsync(a2.RawWebhookId, 10));
        Assert.Empty(await store.GetCapturedBatchOfAsync(a3.RawWebhookId + 1000, 10));
        Assert.Equal([a3.RawWebhookId], (await store.GetCapturedBatchOfAsync(a3.RawWebhookId, 10)).Select(r => r.Id));
    }
}
