using System.Globalization;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using System.Text;
using Inbox.Reliability.Events;
using Inbox.Reliability.Jobs;
using Inbox.Reliability.Storage;
using Npgsql;
using NpgsqlTypes;
using static Inbox.Reliability.PostgreSql.SqlParameters;

namespace Inbox.Reliability.PostgreSql;

/// <summary>
/// The webhook pipeline's tables (<c>raw_webhooks</c>, <c>events</c>, <c>instances</c>) in the job store's schema, written on
/// its connections, so a raw webhook and its ingest job, or events and their dispatch jobs, commit in one transaction
/// (the jobs through <see cref="PostgreSqlJobStore.InsertJobsAsync"/>). Other processes' workers are woken after the commit
/// (<see cref="PostgreSqlJobStore.WakeOthersAfterCommit"/>), not by a NOTIFY inside it.
/// </summary>
/// <remarks>
/// <para>
/// <b>Captures are group-committed.</b> Concurrent <see cref="CaptureAsync"/> calls of one process wait in one queue; the first
/// of its four flushers that is free writes everything waiting in one round trip: one statement inserts the raw rows
/// (<c>unnest</c> of arrays, <c>ON CONFLICT DO NOTHING</c> on (provider, instance, sha256)) and one ingest job per instance
/// with new rows, in one implicit transaction. After the commit, other processes' ingest workers are woken (not when this
/// process's ingest worker takes the jobs, leased to it at insert: no other process could claim them). Bodies that were
/// already stored (a provider's retry) then get their duplicate counters raised in a second transaction. Each caller
/// returns after the commit that stored its row (or counted its duplicate). A body
/// sent twice in one group is inserted once (the later ones are its duplicates). Rows are inserted in (provider,
/// instance, sha256) order, so two hosts inserting the same bodies at once wait for each other in one order and never
/// deadlock; a host that meets a body another host is inserting waits for that transaction and then reports a duplicate
/// of the committed row (never a second row, never an id that does not exist).
/// </para>
/// <para>
/// <b>Ingest is safe across hosts.</b> <see cref="SaveEventsAsync"/> calls are group-committed too (one flusher per
/// process, groups in submission order, so saves submitted in arrival order store in that order). A group locks the
/// instance rows of its raw webhooks (<c>INSERT ... ON CONFLICT DO NOTHING</c>, then <c>SELECT ... FOR UPDATE</c>, in
/// (provider, instance) order), then the raw rows (id order), and only then reads which dedupe keys exist: under those
/// locks no other host can store events of those instances, so sequence numbers are gap-free and unique, a raw webhook
/// another host already ingested is seen as such and skipped, and a dedupe key is never stored twice.
/// </para>
/// <para>
/// Text columns cannot hold a NUL character or a lone UTF-16 surrogate (PostgreSQL text is UTF-8): such characters in
/// event fields, follow-up job keys and errors are stored as U+FFFD there; the event itself is kept in its JSON column as
/// <see cref="InboxEventSerializer"/> writes it.
/// </para>
/// </remarks>
internal sealed class PostgreSqlInboxStore : IInboxStore, IOrderedEventSaves, ICapturedBatchReads, IAsyncDisposable
{
    /// <summary>A capture group holds at most this many units: one per webhook plus one per 16 KB of body.</summary>
    private const int MaxCaptureUnits = 1000;
    private const int CaptureBodyUnit = 16 * 1024;

    /// <summary>
    /// Capture groups written at once (each on its own connection, in its own transaction, taken from the one queue by
    /// whichever flusher is free): while groups wait for their commit's WAL flush, the next ones' statements already run.
    /// Captures in flight at the same time have no order between them, so nothing is lost by writing them in parallel.
    /// Measured with 32 concurrent callers on 2 cores: four writers stored 19-24k webhooks/s, two 15-19k, eight no faster than four.
    /// </summary>
    private const int CaptureWriters = 4;
    /// <summary>
    /// Reads of chats' pending events (one per dispatch run) are combined the same way: what waits while a read runs goes in
    /// the next one, one statement for many chats, two at a time. So a host's dispatch concurrency costs round trips and
    /// connections per read in flight, not per chat.
    /// </summary>
    private const int PendingReaders = 2;

    /// <summary>Where <see cref="InboxSql.GetPendingEventsOfChats"/> puts the chat's position: after the event's columns.</summary>
    private static readonly int EventColumnCount = InboxSql.EventColumns.Split(',').Length;
    private const int MaxPendingReads = 500;
    private const int MaxSaveRows = 2000;
    private const int MaxMarkRows = 2000;
    private const int MaxText = 2000;
    private const string RawColumns = "id, provider, instance, received_at, sha256, content_type, headers, status, error, duplicates, event_count, processed_at";

    private readonly PostgreSqlJobStore _jobs;
    private readonly InboxSql _sql;
    private readonly GroupCommit<CaptureRequest, CaptureOutcome> _captures;
    private readonly GroupCommit<EventSave[], EventSaveResult[]> _saves;

    /// <summary>The columns <see cref="InboxSql.InsertDrains"/> returns for each drain it inserts.</summary>
    private const int DrainColumns = 8;

    /// <summary>This process's queue workers, which take the drain jobs an ingest leases to them (null: none are handed over).</summary>
    private readonly QueueSignals? _workers;
    private readonly GroupCommit<DispatchMark, bool> _marks;
    private readonly GroupCommit<PendingRead, List<StoredInboxEvent>> _pendingReads;

    public PostgreSqlInboxStore(PostgreSqlJobStore jobs, QueueSignals? workers = null)
    {
        _jobs = jobs;
        _workers = workers;
        _sql = new InboxSql("\"" + jobs.Schema + "\"");
        _captures = new GroupCommit<CaptureRequest, CaptureOutcome>(WriteCapturesAsync, static r => 1 + (r.Webhook.Body.Length / CaptureBodyUnit), MaxCaptureUnits, CaptureWriters);
        _saves = new GroupCommit<EventSave[], EventSaveResult[]>(WriteSaveUnitsAsync, static u => u.Sum(r => 1 + r.Events.Count), MaxSaveRows);
        _marks = new GroupCommit<DispatchMark, bool>(WriteMarksAsync, static _ => 1, MaxMarkRows);
        _pendingReads = new GroupCommit<PendingRead, List<StoredInboxEvent>>(ReadPendingAsync, static _ => 1, MaxPendingReads, PendingReaders);
    }

    /// <summary>How many capture groups were committed (fewer than captures means captures shared commits).</summary>
    internal long CaptureGroups => _captures.Groups;

    /// <summary>How many statements read chats' pending events (fewer than reads means reads shared statements).</summary>
    internal long PendingReadGroups => _pendingReads.Groups;

    /// <summary>How many ingest groups were committed.</summary>
    internal long SaveGroups => _saves.Groups;

    // ---------------------------------------------------------------- capture

    public Task<CaptureOutcome> CaptureAsync(RawWebhook webhook, NewJob ingestJob, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(webhook);
        ArgumentNullException.ThrowIfNull(ingestJob);
        return _captures.SubmitAsync(new CaptureRequest(webhook, ingestJob, new BodyKey(webhook.Provider, webhook.Instance, Convert.ToHexString(webhook.Sha256))), cancellationToken);
    }

