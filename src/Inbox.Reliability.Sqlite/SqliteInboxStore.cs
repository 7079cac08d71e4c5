using System.Globalization;
using System.Text;
using Inbox.Reliability.Events;
using Inbox.Reliability.Storage;
using Microsoft.Data.Sqlite;

namespace Inbox.Reliability.Sqlite;

/// <summary>
/// The webhook pipeline's tables on the same SQLite database and writer as the jobs, so a raw webhook and its ingest job,
/// or events and their dispatch jobs, commit together (and concurrent captures share one commit).
/// </summary>
internal sealed class SqliteInboxStore(SqliteJobStore jobs) : IInboxStore, IOrderedEventSaves
{
    private const string RawColumns = "id, provider, instance, received_at, sha256, content_type, headers, status, error, duplicates, event_count, processed_at";

    public Task<CaptureOutcome> CaptureAsync(RawWebhook webhook, NewJob ingestJob, CancellationToken cancellationToken = default) =>
        jobs.Writer.WriteAsync(context =>
        {
            var existing = context.Command("SELECT id FROM inbox_raw_webhooks WHERE provider = $p AND instance = $i AND sha256 = $s")
                .Set("$p", webhook.Provider).Set("$i", webhook.Instance).Set("$s", webhook.Sha256).ExecuteScalar();
            if (existing is long id)
            {
                context.Command("UPDATE inbox_raw_webhooks SET duplicates = duplicates + 1 WHERE id = $id").Set("$id", id).ExecuteNonQuery();
                return new CaptureOutcome(id, true);
            }

            var now = jobs.Now;
            var rawId = (long)context.Command(
                "INSERT INTO inbox_raw_webhooks (provider, instance, received_at, sha256, body, content_type, headers, status) " +
                "VALUES ($p, $i, $r, $s, $b, $c, $h, 0) RETURNING id")
                .Set("$p", webhook.Provider).Set("$i", webhook.Instance).Set("$r", webhook.ReceivedAt.ToUnixTimeMilliseconds()).Set("$s", webhook.Sha256)
                .Set("$b", webhook.Body.ToArray()).Set("$c", webhook.ContentType).Set("$h", InboxEventSerializer.SerializeHeaders(webhook.Headers))
                .ExecuteScalar()!;
            SqliteJobStore.InsertJob(context, ingestJob with { Payload = rawId.ToString(CultureInfo.InvariantCulture) }, now);
            return new CaptureOutcome(rawId, false);
        }, cancellationToken);

    public async Task<StoredRawWebhook?> GetRawWebhookAsync(long id, CancellationToken cancellationToken = default)
    {
        var connection = await jobs.OpenReaderAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            using var command = connection.CreateCommand();
            command.CommandText = "SELECT " + RawColumns + ", body FROM inbox_raw_webhooks WHERE id = $id";
            command.Set("$id", id);
            using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            return reader.Read() ? ReadRaw(reader, withBody: true) : null;
        }
    }

    public async Task<IReadOnlyList<StoredRawWebhook>> GetCapturedRawWebhooksAsync(string provider, string instance, int limit, CancellationToken cancellationToken = default)
    {
        var connection = await jobs.OpenReaderAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            using var command = connection.CreateCommand();
            command.CommandText = "SELECT " + RawColumns + ", body FROM inbox_raw_webhooks WHERE status = 0 AND provider = $p AND instance = $i ORDER BY id LIMIT $limit";
            command.Set("$p", provider).Set("$i", instance).Set("$limit", Math.Max(1, limit));
            using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            var list = new List<StoredRawWebhook>();
            while (reader.Read()) list.Add(ReadRaw(reader, withBody: true));
            return list;
        }
    }

    private static StoredRawWebhook ReadRaw(SqliteDataReader reader, bool withBody) => new()
    {
        Id = reader.GetInt64(0),
        Provider = reader.GetString(1),
        Instance = reader.GetString(2),
        ReceivedAt = DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(3)),
        Sha256 = (byte[])reader.GetValue(4),
        ContentType = reader.IsDBNull(5) ? null : reader.GetString(5),
        Headers = InboxEventSerializer.DeserializeHeaders(reader.IsDBNull(6) ? null : reader.GetString(6)),
        Status = (RawWebhookStatus)reader.GetInt32(7),
        Error = reader.IsDBNull(8) ? null : reader.GetString(8),
        Duplicates = reader.GetInt32(9),
        EventCount = reader.GetInt32(10),
        ProcessedAt = reader.IsDBNull(11) ? null : DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(11)),
        Body = withBody ? (byte[])reader.GetValue(12) : ReadOnlyMemory<byte>.Empty,
    };

    public Task<IngestOutcome> SaveEventsAsync(long rawWebhookId, IReadOnlyList<InboxEvent> events, Func<long, InboxEvent, EventFollowUp> followUp, CancellationToken cancellationToken = default) =>
        jobs.Writer.WriteAsync(context => Save(context, rawWebhookId, events, followUp), cancellationToken);

    /// <summary>
    /// The saves in one write of the single writer (so in one transaction, in order). A save that SQLite refuses for its
    /// own data (<see cref="RefusedForItsData"/>) is rolled back to its savepoint and its raw webhook marked failed with the
    /// reason; any other error fails the write as a whole, so none of the saves commits without the ones before it.
    /// </summary>
    public Task<IReadOnlyList<EventSaveResult>> SaveEventsInOrderAsync(IReadOnlyList<EventSave> saves, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(saves);
        return jobs.Writer.WriteAsync<IReadOnlyList<EventSaveResult>>(context =>
        {
            var results = new EventSaveResult[saves.Count];
            for (var i = 0; i < saves.Count; i++)
            {
                var save = saves[i];
                context.Execute("SAVEPOINT ingest_save");
                try
                {
                    results[i] = EventSaveResult.Stored(Save(context, save.RawWebhookId, save.Events, save.FollowUp));
                    context.Execute("RELEASE ingest_save");
                }
                catch (SqliteException ex) when (RefusedForItsData(ex))
                {
                    context.Execute("ROLLBACK TO ingest_save");
                    context.Execute("RELEASE ingest_save");
                    MarkFailed(context, save.RawWebhookId, $"The database refused this webhook's events (SQLite error {ex.SqliteExtendedErrorCode}: {ex.Message}).");
                    results[i] = new EventSaveResult(null, ex, MarkedFailed: true);
                }
            }

            return results;
        }, cancellationToken);
    }

    /// <summary>Constraint, size and type errors: writing the same events again fails the same way (unlike busy, I/O or full-disk errors).</summary>
    internal static bool RefusedForItsData(SqliteException ex) => ex.SqliteErrorCode is 18 or 19 or 20 or 25; // TOOBIG, CONSTRAINT, MISMATCH, RANGE

    private IngestOutcome Save(SqliteWriteContext context, long rawWebhookId, IReadOnlyList<InboxEvent> events, Func<long, InboxEvent, EventFollowUp> followUp)
    {
        var now = jobs.Now;
        string provider, instance;
        using (var reader = context.Command("SELECT provider, instance, status FROM inbox_raw_webhooks WHERE id = $id").Set("$id", rawWebhookId).ExecuteReader())
        {
            if (!reader.Read() || reader.GetInt32(2) != (int)RawWebhookStatus.Captured) return new IngestOutcome([], []); // already done
            provider = reader.GetString(0);
            instance = reader.GetString(1);
        }

        context.Command("INSERT OR IGNORE INTO inbox_instances (provider, instance, status, changed_at) VALUES ($p, $i, 0, $now)")
            .Set("$p", provider).Set("$i", instance).Set("$now", now).ExecuteNonQuery();
        long nextSeq;
        InstanceStatus status;
        using (var reader = context.Command("SELECT next_seq, status FROM inbox_instances WHERE provider = $p AND instance = $i").Set("$p", provider).Set("$i", instance).ExecuteReader())
        {
            reader.Read();
            nextSeq = reader.GetInt64(0);
            status = (InstanceStatus)reader.GetInt32(1);
        }

        var stored = new List<StoredInboxEvent>();
        var duplicates = new List<InboxEvent>();
        var newStatus = status;
        foreach (var e in events)
        {
            if (context.Command("SELECT 1 FROM inbox_events WHERE dedupe_key = $d").Set("$d", e.DedupeKey).ExecuteScalar() is not null)
            {
                duplicates.Add(e);
                continue;
            }

            var seq = nextSeq++;
            var id = (long)context.Command(
                "INSERT INTO inbox_events (provider, instance, seq, kind, external_id, dedupe_key, chat_id, sender_id, from_me, occurred_at, message_type, status, body, raw_id, created_at, media_mime) " +
                "VALUES ($p, $i, $seq, $k, $x, $d, $c, $s, $f, $o, $m, $st, $b, $r, $now, $mm) RETURNING id")
                .Set("$p", provider).Set("$i", instance).Set("$seq", seq).Set("$k", (int)e.Kind).Set("$x", e.ExternalId).Set("$d", e.DedupeKey)
                .Set("$c", e.ChatId).Set("$s", e.SenderId).Set("$f", e.FromMe ? 1 : 0).Set("$o", e.OccurredAt.ToUnixTimeMilliseconds())
                .Set("$m", (int)e.MessageType).Set("$st", e.Status is { } st ? (int)st : null).Set("$b", InboxEventSerializer.Serialize(e))
                .Set("$r", rawWebhookId).Set("$now", now).Set("$mm", e.Media?.MimeType).ExecuteScalar()!;
            var next = followUp(id, e);
            foreach (var job in next.Jobs) SqliteJobStore.InsertJob(context, job, now);

            // A pending drain job of the chat delivers this event too; claims go through this writer, so none starts meanwhile.
            // (status IN (0, 1) is the key index's predicate, which INDEXED BY needs the query to imply.)
            if (next.Drain is { } drain && context.Command(
                    "SELECT 1 FROM inbox_jobs INDEXED BY ix_inbox_jobs_key WHERE queue = $q AND key = $k AND key IS NOT NULL AND status IN (0, 1) AND status = 0 AND payload = $p LIMIT 1")
                    .Set("$q", drain.Queue).Set("$k", drain.Key).Set("$p", drain.Payload).ExecuteScalar() is null)
            {
                SqliteJobStore.InsertJob(context, drain, now);
            }
            var media = EventMedia.None;
            if (next.MediaPending)
            {
                context.Command("UPDATE inbox_events SET media_status = 1, media_updated_at = $now WHERE id = $id").Set("$now", now).Set("$id", id).ExecuteNonQuery();
                media = new EventMedia(MediaStatus.Pending, MimeType: e.Media?.MimeType);
            }

            stored.Add(new StoredInboxEvent(id, seq, rawWebhookId, e, EventDispatchStatus.Pending) { CreatedAt = DateTimeOffset.FromUnixTimeMilliseconds(now), Media = media });
            newStatus = InstanceStatuses.After(newStatus, e);
        }

        context.Command(
            "UPDATE inbox_instances SET next_seq = $n, last_webhook_at = $now, status = $st, changed_at = CASE WHEN status = $st THEN changed_at ELSE $now END " +
            "WHERE provider = $p AND instance = $i")
            .Set("$n", nextSeq).Set("$now", now).Set("$st", (int)newStatus).Set("$p", provider).Set("$i", instance).ExecuteNonQuery();
        context.Command("UPDATE inbox_raw_webhooks SET status = 1, event_count = $c, processed_at = $now, error = NULL WHERE id = $id")
            .Set("$c", stored.Count).Set("$now", now).Set("$id", rawWebhookId).ExecuteNonQuery();
        return new IngestOutcome(stored, duplicates);
    }

    public Task MarkRawWebhookFailedAsync(long id, string reason, CancellationToken cancellationToken = default) =>
        jobs.Writer.WriteAsync(context => MarkFailed(context, id, reason), cancellationToken);

    private int MarkFailed(SqliteWriteContext context, long id, string reason) =>
        context.Command("UPDATE inbox_raw_webhooks SET status = 2, error = $e, processed_at = $now WHERE id = $id AND status = 0")
            .Set("$e", reason.Length <= 2000 ? reason : reason[..2000]).Set("$now", jobs.Now).Set("$id", id).ExecuteNonQuery();

    private const string EventColumns = "id, seq, raw_id, body, dispatch_status, created_at, media_status, media_key, media_size, media_mime, media_sha256, media_error, dispatch_attempts";

    public async Task<StoredInboxEvent?> GetEventAsync(long id, CancellationToken cancellationToken = default)
    {
        var connection = await jobs.OpenReaderAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            using var command = connection.CreateCommand();
            command.CommandText = "SELECT " + EventColumns + " FROM inbox_events WHERE id = $id";
            command.Set("$id", id);
            using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            return reader.Read() ? ReadEvent(reader) : null;
        }
    }

    public async Task<IReadOnlyList<StoredInboxEvent>> GetPendingEventsAsync(string provider, string instance, string chatId, int limit, CancellationToken cancellationToken = default)
    {
        var connection = await jobs.OpenReaderAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            using var command = connection.CreateCommand();
            command.CommandText = "SELECT " + EventColumns + " FROM inbox_events INDEXED BY ix_inbox_events_pending " +
                "WHERE provider = $p AND instance = $i AND coalesce(chat_id, '') = $c AND dispatch_status = 0 ORDER BY seq LIMIT $limit";
            command.Set("$p", provider).Set("$i", instance).Set("$c", chatId ?? "").Set("$limit", Math.Max(1, limit));
            using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            var list = new List<StoredInboxEvent>();
            while (reader.Read()) list.Add(ReadEvent(reader));
            return list;
        }
    }

    private static StoredInboxEvent ReadEvent(SqliteDataReader reader) =>
        StoredEventReader.Read(reader, static (r, i) => DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(i)));

    public Task<int> RecordDispatchFailureAsync(long id, string error, CancellationToken cancellationToken = default) =>
        jobs.Writer.WriteAsync(context => Convert.ToInt32(
            context.Command("UPDATE inbox_events SET dispatch_attempts = dispatch_attempts + 1, dispatch_error = $e WHERE id = $id RETURNING dispatch_attempts")
                .Set("$e", error is { Length: > 2000 } ? error[..2000] : error).Set("$id", id).ExecuteScalar() ?? 0, CultureInfo.InvariantCulture), cancellationToken);

    public Task SetMediaAsync(long eventId, EventMedia media, NewJob? followUp, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(media);
        return jobs.Writer.WriteAsync(context =>
        {
            var now = jobs.Now;
            context.Command(
                "UPDATE inbox_events SET media_status = $s, media_key = $k, media_size = $z, media_mime = COALESCE($m, media_mime), media_sha256 = $h, media_error = $e, media_updated_at = $now WHERE id = $id")
                .Set("$s", (int)media.Status).Set("$k", media.Key).Set("$z", media.Size).Set("$m", media.MimeType).Set("$h", media.Sha256)
                .Set("$e", media.Error is { Length: > 2000 } ? media.Error[..2000] : media.Error).Set("$now", now).Set("$id", eventId).ExecuteNonQuery();
            if (followUp is not null) SqliteJobStore.InsertJob(context, followUp, now);
            return true;
        }, cancellationToken);
    }

    public async Task<IReadOnlyDictionary<MediaStatus, long>> CountMediaAsync(CancellationToken cancellationToken = default)
    {
        var connection = await jobs.OpenReaderAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            using var command = connection.CreateCommand();
            command.CommandText = "SELECT media_status, count(*) FROM inbox_events WHERE media_status <> 0 GROUP BY media_status";
            using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            var counts = new Dictionary<MediaStatus, long>();
            while (reader.Read()) counts[(MediaStatus)reader.GetInt32(0)] = reader.GetInt64(1);
            return counts;
        }
    }

    public Task MarkEventDispatchAsync(long id, EventDispatchStatus status, string? error, CancellationToken cancellationToken = default) =>
        jobs.Writer.WriteAsync(context =>
            context.Command("UPDATE inbox_events SET dispatch_status = $s, dispatch_error = $e WHERE id = $id")
                .Set("$s", (int)status).Set("$e", error is { Length: > 2000 } ? error[..2000] : error).Set("$id", id).ExecuteNonQuery(), cancellationToken);

    public async Task<int> ReprocessRawWebhooksAsync(RawWebhookQuery filter, Func<StoredRawWebhook, NewJob> ingestJob, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(filter);
        var failed = await ListRawWebhooksAsync(filter with { Status = RawWebhookStatus.Failed, Limit = int.MaxValue }, cancellationToken).ConfigureAwait(false);
        if (failed.Count == 0) return 0;
        return await jobs.Writer.WriteAsync(context =>
        {
            var now = jobs.Now;
            var count = 0;
            foreach (var raw in failed)
            {
                if (context.Command("UPDATE inbox_raw_webhooks SET status = 0, error = NULL, processed_at = NULL WHERE id = $id AND status = 2").Set("$id", raw.Id).ExecuteNonQuery() == 0) continue;
                SqliteJobStore.InsertJob(context, ingestJob(raw) with { Payload = raw.Id.ToString(CultureInfo.InvariantCulture) }, now);
                count++;
            }

            return count;
        }, cancellationToken).ConfigureAwait(false);
    }

    public async Task<IReadOnlyList<StoredRawWebhook>> ListRawWebhooksAsync(RawWebhookQuery filter, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(filter);
        var connection = await jobs.OpenReaderAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            using var command = connection.CreateCommand();
            var where = new StringBuilder("1 = 1");
            if (filter.Provider is not null) { where.Append(" AND provider = $p"); command.Set("$p", filter.Provider); }
            if (filter.Instance is not null) { where.Append(" AND instance = $i"); command.Set("$i", filter.Instance); }
            if (filter.Status is { } status) { where.Append(" AND status = $s"); command.Set("$s", (int)status); }
            command.CommandText = "SELECT " + RawColumns + " FROM inbox_raw_webhooks WHERE " + where + " ORDER BY id DESC LIMIT $limit";
            command.Set("$limit", Math.Max(1, filter.Limit));
            using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            var list = new List<StoredRawWebhook>();
            while (reader.Read()) list.Add(ReadRaw(reader, withBody: false));
            return list;
        }
    }

    public async Task<InstanceState?> GetInstanceAsync(string provider, string instance, CancellationToken cancellationToken = default)
    {
        var connection = await jobs.OpenReaderAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            using var command = connection.CreateCommand();
            command.CommandText = "SELECT status, changed_at, last_webhook_at FROM inbox_instances WHERE provider = $p AND instance = $i";
            command.Set("$p", provider).Set("$i", instance);
            using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            if (!reader.Read()) return null;
            return new InstanceState(provider, instance, (InstanceStatus)reader.GetInt32(0), DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(1)),
                reader.IsDBNull(2) ? null : DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(2)));
        }
    }
}