    private async Task<CaptureOutcome[]> WriteCapturesAsync(IReadOnlyList<CaptureRequest> group, CancellationToken cancellationToken)
    {
        // The same body twice in the group: the first one is written, the others count as its duplicates.
        var leaders = new Dictionary<BodyKey, int>();
        var extra = new Dictionary<BodyKey, int>();
        for (var i = 0; i < group.Count; i++)
        {
            if (leaders.TryAdd(group[i].Key, i)) continue;
            extra[group[i].Key] = extra.GetValueOrDefault(group[i].Key) + 1;
        }

        // One lock order for every host: two groups holding the same bodies wait for each other, never in a cycle.
        var ordered = leaders.Values.ToList();
        ordered.Sort((a, b) => group[a].Key.CompareTo(group[b].Key));

        var inserted = new Dictionary<BodyKey, long>();
        var pending = ordered;
        var handedOver = false;
        if (SharedIngestJob(group) is { } ingestJob)
        {
            // Usually the whole group in one round trip: the new rows and their ingest jobs in one implicit transaction,
            // committed when the statement ends. Bodies stored before (a provider's retry) come back as not
            // inserted and are counted below. With this process's ingest worker running, the ingest jobs are inserted
            // leased to it and handed over once committed; no other process can claim them, so there is no one to wake.
            var taker = _workers?.TakerOf(ingestJob.Queue) is { Capacity: > 0 } ingestWorker ? ingestWorker : null;
            var leased = new List<ClaimedJob>();
            var now = _jobs.Now;
            await _jobs.WithConnectionAsync(async connection =>
            {
                inserted.Clear();
                leased.Clear();
                await using var batch = new NpgsqlBatch(connection);
                var insert = InsertRawCommand(_sql.InsertRawWithIngest, group, ordered, extra, ingestJob);
                insert.Parameters.Add(Text(taker?.Owner));
                insert.Parameters.Add(Timestamp(now + (taker?.LeaseDuration ?? TimeSpan.Zero)));
                batch.BatchCommands.Add(insert);
                var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                await using (reader.ConfigureAwait(false))
                {
                    // Rows without a sha256 are ingest jobs leased to this process's worker (payload: the instance's newest new row).
                    await ReadInsertedAsync(reader, inserted, cancellationToken, job => leased.Add(LeasedJob(job, ingestJob.Queue, null, job.GetString(1), now))).ConfigureAwait(false);
                }

                return true;
            }, cancellationToken, retryConflicts: true).ConfigureAwait(false);
            // With a worker here every instance's job is leased (they are due now): the captures need not wake it. Jobs it
            // no longer takes (it is stopping) are released to pending by then: other processes are woken for them.
            if (leased.Count > 0) handedOver = await _jobs.HandOverAsync(leased).ConfigureAwait(false);
            if (!handedOver && inserted.Count > 0) _jobs.WakeOthersAfterCommit([ingestJob.Queue]);
            pending = ordered.Where(i => !inserted.ContainsKey(group[i].Key)).ToList();
        }

        var existing = new Dictionary<BodyKey, long>();
        if (pending.Count > 0)
        {
            var (more, found) = await _jobs.InTransactionAsync((connection, transaction) =>
                CaptureInTransactionAsync(connection, transaction, group, pending, leaders, extra, cancellationToken), cancellationToken).ConfigureAwait(false);
            foreach (var (key, id) in more) inserted[key] = id;
            foreach (var (key, id) in found) existing[key] = id;
            if (more.Count > 0) _jobs.WakeOthersAfterCommit(pending.Select(i => group[i].IngestJob.Queue).Distinct());
        }

        var results = new CaptureOutcome[group.Count];
        for (var i = 0; i < group.Count; i++)
        {
            var key = group[i].Key;
            results[i] = inserted.TryGetValue(key, out var id)
                ? new CaptureOutcome(id, leaders[key] != i) { IngestHandedOver = handedOver }
                : new CaptureOutcome(existing[key], true);
        }

        return results;
    }

    /// <summary>
    /// The ingest job every capture of the group asked for, when they are alike (unkeyed, no dedupe key, one queue, priority
    /// and attempt limit: what <see cref="Capture.IInboxCapture"/> sends), with the earliest due time; else null.
    /// </summary>
    private static NewJob? SharedIngestJob(IReadOnlyList<CaptureRequest> group)
    {
        var first = group[0].IngestJob;
        var runAt = first.RunAt;
        foreach (var request in group)
        {
            var job = request.IngestJob;
            if (job.Key is not null || job.DedupeKey is not null || job.Queue != first.Queue || job.Priority != first.Priority || job.MaxAttempts != first.MaxAttempts) return null;
            if (job.RunAt < runAt) runAt = job.RunAt;
        }

        return first with { RunAt = runAt };
    }

    /// <summary>
    /// Stores <paramref name="rows"/> of the group in the caller's transaction: inserts what is new, counts the duplicates of
    /// what exists, and enqueues the ingest jobs of what it inserted.
    /// </summary>
    private async Task<(Dictionary<BodyKey, long> Inserted, Dictionary<BodyKey, long> Existing)> CaptureInTransactionAsync(NpgsqlConnection connection, NpgsqlTransaction transaction,
        IReadOnlyList<CaptureRequest> group, List<int> rows, Dictionary<BodyKey, int> leaders, Dictionary<BodyKey, int> extra, CancellationToken cancellationToken)
    {
        var inserted = new Dictionary<BodyKey, long>();
        var existing = new Dictionary<BodyKey, long>();
        var pending = rows;

        // Normally one pass: insert what is new, count the duplicates of what exists. A row found by neither (only if it
        // disappeared in between) is inserted again in the next pass.
        for (var pass = 1; pending.Count > 0; pass++)
        {
            if (pass > 3) throw new InvalidOperationException("A raw webhook was neither inserted nor found as a duplicate three times; nothing was stored.");
            await using (var batch = new NpgsqlBatch(connection, transaction) { BatchCommands = { InsertRawCommand(_sql.InsertRaw, group, pending, extra, null) } })
            {
                var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                await using (reader.ConfigureAwait(false)) await ReadInsertedAsync(reader, inserted, cancellationToken).ConfigureAwait(false);
            }

            var conflicts = pending.Where(i => !inserted.ContainsKey(group[i].Key)).ToList();
            if (conflicts.Count == 0) break;
            await CountDuplicatesAsync(connection, transaction, group, conflicts, extra, existing, cancellationToken).ConfigureAwait(false);
            pending = conflicts.Where(i => !existing.ContainsKey(group[i].Key)).ToList();
        }

        // One ingest job per instance with new rows, its payload the instance's highest new id: the job that ingests
        // that row has ingested every older captured row of the instance with it (oldest first), so all of this group's.
        var newRows = inserted
            .GroupBy(r => (r.Key.Provider, r.Key.Instance))
            .Select(g => g.MaxBy(r => r.Value))
            .OrderBy(r => r.Value)
            .ToList();
        if (newRows.Count > 0)
        {
            var ingest = newRows.Select(r => (NewJob)(group[leaders[r.Key]].IngestJob with { Payload = r.Value.ToString(CultureInfo.InvariantCulture) })).ToList();
            await _jobs.InsertJobsAsync(connection, transaction, ingest, null, cancellationToken).ConfigureAwait(false);
        }

        return (inserted, existing);
    }

    private static async Task ReadInsertedAsync(NpgsqlDataReader reader, Dictionary<BodyKey, long> inserted, CancellationToken cancellationToken, Action<NpgsqlDataReader>? leasedJob = null)
    {
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            if (leasedJob is not null && reader.IsDBNull(3))
            {
                leasedJob(reader);
                continue;
            }

            inserted[new BodyKey(reader.GetString(1), reader.GetString(2), Convert.ToHexString(reader.GetFieldValue<byte[]>(3)))] = reader.GetInt64(0);
        }

        while (await reader.NextResultAsync(cancellationToken).ConfigureAwait(false))
        {
            // Nothing else is expected; read past anything a statement appended.
        }
    }

    /// <summary>
    /// The insert of <paramref name="rows"/> (<see cref="InboxSql.InsertRaw"/>), or with <paramref name="ingestJob"/> the insert
    /// that also enqueues one ingest job per instance (<see cref="InboxSql.InsertRawWithIngest"/>).
    /// </summary>
    private NpgsqlBatchCommand InsertRawCommand(string sql, IReadOnlyList<CaptureRequest> group, List<int> rows, Dictionary<BodyKey, int> extra, NewJob? ingestJob)
    {
        var n = rows.Count;
        var providers = new string?[n];
        var instances = new string?[n];
        var receivedAts = new DateTimeOffset[n];
        var shas = new byte[n][];
        var bodies = new byte[n][];
        var contentTypes = new string?[n];
        var headers = new string?[n];
        var duplicates = new int[n];
        for (var r = 0; r < n; r++)
        {
            var request = group[rows[r]];
            var webhook = request.Webhook;
            providers[r] = webhook.Provider;
            instances[r] = webhook.Instance;
            receivedAts[r] = webhook.ReceivedAt.ToUniversalTime();
            shas[r] = webhook.Sha256;
            bodies[r] = AsArray(webhook.Body);
            contentTypes[r] = Clean(webhook.ContentType);
            headers[r] = webhook.Headers.Count == 0 ? null : InboxEventSerializer.SerializeHeaders(webhook.Headers);
            duplicates[r] = extra.GetValueOrDefault(request.Key);
        }

        var command = Command(sql, Texts(providers), Texts(instances), Timestamps(receivedAts), Byteas(shas), Byteas(bodies), Texts(contentTypes), Texts(headers), Integers(duplicates));
        if (ingestJob is not null)
        {
            command.Parameters.Add(Text(ingestJob.Queue));
            command.Parameters.Add(Integer(ingestJob.Priority));
            command.Parameters.Add(Integer(ingestJob.MaxAttempts));
            command.Parameters.Add(Timestamp(ingestJob.RunAt.ToUniversalTime()));
            command.Parameters.Add(Timestamp(_jobs.Now));
        }

        return command;
    }

    private async Task CountDuplicatesAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, IReadOnlyList<CaptureRequest> group, List<int> rows,
        Dictionary<BodyKey, int> extra, Dictionary<BodyKey, long> existing, CancellationToken cancellationToken)
    {
        // A fresh statement, so a fresh snapshot: it sees the rows the insert just waited for (committed by another host).
        await using var command = new NpgsqlCommand(_sql.CountDuplicates, connection, transaction);
        command.Parameters.Add(Texts(rows.Select(i => (string?)group[i].Webhook.Provider).ToArray()));
        command.Parameters.Add(Texts(rows.Select(i => (string?)group[i].Webhook.Instance).ToArray()));
        command.Parameters.Add(Byteas(rows.Select(i => group[i].Webhook.Sha256).ToArray()));
        command.Parameters.Add(Integers(rows.Select(i => 1 + extra.GetValueOrDefault(group[i].Key)).ToArray()));
        var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await using (reader.ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                existing[new BodyKey(reader.GetString(1), reader.GetString(2), Convert.ToHexString(reader.GetFieldValue<byte[]>(3)))] = reader.GetInt64(0);
            }
        }
    }

    // ---------------------------------------------------------------- raw webhooks

    public Task<StoredRawWebhook?> GetRawWebhookAsync(long id, CancellationToken cancellationToken = default) =>
        _jobs.WithConnectionAsync(async connection =>
        {
            await using var command = new NpgsqlCommand(_sql.GetRaw, connection);
            command.Parameters.Add(Bigint(id));
            var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                return await reader.ReadAsync(cancellationToken).ConfigureAwait(false) ? ReadRaw(reader, withBody: true) : null;
            }
        }, cancellationToken);

    public Task<IReadOnlyList<StoredRawWebhook>> GetCapturedRawWebhooksAsync(string provider, string instance, int limit, CancellationToken cancellationToken = default) =>
        _jobs.WithConnectionAsync(async connection =>
        {
            await using var command = new NpgsqlCommand(_sql.GetCaptured, connection);
            command.Parameters.Add(Text(provider));
            command.Parameters.Add(Text(instance));
            command.Parameters.Add(Integer(Math.Max(1, limit)));
            return await ReadRawListAsync(command, withBody: true, cancellationToken).ConfigureAwait(false);
        }, cancellationToken);

    public Task<IReadOnlyList<StoredRawWebhook>> GetCapturedBatchOfAsync(long rawWebhookId, int limit, CancellationToken cancellationToken = default) =>
        _jobs.WithConnectionAsync(async connection =>
        {
            await using var command = new NpgsqlCommand(_sql.GetCapturedBatchOf, connection);
            command.Parameters.Add(Bigint(rawWebhookId));
            command.Parameters.Add(Integer(Math.Max(1, limit)));
            return await ReadRawListAsync(command, withBody: true, cancellationToken).ConfigureAwait(false);
        }, cancellationToken);

    public Task MarkRawWebhookFailedAsync(long id, string reason, CancellationToken cancellationToken = default) =>
        _jobs.WithConnectionAsync(async connection =>
        {
            // UPDATE re-checks "status = 0" on the latest row version after any lock wait: a row another host ingested
            // meanwhile stays ingested.
            await using var command = new NpgsqlCommand(_sql.MarkFailed, connection);
            command.Parameters.Add(Bigint(id));
            command.Parameters.Add(Text(Clean(Truncate(reason ?? ""))));
            command.Parameters.Add(Timestamp(_jobs.Now));
            return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }, cancellationToken);

    public async Task<int> ReprocessRawWebhooksAsync(RawWebhookQuery filter, Func<StoredRawWebhook, NewJob> ingestJob, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(filter);
        ArgumentNullException.ThrowIfNull(ingestJob);
        var failed = await ListRawWebhooksAsync(filter with { Status = RawWebhookStatus.Failed, Limit = int.MaxValue }, cancellationToken).ConfigureAwait(false);
        if (failed.Count == 0) return 0;
        var byId = failed.ToDictionary(r => r.Id);
        string[] queues = [];
        var count = await _jobs.InTransactionAsync(async (connection, transaction) =>
        {
            // Only rows still failed (checked on the latest version, under the row lock) go back to captured.
            var reset = new List<long>();
            await using (var command = new NpgsqlCommand(_sql.Reprocess, connection, transaction))
            {
                command.Parameters.Add(Bigints(byId.Keys.Order().ToArray()));
                var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                await using (reader.ConfigureAwait(false))
                {
                    while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) reset.Add(reader.GetInt64(0));
                }
            }

            if (reset.Count == 0) return 0;
            reset.Sort();
            var jobs = reset.Select(id => (NewJob)(ingestJob(byId[id]) with { Payload = id.ToString(CultureInfo.InvariantCulture) })).ToList();
            await _jobs.InsertJobsAsync(connection, transaction, jobs, null, cancellationToken).ConfigureAwait(false);
            queues = jobs.Select(j => j.Queue).Distinct().ToArray();
            return reset.Count;
        }, cancellationToken).ConfigureAwait(false);
        _jobs.WakeOthersAfterCommit(queues);
        return count;
    }

    public Task<IReadOnlyList<StoredRawWebhook>> ListRawWebhooksAsync(RawWebhookQuery filter, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(filter);
        return _jobs.WithConnectionAsync(async connection =>
        {
            await using var command = new NpgsqlCommand { Connection = connection };
            var where = new StringBuilder("true");
            if (filter.Provider is not null) Add(" AND provider = $", Text(filter.Provider));
            if (filter.Instance is not null) Add(" AND instance = $", Text(filter.Instance));
            if (filter.Status is { } status) Add(" AND status = $", Integer((int)status));
            command.Parameters.Add(Integer(Math.Max(1, filter.Limit)));
            command.CommandText = $"SELECT {RawColumns} FROM {_sql.S}.raw_webhooks WHERE {where} ORDER BY id DESC LIMIT ${command.Parameters.Count.ToString(CultureInfo.InvariantCulture)}";
            return await ReadRawListAsync(command, withBody: false, cancellationToken).ConfigureAwait(false);

            void Add(string condition, NpgsqlParameter parameter)
            {
                command.Parameters.Add(parameter);
                where.Append(condition).Append(command.Parameters.Count.ToString(CultureInfo.InvariantCulture));
            }
        }, cancellationToken);
    }

    private static async Task<IReadOnlyList<StoredRawWebhook>> ReadRawListAsync(NpgsqlCommand command, bool withBody, CancellationToken cancellationToken)
    {
        var list = new List<StoredRawWebhook>();
        var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await using (reader.ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) list.Add(ReadRaw(reader, withBody));
        }

        return list;
    }

    private static StoredRawWebhook ReadRaw(NpgsqlDataReader reader, bool withBody) => new()
    {
        Id = reader.GetInt64(0),
        Provider = reader.GetString(1),
        Instance = reader.GetString(2),
        ReceivedAt = reader.GetFieldValue<DateTimeOffset>(3),
        Sha256 = reader.GetFieldValue<byte[]>(4),
        ContentType = reader.IsDBNull(5) ? null : reader.GetString(5),
        Headers = InboxEventSerializer.DeserializeHeaders(reader.IsDBNull(6) ? null : reader.GetString(6)),
        Status = (RawWebhookStatus)reader.GetInt16(7),
        Error = reader.IsDBNull(8) ? null : reader.GetString(8),
        Duplicates = reader.GetInt32(9),
        EventCount = reader.GetInt32(10),
        ProcessedAt = reader.IsDBNull(11) ? null : reader.GetFieldValue<DateTimeOffset>(11),
        Body = withBody ? reader.GetFieldValue<byte[]>(12) : ReadOnlyMemory<byte>.Empty,
    };

    // ---------------------------------------------------------------- ingest

    public Task<IngestOutcome> SaveEventsAsync(long rawWebhookId, IReadOnlyList<InboxEvent> events, Func<long, InboxEvent, EventFollowUp> followUp, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(events);
        ArgumentNullException.ThrowIfNull(followUp);
        return SaveOneAsync(new EventSave(rawWebhookId, events, followUp), cancellationToken);
    }

    private async Task<IngestOutcome> SaveOneAsync(EventSave save, CancellationToken cancellationToken)
    {
        // Refused for its data, the webhook is also marked failed (with the reason); the caller still gets the error.
        var result = (await _saves.SubmitAsync([save], cancellationToken).ConfigureAwait(false))[0];
        if (result.Outcome is { } outcome) return outcome;
        ExceptionDispatchInfo.Throw(result.Error!);
        return null!;
    }

    public async Task<IReadOnlyList<EventSaveResult>> SaveEventsInOrderAsync(IReadOnlyList<EventSave> saves, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(saves);
        if (saves.Count == 0) return [];
        return await _saves.SubmitAsync(saves.ToArray(), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Writes units of ordered saves (<see cref="IOrderedEventSaves"/>): all of them in one transaction. When that fails
    /// with a server error and there are several units, <see cref="GroupCommit{TRequest, TResult}"/> writes each unit
    /// again alone; a unit alone that the server refuses is written one save at a time, in order: a save refused for its
    /// own data (<see cref="RefusedForItsData"/>) is marked failed and the next one goes on; any other failure keeps the
    /// saves after it from being written (they report that error), so none of them commits ahead of an earlier one.
    /// </summary>
    private async Task<EventSaveResult[][]> WriteSaveUnitsAsync(IReadOnlyList<EventSave[]> units, CancellationToken cancellationToken)
    {
        var all = units.Count == 1 ? units[0] : units.SelectMany(u => u).ToArray();
        IngestOutcome[] outcomes;
        try
        {
            outcomes = await WriteSavesAsync(all, cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException ex) when (units.Count == 1 && RefusedForItsData(ex))
        {
            return [await WriteOneByOneAsync(units[0], ex, cancellationToken).ConfigureAwait(false)];
        }

        var results = new EventSaveResult[units.Count][];
        var next = 0;
        for (var u = 0; u < units.Count; u++)
        {
            results[u] = new EventSaveResult[units[u].Length];
            for (var i = 0; i < units[u].Length; i++) results[u][i] = EventSaveResult.Stored(outcomes[next++]);
        }

        return results;
    }

    private async Task<EventSaveResult[]> WriteOneByOneAsync(EventSave[] unit, PostgresException refused, CancellationToken cancellationToken)
    {
        var results = new EventSaveResult[unit.Length];
        for (var i = 0; i < unit.Length; i++)
        {
            try
            {
                // A unit of one was just refused: no need to write it again.
                if (unit.Length == 1) throw refused;
                results[i] = EventSaveResult.Stored((await WriteSavesAsync([unit[i]], cancellationToken).ConfigureAwait(false))[0]);
                continue;
            }
            catch (PostgresException ex) when (RefusedForItsData(ex))
            {
                var reason = $"The database refused this webhook's events ({ex.SqlState}: {ex.MessageText}).";
                try
                {
                    await MarkRawWebhookFailedAsync(unit[i].RawWebhookId, reason, cancellationToken).ConfigureAwait(false);
                    results[i] = new EventSaveResult(null, ex, MarkedFailed: true);
                    continue;
                }
                catch (Exception markFailed)
                {
                    results[i] = new EventSaveResult(null, markFailed);
                }
            }
            catch (Exception ex)
            {
                results[i] = new EventSaveResult(null, ex);
            }

            // Not stored and not marked failed: the saves after it wait (their webhooks stay captured, ingested again later).
            for (var j = i + 1; j < unit.Length; j++) results[j] = results[i] with { MarkedFailed = false };
            break;
        }

        return results;
    }

    /// <summary>
    /// True for errors about the data written (data exceptions, integrity constraints, program limits such as an index row
    /// too large): writing the same events again fails the same way. Connection, availability, resource and lock errors are
    /// not: the same write may work later.
    /// </summary>
    internal static bool RefusedForItsData(PostgresException ex) => ex.SqlState.Length == 5 && ex.SqlState[..2] is "22" or "23" or "54";

    private async Task<IngestOutcome[]> WriteSavesAsync(IReadOnlyList<EventSave> group, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                var drains = new DrainsInserted();
                var outcomes = await _jobs.InTransactionAsync((connection, transaction) =>
                {
                    drains.Clear();
                    return SaveGroupAsync(connection, transaction, group, drains, cancellationToken);
                }, cancellationToken).ConfigureAwait(false);

                // Every new drain taken by this process's worker: nothing waits for a claim, so ingest need not wake the
                // worker, nor other processes.
                var handedOver = drains.Leased.Count > 0 && await _jobs.HandOverAsync(drains.Leased).ConfigureAwait(false);
                if (handedOver && drains.Pending == 0)
                {
                    for (var i = 0; i < outcomes.Length; i++) outcomes[i] = outcomes[i] with { DispatchHandedOver = true };
                }
                else
                {
                    drains.JobQueues.UnionWith(drains.DrainQueues);
                }

                _jobs.WakeOthersAfterCommit(drains.JobQueues);

                return outcomes;
            }
            catch (PostgresException ex) when (attempt < 3 && ex.SqlState == PostgresErrorCodes.UniqueViolation && ex.ConstraintName == "ux_events_dedupe")
            {
                // Only possible for events whose dedupe key names another instance than their raw webhook's (whose lock
                // this group does not hold): rolled back; the next attempt sees that event and reports a duplicate.
            }
        }
    }

    /// <summary>
    /// A job a statement inserted leased to this process (attempt 1, lease token 1, started at <paramref name="now"/>), from
    /// the row it returned: id in column 0, max_attempts, priority and run_at in columns 4 to 6.
    /// </summary>
    private static ClaimedJob LeasedJob(NpgsqlDataReader reader, string queue, string? key, string payload, DateTimeOffset now) => new()
    {
        Lease = new JobLease(reader.GetInt64(0), 1),
        Queue = queue,
        Key = key,
        Payload = payload,
        Attempt = 1,
        MaxAttempts = reader.GetInt32(4),
        Priority = reader.GetInt32(5),
        CreatedAt = now,
        RunAt = reader.GetFieldValue<DateTimeOffset>(6),
        StartedAt = now,
    };

    /// <summary>
    /// One group of saves in one transaction and two round trips plus the commit: (1) lock the instances (created if
    /// new), then the raw rows, read which dedupe keys exist and take event ids; (2) insert the events, update the
    /// instances and the raw rows, and enqueue the chats' drain jobs (<see cref="AddDrains"/>). Other follow-up jobs
    /// (media downloads) take one more round trip (<see cref="PostgreSqlJobStore.InsertJobsAsync"/>).
    /// </summary>
    /// <remarks>
    /// The commit does not wait for the WAL flush (<c>synchronous_commit = off</c> for this transaction only): everything it
    /// writes is derived from raw webhooks that are already durable. A database crash before the WAL is flushed loses the
    /// ingest as a whole (events, jobs and the raw rows' status together); the raw webhooks are still captured and their
    /// ingest jobs still pending or leased, so they are ingested again, in the same order. A handler that already got one of
    /// those events (a drain handed over to this process starts right after this commit) gets it again, with the same
    /// idempotency key (the event's dedupe key): delivery is at least once.
    /// </remarks>
    private async Task<IngestOutcome[]> SaveGroupAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, IReadOnlyList<EventSave> group, DrainsInserted handover, CancellationToken cancellationToken)
    {
        var now = Microseconds(_jobs.Now);

        // A raw webhook named twice in one group (two ingest jobs got to it): the first save stores it, the second is a no-op.
        var firstOf = new Dictionary<long, int>();
        for (var g = 0; g < group.Count; g++) firstOf.TryAdd(group[g].RawWebhookId, g);
        var rawIds = firstOf.Keys.Order().ToArray();
        var eventCounts = rawIds.Select(id => group[firstOf[id]].Events.Count).ToArray();
        var keys = group.SelectMany(r => r.Events).Select(e => Clean(e.DedupeKey)).Distinct(StringComparer.Ordinal).ToArray();

        // 1. Each statement of the batch takes its snapshot after the locks of the ones before it were granted: the dedupe
        //    keys and the raw rows' status are read while no other host can store events of these instances.
        var instances = new Dictionary<(string Provider, string Instance), InstanceRow>();
        var raws = new Dictionary<long, (string Provider, string Instance, int Status)>();
        var taken = new HashSet<string>(StringComparer.Ordinal);
        var ids = new List<long>();
        await using (var batch = new NpgsqlBatch(connection, transaction))
        {
            batch.BatchCommands.Add(Command(_sql.EnsureInstances, Bigints(rawIds), Timestamp(now)));
            batch.BatchCommands.Add(Command(_sql.LockInstances, Bigints(rawIds)));
            batch.BatchCommands.Add(Command(_sql.LockRaw, Bigints(rawIds)));
            batch.BatchCommands.Add(Command(_sql.ExistingDedupeKeys, Texts(keys)));
            batch.BatchCommands.Add(Command(_sql.AllocateEventIds, Bigints(rawIds), Integers(eventCounts)));
            batch.BatchCommands.Add(Command(_jobs.Statements.GenericIndexPlansAsynchronousCommit)); // for the rest of the transaction
            var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                // The reader starts on the first statement that returns rows (the instance lock; the insert returns none).
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    instances[(reader.GetString(0), reader.GetString(1))] = new InstanceRow(reader.GetInt64(2), (InstanceStatus)reader.GetInt16(3));
                }

                await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) raws[reader.GetInt64(0)] = (reader.GetString(1), reader.GetString(2), reader.GetInt16(3));
                await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) taken.Add(reader.GetString(0));
                await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) ids.Add(reader.GetInt64(0));
                while (await reader.NextResultAsync(cancellationToken).ConfigureAwait(false))
                {
                    // set_config's row.
                }
            }
        }

        // 2. In submission order: a raw webhook no longer captured is a no-op; an event whose dedupe key exists (or came
        //    earlier in this group) is a duplicate; the others take the next sequence numbers and the ids taken above.
        ids.Sort();
        var nextId = 0;
        var plans = new Plan?[group.Count];
        var rows = new List<EventRow>();
        for (var g = 0; g < group.Count; g++)
        {
            var request = group[g];
            if (firstOf[request.RawWebhookId] != g || !raws.TryGetValue(request.RawWebhookId, out var raw) || raw.Status != (int)RawWebhookStatus.Captured) continue;

            // Captured again (reprocessed) after its instance was chosen for locking: its new ingest job stores it.
            if (!instances.TryGetValue((raw.Provider, raw.Instance), out var instance)) continue;
            var plan = new Plan(raw.Provider, raw.Instance);
            foreach (var e in request.Events)
            {
                var key = Clean(e.DedupeKey)!;
                if (!taken.Add(key))
                {
                    plan.Duplicates.Add(e);
                    continue;
                }

                if (nextId == ids.Count) throw new InvalidOperationException("PostgreSQL gave fewer event ids than the captured raw webhooks have events; nothing was stored.");
                var row = new EventRow(g, e, key, instance.NextSeq++, ids[nextId++]);
                plan.Rows.Add(row);
                rows.Add(row);
                instance.Status = InstanceStatuses.After(instance.Status, e);
            }

            instance.Touched = true;
            plans[g] = plan;
        }

        if (plans.All(p => p is null)) return group.Select(_ => new IngestOutcome([], [])).ToArray();

        // Follow-ups, called with each new event's id, in order: their jobs, and whether the media starts pending.
        var jobs = new List<NewJob>();
        var drains = new Dictionary<(string Queue, string Key, string Payload), NewJob>();
        var outcomes = new IngestOutcome[group.Count];
        for (var g = 0; g < group.Count; g++)
        {
            if (plans[g] is not { } plan)
            {
                outcomes[g] = new IngestOutcome([], []);
                continue;
            }

            var stored = new List<StoredInboxEvent>(plan.Rows.Count);
            foreach (var row in plan.Rows)
            {
                var next = group[g].FollowUp(row.Id, row.Event);
                foreach (var job in next.Jobs) jobs.Add(CleanJob(job));
                if (next.Drain is { } drain && CleanJob(drain) is var clean) drains.TryAdd((clean.Queue, clean.Key ?? "", clean.Payload), clean);
                row.MediaPending = next.MediaPending;
                var media = next.MediaPending ? new EventMedia(MediaStatus.Pending, MimeType: row.Event.Media?.MimeType) : EventMedia.None;
                stored.Add(new StoredInboxEvent(row.Id, row.Seq, group[g].RawWebhookId, row.Event, EventDispatchStatus.Pending) { CreatedAt = now, Media = media });
            }

            outcomes[g] = new IngestOutcome(stored, plan.Duplicates);
        }

        // 3. One round trip: the events, the instances, the raw rows, and the chats' drain jobs (keys locked first, the order
        //    every writer of keyed jobs takes them in; a drain whose pending twin exists is not inserted, and the twin's row is
        //    locked so no worker starts it before this commit: it delivers the new events too). Other follow-ups (media
        //    downloads) go through the job store's insert after it.
        var touched = instances.Where(i => i.Value.Touched).ToList();
        var rawDone = plans.Select((plan, g) => (Plan: plan, Id: group[g].RawWebhookId)).Where(p => p.Plan is not null).ToList();
        await using (var batch = new NpgsqlBatch(connection, transaction))
        {
            if (rows.Count > 0) batch.BatchCommands.Add(InsertEvents(group, plans, rows, now));
            batch.BatchCommands.Add(Command(_sql.UpdateInstances,
                Texts(touched.Select(i => (string?)i.Key.Provider).ToArray()), Texts(touched.Select(i => (string?)i.Key.Instance).ToArray()),
                Bigints(touched.Select(i => i.Value.NextSeq).ToArray()), Integers(touched.Select(i => (int)i.Value.Status).ToArray()), Timestamp(now)));
            batch.BatchCommands.Add(Command(_sql.MarkIngested, Bigints(rawDone.Select(r => r.Id).ToArray()), Integers(rawDone.Select(r => r.Plan!.Rows.Count).ToArray()), Timestamp(now)));
            if (drains.Count > 0) AddDrains(batch, drains.Values, now, handover.DrainQueues);
            var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                do
                {
                    // The drains leased to this process's worker (InsertDrains' rows; the key locks' row has one column).
                    while (reader.FieldCount == DrainColumns && await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        if (reader.GetInt16(7) != (short)JobStatus.Processing)
                        {
                            handover.Pending++;
                            continue;
                        }

                        handover.Leased.Add(LeasedJob(reader, reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetString(2), reader.GetString(3), now));
                    }
                }
                while (await reader.NextResultAsync(cancellationToken).ConfigureAwait(false));
            }
        }

        if (jobs.Count > 0)
        {
            var locked = drains.Keys.Select(d => (d.Queue, d.Key)).ToHashSet();
            var keysLocked = jobs.All(j => j.Key is null || locked.Contains((j.Queue, j.Key)));
            await _jobs.InsertJobsAsync(connection, transaction, jobs, null, cancellationToken, keysLocked).ConfigureAwait(false);
            foreach (var job in jobs) handover.JobQueues.Add(job.Queue);
        }

        return outcomes;
    }

    /// <summary>
    /// The statements that enqueue the chats' drain jobs: their keys' locks (in sorted order), the insert of those without a
    /// pending twin (<see cref="InboxSql.InsertDrains"/>); their queues go in <paramref name="wake"/>, to wake other processes
    /// after the commit.
    /// </summary>
    private void AddDrains(NpgsqlBatch batch, IEnumerable<NewJob> drains, DateTimeOffset now, HashSet<string> wake)
    {
        var sorted = drains.OrderBy(d => d.Queue, StringComparer.Ordinal).ThenBy(d => d.Key, StringComparer.Ordinal).ThenBy(d => d.Payload, StringComparer.Ordinal).ToList();
        var queues = sorted.Select(d => (string?)d.Queue).ToArray();

        // A drain that can start at once (its key free, due now) is inserted leased to this process's worker of its queue,
        // when one runs here: handed over after the commit, it starts without a claim.
        var takers = queues.Distinct(StringComparer.Ordinal).ToDictionary(q => q!, q => _workers?.TakerOf(q!), StringComparer.Ordinal);
        var owners = sorted.Select(d => takers[d.Queue]?.Owner).ToArray();
        var expiries = sorted.Select(d => now + (takers[d.Queue]?.LeaseDuration ?? TimeSpan.Zero)).ToArray();
        var capacities = sorted.Select(d => takers[d.Queue]?.Capacity ?? 0).ToArray(); // the most of its queue's drains to lease
        var keys = sorted.Select(d => d.Key).ToArray();
        var firstOfKey = new HashSet<(string, string?)>();
        var candidates = sorted.Select(d => firstOfKey.Add((d.Queue, d.Key))).ToArray(); // only a key's first job may become its head
        batch.BatchCommands.Add(Command(_jobs.Statements.LockKeysOfArrays, Texts(queues), Texts(keys)));
        batch.BatchCommands.Add(Command(_sql.InsertDrains, Texts(queues), Texts(keys), Texts(sorted.Select(d => (string?)d.Payload).ToArray()),
            Integers(sorted.Select(d => d.Priority).ToArray()), Integers(sorted.Select(d => d.MaxAttempts).ToArray()),
            Timestamps(sorted.Select(d => d.RunAt.ToUniversalTime()).ToArray()), Booleans(candidates), Timestamp(now), Texts(owners), Timestamps(expiries), Integers(capacities)));
        foreach (var queue in queues) wake.Add(queue!);
    }

    private NpgsqlBatchCommand InsertEvents(IReadOnlyList<EventSave> group, Plan?[] plans, List<EventRow> rows, DateTimeOffset now)
    {
        var n = rows.Count;
        var ids = new long[n];
        var providers = new string?[n];
        var instances = new string?[n];
        var seqs = new long[n];
        var kinds = new int[n];
        var externalIds = new string?[n];
        var dedupeKeys = new string?[n];
        var chatIds = new string?[n];
        var senderIds = new string?[n];
        var fromMe = new bool[n];
        var occurredAts = new DateTimeOffset[n];
        var messageTypes = new int[n];
        var statuses = new int?[n];
        var bodies = new string?[n];
        var rawIds = new long[n];
        var mimes = new string?[n];
        var mediaStatuses = new int[n];
        for (var r = 0; r < n; r++)
        {
            var row = rows[r];
            var e = row.Event;
            var plan = plans[row.Group]!;
            ids[r] = row.Id;
            providers[r] = plan.Provider;
            instances[r] = plan.Instance;
            seqs[r] = row.Seq;
            kinds[r] = (int)e.Kind;
            externalIds[r] = Clean(e.ExternalId);
            dedupeKeys[r] = row.Key;
            chatIds[r] = Clean(e.ChatId);
            senderIds[r] = Clean(e.SenderId);
            fromMe[r] = e.FromMe;
            occurredAts[r] = e.OccurredAt.ToUniversalTime();
            messageTypes[r] = (int)e.MessageType;
            statuses[r] = e.Status is { } status ? (int)status : null;
            bodies[r] = InboxEventSerializer.Serialize(e);
            rawIds[r] = group[row.Group].RawWebhookId;
            mimes[r] = Clean(e.Media?.MimeType);
            mediaStatuses[r] = row.MediaPending ? (int)MediaStatus.Pending : (int)MediaStatus.None;
        }

        return Command(_sql.InsertEvents,
            Bigints(ids), Texts(providers), Texts(instances), Bigints(seqs), Integers(kinds), Texts(externalIds), Texts(dedupeKeys), Texts(chatIds), Texts(senderIds),
            Booleans(fromMe), Timestamps(occurredAts), Integers(messageTypes), new NpgsqlParameter { Value = statuses, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Integer },
            Texts(bodies), Bigints(rawIds), Texts(mimes), Integers(mediaStatuses), Timestamp(now));
    }

    // ---------------------------------------------------------------- events

    public Task<StoredInboxEvent?> GetEventAsync(long id, CancellationToken cancellationToken = default) =>
        _jobs.WithConnectionAsync(async connection =>
        {
            await using var command = new NpgsqlCommand(_sql.GetEvent, connection);
            command.Parameters.Add(Bigint(id));
            var events = await ReadEventsAsync(command, cancellationToken).ConfigureAwait(false);
            return events.Count > 0 ? events[0] : null;
        }, cancellationToken);

    public async Task<IReadOnlyList<StoredInboxEvent>> GetPendingEventsAsync(string provider, string instance, string chatId, int limit, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(provider);
        ArgumentNullException.ThrowIfNull(instance);
        return await _pendingReads.SubmitAsync(new PendingRead(provider, instance, Clean(chatId ?? "")!, Math.Max(1, limit)), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Reads the pending events of every chat in the group in one statement (each chat's oldest first, up to its limit).</summary>
    private Task<List<StoredInboxEvent>[]> ReadPendingAsync(IReadOnlyList<PendingRead> group, CancellationToken cancellationToken) =>
        _jobs.WithConnectionAsync(async connection =>
        {
            await using var batch = new NpgsqlBatch(connection);
            batch.BatchCommands.Add(Command(_jobs.Statements.GenericIndexPlans)); // one index probe per chat, whatever a cached plan saw
            batch.BatchCommands.Add(Command(_sql.GetPendingEventsOfChats,
                Texts(group.Select(r => (string?)r.Provider).ToArray()), Texts(group.Select(r => (string?)r.Instance).ToArray()),
                Texts(group.Select(r => (string?)r.Chat).ToArray()), Integers(group.Select(r => r.Limit).ToArray())));
            var results = group.Select(_ => new List<StoredInboxEvent>()).ToArray();
            var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                await reader.NextResultAsync(cancellationToken).ConfigureAwait(false); // past set_config's row
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    results[reader.GetInt64(EventColumnCount) - 1].Add(StoredEventReader.Read(reader, static (r, i) => r.GetFieldValue<DateTimeOffset>(i)));
                }
            }

            return results;
        }, cancellationToken);

    private static async Task<List<StoredInboxEvent>> ReadEventsAsync(NpgsqlCommand command, CancellationToken cancellationToken)
    {
        var list = new List<StoredInboxEvent>();
        var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await using (reader.ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                list.Add(StoredEventReader.Read(reader, static (r, i) => r.GetFieldValue<DateTimeOffset>(i)));
            }
        }

        return list;
    }

    public Task<int> RecordDispatchFailureAsync(long id, string error, CancellationToken cancellationToken = default) =>
        _jobs.WithConnectionAsync(async connection =>
        {
            await using var command = new NpgsqlCommand(_sql.RecordDispatchFailure, connection);
            command.Parameters.Add(Bigint(id));
            command.Parameters.Add(Text(Clean(Truncate(error ?? ""))));
            return Convert.ToInt32(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) ?? 0, CultureInfo.InvariantCulture);
        }, cancellationToken);

    public async Task SetMediaAsync(long eventId, EventMedia media, NewJob? followUp, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(media);
        await _jobs.InTransactionAsync(async (connection, transaction) =>
        {
            await using (var command = new NpgsqlCommand(_sql.SetMedia, connection, transaction))
            {
                command.Parameters.Add(Bigint(eventId));
                command.Parameters.Add(Integer((int)media.Status));
                command.Parameters.Add(Text(Clean(media.Key)));
                command.Parameters.Add(new NpgsqlParameter { Value = (object?)media.Size ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Bigint });
                command.Parameters.Add(Text(Clean(media.MimeType)));
                command.Parameters.Add(Text(Clean(media.Sha256)));
                command.Parameters.Add(Text(Clean(media.Error is null ? null : Truncate(media.Error))));
                command.Parameters.Add(Timestamp(_jobs.Now));
                await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            if (followUp is not null) await _jobs.InsertJobsAsync(connection, transaction, [CleanJob(followUp)], null, cancellationToken).ConfigureAwait(false);
            return true;
        }, cancellationToken).ConfigureAwait(false);
        if (followUp is not null) _jobs.WakeOthersAfterCommit([followUp.Queue]);
    }

    public Task<IReadOnlyDictionary<MediaStatus, long>> CountMediaAsync(CancellationToken cancellationToken = default) =>
        _jobs.WithConnectionAsync(async connection =>
        {
            await using var command = new NpgsqlCommand(_sql.CountMedia, connection);
            var counts = new Dictionary<MediaStatus, long>();
            var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) counts[(MediaStatus)reader.GetInt16(0)] = reader.GetInt64(1);
            }

            return (IReadOnlyDictionary<MediaStatus, long>)counts;
        }, cancellationToken);

    public Task MarkEventDispatchAsync(long id, EventDispatchStatus status, string? error, CancellationToken cancellationToken = default) =>
        _marks.SubmitAsync(new DispatchMark(id, status, Clean(error is null ? null : Truncate(error))), cancellationToken);

    /// <summary>A group of dispatch outcomes in one statement (the last one per event wins, as if applied in order).</summary>
    private Task<bool[]> WriteMarksAsync(IReadOnlyList<DispatchMark> group, CancellationToken cancellationToken)
    {
        var last = new SortedDictionary<long, DispatchMark>();
        foreach (var mark in group) last[mark.Id] = mark;
        var marks = last.Values.ToList();
        // One round trip, one implicit transaction. Asynchronous commit, as for ingest: the dispatch job's completion, a
        // synchronous commit that follows, flushes it.
        return _jobs.WithConnectionAsync(async connection =>
        {
            await using var batch = new NpgsqlBatch(connection);
            batch.BatchCommands.Add(Command(_jobs.Statements.GenericIndexPlansAsynchronousCommit));
            batch.BatchCommands.Add(Command(_sql.MarkDispatch,
                Bigints(marks.Select(m => m.Id).ToArray()), Integers(marks.Select(m => (int)m.Status).ToArray()), Texts(marks.Select(m => m.Error).ToArray())));
            await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            return group.Select(_ => true).ToArray();
        }, cancellationToken, retryConflicts: true);
    }

    // ---------------------------------------------------------------- instances

    public Task<InstanceState?> GetInstanceAsync(string provider, string instance, CancellationToken cancellationToken = default) =>
        _jobs.WithConnectionAsync(async connection =>
        {
            await using var command = new NpgsqlCommand(_sql.GetInstance, connection);
            command.Parameters.Add(Text(provider));
            command.Parameters.Add(Text(instance));
            var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) return null;
                return new InstanceState(provider, instance, (InstanceStatus)reader.GetInt16(0), reader.GetFieldValue<DateTimeOffset>(1),
                    reader.IsDBNull(2) ? null : reader.GetFieldValue<DateTimeOffset>(2));
            }
        }, cancellationToken);

    // ---------------------------------------------------------------- helpers

    public async ValueTask DisposeAsync()
    {
        await _captures.DisposeAsync().ConfigureAwait(false);
        await _saves.DisposeAsync().ConfigureAwait(false);
        await _marks.DisposeAsync().ConfigureAwait(false);
        await _pendingReads.DisposeAsync().ConfigureAwait(false);
    }

    private static NpgsqlParameter Byteas(byte[][] values) => new() { Value = values, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea };

    private static byte[] AsArray(ReadOnlyMemory<byte> body) =>
        MemoryMarshal.TryGetArray(body, out var segment) && segment.Offset == 0 && segment.Count == segment.Array!.Length ? segment.Array : body.ToArray();

    /// <summary>PostgreSQL keeps microseconds: what is returned is what a later read gives.</summary>
    private static DateTimeOffset Microseconds(DateTimeOffset value)
    {
        var utc = value.ToUniversalTime();
        return new DateTimeOffset(utc.Ticks - (utc.Ticks % 10), TimeSpan.Zero);
    }

    private static string Truncate(string value) => value.Length <= MaxText ? value : value[..MaxText];

    private static NewJob CleanJob(NewJob job) => job with { Queue = Clean(job.Queue)!, Payload = Clean(job.Payload)!, Key = Clean(job.Key), DedupeKey = Clean(job.DedupeKey) };

    /// <summary>Replaces what a PostgreSQL text value cannot hold (NUL, a lone surrogate) with U+FFFD; usually returns the value itself.</summary>
    internal static string? Clean(string? value)
    {
        if (value is null) return null;
        var i = 0;
        for (; i < value.Length; i++)
        {
            var c = value[i];
            if (c == '\0' || char.IsSurrogate(c)) break;
        }

        if (i == value.Length) return value;
        var builder = new StringBuilder(value.Length).Append(value, 0, i);
        for (; i < value.Length; i++)
        {
            var c = value[i];
            if (char.IsHighSurrogate(c) && i + 1 < value.Length && char.IsLowSurrogate(value[i + 1]))
            {
                builder.Append(c).Append(value[++i]);
            }
            else
            {
                builder.Append(c == '\0' || char.IsSurrogate(c) ? '\uFFFD' : c);
            }
        }

        return builder.ToString();
    }

    private readonly record struct BodyKey(string Provider, string Instance, string Sha256Hex) : IComparable<BodyKey>
    {
        public int CompareTo(BodyKey other)
        {
            var c = string.CompareOrdinal(Provider, other.Provider);
            if (c == 0) c = string.CompareOrdinal(Instance, other.Instance);
            return c != 0 ? c : string.CompareOrdinal(Sha256Hex, other.Sha256Hex);
        }
    }

    private sealed record CaptureRequest(RawWebhook Webhook, NewJob IngestJob, BodyKey Key);

    private sealed record PendingRead(string Provider, string Instance, string Chat, int Limit);

    private sealed record DispatchMark(long Id, EventDispatchStatus Status, string? Error);

    /// <summary>The drain jobs an ingest transaction inserted: those leased to this process's worker, and how many wait for a claim.</summary>
    private sealed class DrainsInserted
    {
        public List<ClaimedJob> Leased { get; } = [];

        /// <summary>Drains inserted not leased here (any host's worker may claim them, or they wait behind their key's head).</summary>
        public int Pending { get; set; }

        /// <summary>The queues of the drains inserted.</summary>
        public HashSet<string> DrainQueues { get; } = new(StringComparer.Ordinal);

        /// <summary>The queues of the other follow-up jobs inserted (media downloads).</summary>
        public HashSet<string> JobQueues { get; } = new(StringComparer.Ordinal);

        public void Clear()
        {
            Leased.Clear();
            Pending = 0;
            DrainQueues.Clear();
            JobQueues.Clear();
        }
    }

    private sealed class InstanceRow(long nextSeq, InstanceStatus status)
    {
        public long NextSeq { get; set; } = nextSeq;

        public InstanceStatus Status { get; set; } = status;

        public bool Touched { get; set; }
    }

    private sealed class Plan(string provider, string instance)
    {
        public string Provider { get; } = provider;

        public string Instance { get; } = instance;

        public List<EventRow> Rows { get; } = [];

        public List<InboxEvent> Duplicates { get; } = [];
    }

    private sealed class EventRow(int group, InboxEvent inboxEvent, string key, long seq, long id)
    {
        public int Group { get; } = group;

        public InboxEvent Event { get; } = inboxEvent;

        public string Key { get; } = key;

        public long Seq { get; } = seq;

        public long Id { get; } = id;

        public bool MediaPending { get; set; }
    }

    /// <summary>The webhook pipeline's statements for one schema (quoted; validated by the options). Every value is a parameter.</summary>
    private sealed class InboxSql(string schema)
    {
        public string S { get; } = schema;

        public string InsertRaw { get; } = RawInsert(schema);

        /// <summary>
        /// <see cref="InsertRaw"/> plus one ingest job per instance with new rows ($9 queue, $10 priority, $11 attempt limit,
        /// $12 due, $13 now), its payload the instance's highest new id, in the same statement.
        /// </summary>
        public string InsertRawWithIngest { get; } = $"""
            WITH ins AS (
            {RawInsert(schema)}),
            ingest AS (
                INSERT INTO {schema}.jobs ({Sql.NewJobColumns}, lease_owner, lease_expires_at, lease_token, started_at)
                SELECT $9, NULL, true, j.payload, j.status, $10, j.status, $11, $12, NULL, $13,
                       CASE WHEN j.status = 1 THEN $14 END, CASE WHEN j.status = 1 THEN $15 END, j.status, CASE WHEN j.status = 1 THEN $13 END
                FROM (SELECT max(i.id)::text AS payload, CASE WHEN $14::text IS NOT NULL AND $12 <= $13 THEN 1 ELSE 0 END AS status
                      FROM ins i GROUP BY i.provider, i.instance ORDER BY max(i.id)) AS j
                RETURNING id, payload, status, max_attempts, priority, run_at)
            SELECT id, provider, instance, sha256, NULL::integer AS max_attempts, NULL::integer AS priority, NULL::timestamptz AS run_at FROM ins
            UNION ALL
            SELECT id, payload, NULL, NULL, max_attempts, priority, run_at FROM ingest WHERE status = 1
            """;

        /// <summary>The insert of raw rows (<c>unnest</c> of arrays $1-$8, in array order), skipping bodies stored before; returns what it inserted.</summary>
        private static string RawInsert(string schema) => $"""
            INSERT INTO {schema}.raw_webhooks (provider, instance, received_at, sha256, body, content_type, headers, status, duplicates)
            SELECT t.provider, t.instance, t.received_at, t.sha256, t.body, t.content_type, t.headers, 0, t.duplicates
            FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::bytea[], $5::bytea[], $6::text[], $7::text[], $8::integer[])
                 WITH ORDINALITY AS t(provider, instance, received_at, sha256, body, content_type, headers, duplicates, ord)
            ORDER BY t.ord
            ON CONFLICT (provider, instance, sha256) DO NOTHING
            RETURNING id, provider, instance, sha256
            """;

        /// <summary>Locks the existing rows in id order (MATERIALIZED: locked once), then adds to their counters.</summary>
        public string CountDuplicates { get; } = $"""
            WITH l AS MATERIALIZED (
                SELECT r.id, d.n FROM {schema}.raw_webhooks r
                JOIN unnest($1::text[], $2::text[], $3::bytea[], $4::integer[]) AS d(provider, instance, sha256, n)
                  ON r.provider = d.provider AND r.instance = d.instance AND r.sha256 = d.sha256
                ORDER BY r.id
                FOR UPDATE OF r)
            UPDATE {schema}.raw_webhooks r SET duplicates = r.duplicates + l.n FROM l WHERE r.id = l.id
            RETURNING r.id, r.provider, r.instance, r.sha256
            """;

        public string GetRaw { get; } = $"SELECT {RawColumns}, body FROM {schema}.raw_webhooks WHERE id = $1";

        public string GetCaptured { get; } = $"SELECT {RawColumns}, body FROM {schema}.raw_webhooks WHERE status = 0 AND provider = $1 AND instance = $2 ORDER BY id LIMIT $3";

        /// <summary>The captured webhooks of raw webhook $1's instance, when $1 itself is still captured (ingest's first read).</summary>
        public string GetCapturedBatchOf { get; } = $"""
            SELECT {RawColumns}, body FROM {schema}.raw_webhooks
            WHERE status = 0 AND (provider, instance) = (SELECT o.provider, o.instance FROM {schema}.raw_webhooks o WHERE o.id = $1 AND o.status = 0)
            ORDER BY id LIMIT $2
            """;

        public string MarkFailed { get; } = $"UPDATE {schema}.raw_webhooks SET status = 2, error = $2, processed_at = $3 WHERE id = $1 AND status = 0";

        /// <summary>Locks in id order, like ingest does, so the two never wait for each other in a cycle.</summary>
        public string Reprocess { get; } = $"""
            WITH l AS MATERIALIZED (SELECT r.id FROM {schema}.raw_webhooks r WHERE r.id = ANY($1::bigint[]) AND r.status = 2 ORDER BY r.id FOR UPDATE OF r)
            UPDATE {schema}.raw_webhooks r SET status = 0, error = NULL, processed_at = NULL FROM l WHERE r.id = l.id AND r.status = 2
            RETURNING r.id
            """;

        public string EnsureInstances { get; } = $"""
            INSERT INTO {schema}.instances (provider, instance, status, changed_at)
            SELECT DISTINCT r.provider, r.instance, 0::smallint, $2::timestamptz FROM {schema}.raw_webhooks r WHERE r.id = ANY($1::bigint[]) AND r.status = 0
            ORDER BY 1, 2
            ON CONFLICT (provider, instance) DO NOTHING
            """;

        public string LockInstances { get; } = $"""
            SELECT i.provider, i.instance, i.next_seq, i.status FROM {schema}.instances i
            WHERE (i.provider, i.instance) IN (SELECT r.provider, r.instance FROM {schema}.raw_webhooks r WHERE r.id = ANY($1::bigint[]) AND r.status = 0)
            ORDER BY i.provider, i.instance
            FOR UPDATE OF i
            """;

        /// <summary>
        /// Only rows still captured are locked (a row lock is a write): "status = 0" is checked again on the newest version
        /// after a wait for another transaction's lock, so a row another host ingested meanwhile is not returned.
        /// </summary>
        public string LockRaw { get; } = $"SELECT r.id, r.provider, r.instance, r.status FROM {schema}.raw_webhooks r WHERE r.id = ANY($1::bigint[]) AND r.status = 0 ORDER BY r.id FOR UPDATE OF r";

        public string ExistingDedupeKeys { get; } = $"SELECT e.dedupe_key FROM {schema}.events e WHERE e.dedupe_key = ANY($1::text[])";

        /// <summary>The ids were taken from the identity's sequence before (<see cref="AllocateEventIds"/>), so follow-up jobs could be built first.</summary>
        public string InsertEvents { get; } = $"""
            INSERT INTO {schema}.events (id, provider, instance, seq, kind, external_id, dedupe_key, chat_id, sender_id, from_me, occurred_at, message_type, status, body, raw_id,
                                         media_mime, media_status, media_updated_at, created_at)
            OVERRIDING SYSTEM VALUE
            SELECT t.id, t.provider, t.instance, t.seq, t.kind, t.external_id, t.dedupe_key, t.chat_id, t.sender_id, t.from_me, t.occurred_at, t.message_type, t.status, t.body, t.raw_id,
                   t.media_mime, t.media_status, CASE WHEN t.media_status <> 0 THEN $18 END, $18
            FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::integer[], $6::text[], $7::text[], $8::text[], $9::text[], $10::boolean[], $11::timestamptz[],
                        $12::integer[], $13::integer[], $14::text[], $15::bigint[], $16::text[], $17::integer[])
                 WITH ORDINALITY AS t(id, provider, instance, seq, kind, external_id, dedupe_key, chat_id, sender_id, from_me, occurred_at, message_type, status, body, raw_id,
                                      media_mime, media_status, ord)
            ORDER BY t.ord
            """;

        /// <summary>As many ids as the still-captured raw webhooks of the group have events (a duplicate leaves one unused).</summary>
        public string AllocateEventIds { get; } = $"""
            SELECT nextval(pg_get_serial_sequence('{schema}.events', 'id')) FROM generate_series(1, (
                SELECT coalesce(sum(t.n), 0)::integer FROM unnest($1::bigint[], $2::integer[]) AS t(id, n)
                JOIN {schema}.raw_webhooks r ON r.id = t.id WHERE r.status = 0))
            """;

        public string UpdateInstances { get; } = $"""
            UPDATE {schema}.instances i SET next_seq = t.next_seq, last_webhook_at = $5, status = t.status,
                   changed_at = CASE WHEN i.status = t.status THEN i.changed_at ELSE $5 END
            FROM unnest($1::text[], $2::text[], $3::bigint[], $4::integer[]) AS t(provider, instance, next_seq, status)
            WHERE i.provider = t.provider AND i.instance = t.instance
            """;

        public string MarkIngested { get; } = $"""
            UPDATE {schema}.raw_webhooks r SET status = 1, event_count = t.c, processed_at = $3, error = NULL
            FROM unnest($1::bigint[], $2::integer[]) AS t(id, c) WHERE r.id = t.id
            """;

        public const string EventColumns = "id, seq, raw_id, body, dispatch_status, created_at, media_status, media_key, media_size, media_mime, media_sha256, media_error, dispatch_attempts";

        public string GetEvent { get; } = $"SELECT {EventColumns} FROM {schema}.events WHERE id = $1";

        /// <summary>
        /// For each (provider, instance, chat, limit) of the arrays, that chat's pending events oldest first (one probe of
        /// <c>ix_events_pending</c> each), each row ending with the 1-based position of its chat in the arrays.
        /// </summary>
        public string GetPendingEventsOfChats { get; } = $"""
            SELECT e.*, r.ord FROM unnest($1::text[], $2::text[], $3::text[], $4::integer[]) WITH ORDINALITY AS r(provider, instance, chat, lim, ord)
            CROSS JOIN LATERAL (
                SELECT {EventColumns} FROM {schema}.events
                WHERE provider = r.provider AND instance = r.instance AND coalesce(chat_id, '') = r.chat AND dispatch_status = 0
                ORDER BY seq LIMIT r.lim) AS e
            ORDER BY r.ord, e.seq
            """;

        public string RecordDispatchFailure { get; } = $"UPDATE {schema}.events SET dispatch_attempts = dispatch_attempts + 1, dispatch_error = $2 WHERE id = $1 RETURNING dispatch_attempts";

        // Pending drain jobs (not started) of the given queue, key and payload, locked so no worker starts one before this
        // transaction commits: a worker that starts it afterwards sees the events stored with it. One index probe per key;
        // the keys come sorted and their advisory locks are held, so no other writer waits for these rows (claims skip them).
        /// <summary>
        /// Inserts the drain jobs (no dedupe key; one per chat key) whose pending twin (same queue, key and payload, not
        /// started) does not exist, and locks the twins that do, so no worker starts them before this commit. Run under the
        /// keys' locks: a drain is its key's head when the key has no live job. A head that is due, with an owner in $9 (this
        /// process's worker of its queue), is inserted processing, leased to that owner until $10 (token 1, attempt 1), and
        /// handed over after the commit, up to that worker's free capacity $11 per queue (the others wait for a claim); the
        /// rows come back with their status.
        /// </summary>
        public string InsertDrains { get; } = $"""
            WITH d AS MATERIALIZED (
                SELECT t.*, x.twin FROM unnest($1::text[], $2::text[], $3::text[], $4::integer[], $5::integer[], $6::timestamptz[], $7::boolean[], $9::text[], $10::timestamptz[], $11::integer[])
                     WITH ORDINALITY AS t(queue, key, payload, priority, max_attempts, run_at, cand, owner, expires, capacity, ord)
                LEFT JOIN LATERAL (
                    SELECT true AS twin FROM {schema}.jobs j
                    WHERE j.queue = t.queue AND j.key = t.key AND j.key IS NOT NULL AND j.status = 0 AND j.payload = t.payload
                    FOR UPDATE) AS x ON true),
            h AS (
                SELECT d.*, d.cand AND {Sql.KeyHasNoLiveJob(schema, "d")} AS head
                FROM d WHERE d.twin IS NULL),
            s AS (SELECT h.*, h.head AND h.owner IS NOT NULL AND h.run_at <= $8 AS startable FROM h),
            l AS (SELECT s.*, s.startable AND count(*) FILTER (WHERE s.startable) OVER (PARTITION BY s.queue ORDER BY s.ord) <= s.capacity AS leased FROM s)
            INSERT INTO {schema}.jobs ({Sql.NewJobColumns}, lease_owner, lease_expires_at, lease_token, started_at)
            SELECT l.queue, l.key, l.head, l.payload, CASE WHEN l.leased THEN 1 ELSE 0 END, l.priority, CASE WHEN l.leased THEN 1 ELSE 0 END,
                   l.max_attempts, l.run_at, NULL, $8,
                   CASE WHEN l.leased THEN l.owner END, CASE WHEN l.leased THEN l.expires END, CASE WHEN l.leased THEN 1 ELSE 0 END, CASE WHEN l.leased THEN $8 END
            FROM l
            ORDER BY l.ord
            RETURNING id, queue, key, payload, max_attempts, priority, run_at, status
            """;

        public string SetMedia { get; } = $"""
            UPDATE {schema}.events SET media_status = $2, media_key = $3, media_size = $4, media_mime = COALESCE($5, media_mime), media_sha256 = $6,
                   media_error = $7, media_updated_at = $8
            WHERE id = $1
            """;

        public string CountMedia { get; } = $"SELECT media_status, count(*) FROM {schema}.events WHERE media_status <> 0 GROUP BY media_status";

        public string MarkDispatch { get; } = $"""
            UPDATE {schema}.events e SET dispatch_status = t.s, dispatch_error = t.e
            FROM unnest($1::bigint[], $2::integer[], $3::text[]) AS t(id, s, e) WHERE e.id = t.id
            """;

        public string GetInstance { get; } = $"SELECT status, changed_at, last_webhook_at FROM {schema}.instances WHERE provider = $1 AND instance = $2";
    }
}
