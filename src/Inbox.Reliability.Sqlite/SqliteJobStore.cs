using System.Globalization;
using System.Text;
using Inbox.Reliability.Jobs;
using Inbox.Reliability.Storage;
using Microsoft.Data.Sqlite;

namespace Inbox.Reliability.Sqlite;

/// <summary>
/// The SQLite job store. Writes go through <see cref="SqliteWriter"/> (one connection, group commit);
/// reads use pooled connections, which WAL lets run beside the writer.
/// Times are stored as Unix milliseconds.
/// </summary>
internal sealed class SqliteJobStore : IJobStore, IDisposable
{
    private const string Live = "status IN (0, 1)";
    private const string JobColumns = "id, queue, key, payload, status, priority, attempts, max_attempts, dedupe_key, run_at, last_error, created_at, started_at, finished_at, lease_owner, lease_expires_at, cancel_requested";
    private const int DeleteChunk = 2000;

    private readonly TimeProvider _time;
    private readonly string _connectionString;
    private readonly SqliteDurability _durability;
    private readonly Lazy<SqliteWriter> _writer;

    public SqliteJobStore(SqliteStorageOptions options, TimeProvider time)
    {
        _time = time;
        _durability = options.Durability;
        var builder = new SqliteConnectionStringBuilder(options.ConnectionString)
        {
            DefaultTimeout = (int)Math.Ceiling(options.BusyTimeout.TotalSeconds),
            Pooling = true,
        };
        _connectionString = builder.ToString();
        var folder = Path.GetDirectoryName(Path.GetFullPath(builder.DataSource));
        if (!string.IsNullOrEmpty(folder)) Directory.CreateDirectory(folder);
        _writer = new Lazy<SqliteWriter>(() => new SqliteWriter(OpenWriter));
    }

    internal SqliteWriter Writer => _writer.Value;

    internal long Now => _time.GetUtcNow().ToUnixTimeMilliseconds();

    private SqliteConnection OpenWriter()
    {
        var connection = new SqliteConnection(_connectionString);
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA journal_mode=WAL; PRAGMA synchronous=" + (_durability == SqliteDurability.Full ? "FULL" : "NORMAL") + "; PRAGMA temp_store=MEMORY; PRAGMA cache_size=-16000;";
        command.ExecuteNonQuery();
        return connection;
    }

    internal async Task<SqliteConnection> OpenReaderAsync(CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        return connection;
    }

    public Task MigrateAsync(CancellationToken cancellationToken = default) => Writer.WriteAsync(context =>
    {
        context.Execute("CREATE TABLE IF NOT EXISTS inbox_migrations (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)");
        var applied = new HashSet<long>();
        using (var reader = context.Command("SELECT version FROM inbox_migrations").ExecuteReader())
        {
            while (reader.Read()) applied.Add(reader.GetInt64(0));
        }

        foreach (var (version, name, sql) in SqliteMigrations.All)
        {
            if (applied.Contains(version)) continue;
            using (var command = context.Connection.CreateCommand())
            {
                command.CommandText = sql;
                command.ExecuteNonQuery();
            }

            context.Command("INSERT INTO inbox_migrations (version, name, applied_at) VALUES ($v, $n, $t)").Set("$v", version).Set("$n", name).Set("$t", Now).ExecuteNonQuery();
        }

        return true;
    }, cancellationToken);

    public Task<IReadOnlyList<EnqueueResult>> EnqueueAsync(IReadOnlyList<NewJob> jobs, CancellationToken cancellationToken = default) =>
        Writer.WriteAsync<IReadOnlyList<EnqueueResult>>(context =>
        {
            var now = Now;
            var results = new EnqueueResult[jobs.Count];
            for (var i = 0; i < jobs.Count; i++) results[i] = InsertJob(context, jobs[i], now);
            return results;
        }, cancellationToken);

    /// <summary>Adds one job inside the writer's current transaction (also used by capture and ingest).</summary>
    internal static EnqueueResult InsertJob(SqliteWriteContext context, NewJob job, long now)
    {
        if (job.DedupeKey is not null)
        {
            var existing = context.Command("SELECT id FROM inbox_jobs WHERE queue = $q AND dedupe_key = $d AND dedupe_key IS NOT NULL AND " + Live)
                .Set("$q", job.Queue).Set("$d", job.DedupeKey).ExecuteScalar();
            if (existing is long id) return new EnqueueResult(id, true);
        }

        var newId = (long)context.Command(
            "INSERT INTO inbox_jobs (queue, key, is_head, payload, status, priority, attempts, max_attempts, run_at, dedupe_key, created_at) " +
            "VALUES ($q, $k, CASE WHEN $k IS NULL THEN 1 ELSE NOT EXISTS (SELECT 1 FROM inbox_jobs INDEXED BY ix_inbox_jobs_key WHERE queue = $q AND key = $k AND key IS NOT NULL AND " + Live + ") END, " +
            "$p, 0, $pr, 0, $ma, $ra, $d, $now) RETURNING id")
            .Set("$q", job.Queue).Set("$k", job.Key).Set("$p", job.Payload).Set("$pr", job.Priority)
            .Set("$ma", job.MaxAttempts).Set("$ra", job.RunAt.ToUnixTimeMilliseconds()).Set("$d", job.DedupeKey).Set("$now", now).ExecuteScalar()!;
        return new EnqueueResult(newId, false);
    }

    public Task<IReadOnlyList<ClaimedJob>> ClaimAsync(string queue, int maxJobs, string owner, TimeSpan leaseDuration, CancellationToken cancellationToken = default) =>
        Writer.WriteAsync<IReadOnlyList<ClaimedJob>>(context =>
        {
            var now = Now;
            var command = context.Command(
                "UPDATE inbox_jobs SET status = 1, attempts = attempts + 1, lease_owner = $o, lease_expires_at = $exp, lease_token = lease_token + 1, started_at = $now, cancel_requested = 0 " +
                "WHERE id IN (SELECT id FROM inbox_jobs WHERE queue = $q AND status = 0 AND is_head = 1 AND run_at <= $now ORDER BY priority DESC, run_at, id LIMIT $n) " +
                "RETURNING id, key, payload, attempts, max_attempts, lease_token, dedupe_key, priority, created_at, run_at")
                .Set("$o", owner).Set("$exp", now + (long)leaseDuration.TotalMilliseconds).Set("$now", now).Set("$q", queue).Set("$n", maxJobs);
            var jobs = new List<ClaimedJob>();
            var startedAt = DateTimeOffset.FromUnixTimeMilliseconds(now);
            using (var reader = command.ExecuteReader())
            {
                while (reader.Read())
                {
                    jobs.Add(new ClaimedJob
                    {
                        Lease = new JobLease(reader.GetInt64(0), reader.GetInt64(5)),
                        Queue = queue,
                        Key = reader.IsDBNull(1) ? null : reader.GetString(1),
                        Payload = reader.GetString(2),
                        Attempt = reader.GetInt32(3),
                        MaxAttempts = reader.GetInt32(4),
                        DedupeKey = reader.IsDBNull(6) ? null : reader.GetString(6),
                        Priority = reader.GetInt32(7),
                        CreatedAt = DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(8)),
                        RunAt = DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(9)),
                        StartedAt = startedAt,
                    });
                }
            }

            // RETURNING gives no order; hand jobs out in claim order.
            jobs.Sort(static (a, b) => a.Priority != b.Priority ? b.Priority.CompareTo(a.Priority)
                : a.RunAt != b.RunAt ? a.RunAt.CompareTo(b.RunAt) : a.Lease.JobId.CompareTo(b.Lease.JobId));
            return jobs;
        }, cancellationToken);

    public Task<bool> FinishAsync(JobLease lease, JobOutcome outcome, CancellationToken cancellationToken = default) =>
        Writer.WriteAsync(context =>
        {
            var now = Now;
            if (outcome.Kind == JobOutcomeKind.Removed) return Remove(context, lease, now);
            var set = outcome.Kind switch
            {
                JobOutcomeKind.Completed => "status = 2, finished_at = $now, lease_expires_at = NULL",
                JobOutcomeKind.Retry => "status = 0, run_at = $runAt, last_error = $e, lease_expires_at = NULL",
                JobOutcomeKind.Failed => "status = 3, finished_at = $now, last_error = $e, lease_expires_at = NULL",
                JobOutcomeKind.Canceled => "status = 4, finished_at = $now, last_error = $e, lease_expires_at = NULL",
                JobOutcomeKind.Released => "status = 0, attempts = attempts - 1, lease_expires_at = NULL, lease_token = lease_token + 1, run_at = max(run_at, $runAt)",
                _ => throw new ArgumentOutOfRangeException(nameof(outcome), outcome.Kind, "Unknown outcome."),
            };
            var command = context.Command("UPDATE inbox_jobs SET " + set + " WHERE id = $id AND lease_token = $t AND status = 1 AND lease_expires_at > $now RETURNING queue, key, attempts, started_at, lease_owner")
                .Set("$id", lease.JobId).Set("$t", lease.Token).Set("$now", now);
            if (outcome.Kind == JobOutcomeKind.Retry) command.Set("$runAt", (outcome.RetryAt ?? DateTimeOffset.FromUnixTimeMilliseconds(now)).ToUnixTimeMilliseconds());
            if (outcome.Kind == JobOutcomeKind.Released) command.Set("$runAt", outcome.RetryAt?.ToUnixTimeMilliseconds() ?? 0); // 0: keep the due time
            if (outcome.Kind is JobOutcomeKind.Retry or JobOutcomeKind.Failed or JobOutcomeKind.Canceled) command.Set("$e", outcome.Error);

            string queue;
            string? key;
            int attempt;
            long startedAt;
            string? worker;
            using (var reader = command.ExecuteReader())
            {
                if (!reader.Read()) return false;
                queue = reader.GetString(0);
                key = reader.IsDBNull(1) ? null : reader.GetString(1);
                attempt = reader.GetInt32(2);
                startedAt = reader.IsDBNull(3) ? now : reader.GetInt64(3);
                worker = reader.IsDBNull(4) ? null : reader.GetString(4);
            }

            if (outcome.Kind == JobOutcomeKind.Released) return true;
            var attemptOutcome = outcome.Kind switch
            {
                JobOutcomeKind.Completed => JobAttemptOutcome.Completed,
                JobOutcomeKind.Retry => JobAttemptOutcome.Retried,
                JobOutcomeKind.Failed => JobAttemptOutcome.Failed,
                _ => JobAttemptOutcome.Canceled,
            };
            InsertAttempt(context, lease.JobId, attempt, startedAt, now, attemptOutcome, outcome.Kind == JobOutcomeKind.Completed ? null : outcome.Error, worker);
            if (key is not null && outcome.Kind != JobOutcomeKind.Retry) PromoteNext(context, queue, key);
            return true;
        }, cancellationToken);

    /// <summary>Deletes a completed job and its attempt history while its lease holds; its key passes to the next job.</summary>
    private static bool Remove(SqliteWriteContext context, JobLease lease, long now)
    {
        string queue;
        string? key;
        using (var reader = context.Command("DELETE FROM inbox_jobs WHERE id = $id AND lease_token = $t AND status = 1 AND lease_expires_at > $now RETURNING queue, key")
            .Set("$id", lease.JobId).Set("$t", lease.Token).Set("$now", now).ExecuteReader())
        {
            if (!reader.Read()) return false;
            queue = reader.GetString(0);
            key = reader.IsDBNull(1) ? null : reader.GetString(1);
        }

        DeleteAttempts(context, lease.JobId);
        if (key is not null) PromoteNext(context, queue, key);
        return true;
    }

    private static void InsertAttempt(SqliteWriteContext context, long jobId, int attempt, long startedAt, long finishedAt, JobAttemptOutcome outcome, string? error, string? worker) =>
        context.Command("INSERT INTO inbox_job_attempts (job_id, attempt, started_at, finished_at, outcome, error, worker) VALUES ($id, $a, $s, $f, $o, $e, $w)")
            .Set("$id", jobId).Set("$a", attempt).Set("$s", startedAt).Set("$f", finishedAt).Set("$o", (int)outcome).Set("$e", error).Set("$w", worker)
            .ExecuteNonQuery();

    /// <summary>Makes the oldest live job of a key its head, the only one of the key that may be claimed.</summary>
    private static void PromoteNext(SqliteWriteContext context, string queue, string key) =>
        context.Command("UPDATE inbox_jobs SET is_head = 1 WHERE id = (SELECT id FROM inbox_jobs WHERE queue = $q AND key = $k AND key IS NOT NULL AND " + Live + " ORDER BY id LIMIT 1) AND is_head = 0")
            .Set("$q", queue).Set("$k", key).ExecuteNonQuery();

    public Task<IReadOnlyList<LeaseRenewal>> ExtendLeasesAsync(IReadOnlyList<JobLease> leases, TimeSpan leaseDuration, CancellationToken cancellationToken = default) =>
        Writer.WriteAsync<IReadOnlyList<LeaseRenewal>>(context =>
        {
            var now = Now;
            var command = context.Command("UPDATE inbox_jobs SET lease_expires_at = $exp WHERE id = $id AND lease_token = $t AND status = 1 AND lease_expires_at > $now RETURNING cancel_requested")
                .Set("$exp", now + (long)leaseDuration.TotalMilliseconds).Set("$now", now);
            var renewals = new LeaseRenewal[leases.Count];
            for (var i = 0; i < leases.Count; i++)
            {
                var result = command.Set("$id", leases[i].JobId).Set("$t", leases[i].Token).ExecuteScalar();
                renewals[i] = result switch
                {
                    null => LeaseRenewal.Lost,
                    long flag when flag != 0 => LeaseRenewal.CancelRequested,
                    _ => LeaseRenewal.Extended,
                };
            }

            return renewals;
        }, cancellationToken);

    public Task<int> ReapExpiredLeasesAsync(CancellationToken cancellationToken = default) =>
        Writer.WriteAsync(context =>
        {
            var now = Now;
            var command = context.Command(
                "UPDATE inbox_jobs SET " +
                "status = CASE WHEN cancel_requested = 1 THEN 4 WHEN attempts >= max_attempts THEN 3 ELSE 0 END, " +
                "finished_at = CASE WHEN cancel_requested = 1 OR attempts >= max_attempts THEN $now ELSE NULL END, " +
                "last_error = $e, lease_expires_at = NULL, lease_token = lease_token + 1 " +
                "WHERE status = 1 AND lease_expires_at <= $now RETURNING id, queue, key, status, attempts, started_at, lease_owner")
                .Set("$now", now).Set("$e", "The lease expired before the worker recorded an outcome (the worker stopped or hung).");
            var reaped = new List<(long Id, string Queue, string? Key, int Status, int Attempt, long StartedAt, string? Worker)>();
            using (var reader = command.ExecuteReader())
            {
                while (reader.Read())
                {
                    reaped.Add((reader.GetInt64(0), reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetString(2), reader.GetInt32(3), reader.GetInt32(4),
                        reader.IsDBNull(5) ? now : reader.GetInt64(5), reader.IsDBNull(6) ? null : reader.GetString(6)));
                }
            }

            foreach (var job in reaped)
            {
                InsertAttempt(context, job.Id, job.Attempt, job.StartedAt, now, JobAttemptOutcome.LeaseExpired, "The lease expired before the worker recorded an outcome.", job.Worker);
                if (job.Key is not null && job.Status != 0) PromoteNext(context, job.Queue, job.Key);
            }

            return reaped.Count;
        }, cancellationToken);

    public async Task<JobInfo?> GetJobAsync(long id, CancellationToken cancellationToken = default)
    {
        var connection = await OpenReaderAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            using var command = connection.CreateCommand();
            command.CommandText = "SELECT " + JobColumns + " FROM inbox_jobs WHERE id = $id";
            command.Set("$id", id);
            using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            return reader.Read() ? ReadJob(reader) : null;
        }
    }

    private static JobInfo ReadJob(SqliteDataReader reader) => new()
    {
        Id = reader.GetInt64(0),
        Queue = reader.GetString(1),
        Key = reader.IsDBNull(2) ? null : reader.GetString(2),
        Payload = reader.GetString(3),
        Status = (JobStatus)reader.GetInt32(4),
        Priority = reader.GetInt32(5),
        Attempts = reader.GetInt32(6),
        MaxAttempts = reader.GetInt32(7),
        DedupeKey = reader.IsDBNull(8) ? null : reader.GetString(8),
        RunAt = FromMs(reader.GetInt64(9)),
        LastError = reader.IsDBNull(10) ? null : reader.GetString(10),
        CreatedAt = FromMs(reader.GetInt64(11)),
        StartedAt = reader.IsDBNull(12) ? null : FromMs(reader.GetInt64(12)),
        FinishedAt = reader.IsDBNull(13) ? null : FromMs(reader.GetInt64(13)),
        LeaseOwner = reader.IsDBNull(14) ? null : reader.GetString(14),
        LeaseExpiresAt = reader.IsDBNull(15) ? null : FromMs(reader.GetInt64(15)),
        CancelRequested = reader.GetInt64(16) != 0,
    };

    private static DateTimeOffset FromMs(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms);

    public async Task<IReadOnlyList<JobAttemptInfo>> GetAttemptsAsync(long id, CancellationToken cancellationToken = default)
    {
        var connection = await OpenReaderAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            using var command = connection.CreateCommand();
            command.CommandText = "SELECT attempt, started_at, finished_at, outcome, error, worker FROM inbox_job_attempts WHERE job_id = $id ORDER BY id";
            command.Set("$id", id);
            using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            var attempts = new List<JobAttemptInfo>();
            while (reader.Read())
            {
                attempts.Add(new JobAttemptInfo(reader.GetInt32(0), FromMs(reader.GetInt64(1)), FromMs(reader.GetInt64(2)), (JobAttemptOutcome)reader.GetInt32(3),
                    reader.IsDBNull(4) ? null : reader.GetString(4), reader.IsDBNull(5) ? null : reader.GetString(5)));
            }

            return attempts;
        }
    }

    /// <summary>Builds the WHERE clause of a filter; parameters only, never values in the SQL text.</summary>
    private static string Where(JobQuery query, SqliteCommand command, bool paging)
    {
        var where = new StringBuilder("1 = 1");
        if (query.Queue is not null) { where.Append(" AND queue = $fq"); command.Set("$fq", query.Queue); }
        if (query.Status is { } status) { where.Append(" AND status = $fs"); command.Set("$fs", (int)status); }
        if (query.Key is not null) { where.Append(" AND key = $fk"); command.Set("$fk", query.Key); }
        if (query.CreatedBefore is { } before) { where.Append(" AND created_at < $fc"); command.Set("$fc", before.ToUnixTimeMilliseconds()); }
        if (paging && query.BeforeId is { } id) { where.Append(" AND id < $fb"); command.Set("$fb", id); }
        return where.ToString();
    }

    public async Task<JobPage> ListJobsAsync(JobQuery query, CancellationToken cancellationToken = default)
    {
        var connection = await OpenReaderAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            using var command = connection.CreateCommand();
            command.CommandText = "SELECT " + JobColumns + " FROM inbox_jobs WHERE " + Where(query, command, paging: true) + " ORDER BY id DESC LIMIT $limit";
            command.Set("$limit", query.Limit + 1);
            using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            var jobs = new List<JobInfo>();
            while (reader.Read()) jobs.Add(ReadJob(reader));
            if (jobs.Count <= query.Limit) return new JobPage(jobs, null);
            jobs.RemoveAt(jobs.Count - 1);
            return new JobPage(jobs, jobs[^1].Id);
        }
    }

    public async Task<IReadOnlyList<QueueStats>> GetStatsAsync(CancellationToken cancellationToken = default)
    {
        var connection = await OpenReaderAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            using var command = connection.CreateCommand();
            command.CommandText = "SELECT queue, status, COUNT(*) FROM inbox_jobs GROUP BY queue, status ORDER BY queue";
            using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            var counts = new List<(string Queue, int Status, long Count)>();
            while (reader.Read()) counts.Add((reader.GetString(0), reader.GetInt32(1), reader.GetInt64(2)));
            return StatsBuilder.Build(counts);
        }
    }

    public Task<CancelJobResult> CancelAsync(long id, CancellationToken cancellationToken = default) =>
        Writer.WriteAsync(context =>
        {
            string queue;
            string? key;
            int status;
            using (var reader = context.Command("SELECT status, queue, key FROM inbox_jobs WHERE id = $id").Set("$id", id).ExecuteReader())
            {
                if (!reader.Read()) return CancelJobResult.NotFound;
                status = reader.GetInt32(0);
                queue = reader.GetString(1);
                key = reader.IsDBNull(2) ? null : reader.GetString(2);
            }

            switch ((JobStatus)status)
            {
                case JobStatus.Pending:
                    context.Command("UPDATE inbox_jobs SET status = 4, finished_at = $now, last_error = 'Canceled before it ran.' WHERE id = $id").Set("$id", id).Set("$now", Now).ExecuteNonQuery();
                    if (key is not null) PromoteNext(context, queue, key);
                    return CancelJobResult.Canceled;
                case JobStatus.Processing:
                    context.Command("UPDATE inbox_jobs SET cancel_requested = 1 WHERE id = $id").Set("$id", id).ExecuteNonQuery();
                    return CancelJobResult.CancellationRequested;
                default:
                    return CancelJobResult.AlreadyFinished;
            }
        }, cancellationToken);

    public async Task<int> RequeueAsync(long? id, JobQuery? filter, CancellationToken cancellationToken = default)
    {
        var total = 0;
        long? after = null;
        while (true)
        {
            // In chunks, so one large requeue does not hold the writer for long.
            var (count, last, more) = await Writer.WriteAsync(context => RequeueChunk(context, id, filter, after), cancellationToken).ConfigureAwait(false);
            total += count;
            if (!more) return total;
            after = last;
        }
    }

    private (int Count, long Last, bool More) RequeueChunk(SqliteWriteContext context, long? id, JobQuery? filter, long? after)
    {
        var now = Now;
        var candidates = new List<(long Id, string Queue, string? Key, string? Dedupe)>();
        using (var select = context.Connection.CreateCommand())
        {
            if (id is not null)
            {
                select.CommandText = "SELECT id, queue, key, dedupe_key FROM inbox_jobs WHERE id = $id AND status IN (3, 4)";
                select.Set("$id", id.Value);
            }
            else
            {
                select.CommandText = "SELECT id, queue, key, dedupe_key FROM inbox_jobs WHERE " + Where(filter ?? new JobQuery(), select, paging: false) +
                    (after is null ? "" : " AND id > $after") + " ORDER BY id LIMIT " + DeleteChunk.ToString(CultureInfo.InvariantCulture);
                if (after is not null) select.Set("$after", after.Value);
            }

            using var reader = select.ExecuteReader();
            while (reader.Read()) candidates.Add((reader.GetInt64(0), reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetString(2), reader.IsDBNull(3) ? null : reader.GetString(3)));
        }

        var count = 0;
        foreach (var job in candidates)
        {
            if (job.Dedupe is not null &&
                context.Command("SELECT 1 FROM inbox_jobs WHERE queue = $q AND dedupe_key = $d AND dedupe_key IS NOT NULL AND " + Live).Set("$q", job.Queue).Set("$d", job.Dedupe).ExecuteScalar() is not null)
            {
                continue; // a live job already holds its dedupe key
            }

            count += context.Command(
                "UPDATE inbox_jobs SET status = 0, attempts = 0, run_at = $now, finished_at = NULL, lease_expires_at = NULL, cancel_requested = 0, " +
                "is_head = CASE WHEN key IS NULL THEN 1 ELSE NOT EXISTS (SELECT 1 FROM inbox_jobs INDEXED BY ix_inbox_jobs_key WHERE queue = $q AND key = $k AND key IS NOT NULL AND " + Live + ") END " +
                "WHERE id = $id").Set("$now", now).Set("$q", job.Queue).Set("$k", job.Key).Set("$id", job.Id).ExecuteNonQuery();
        }

        return (count, candidates.Count == 0 ? 0 : candidates[^1].Id, id is null && candidates.Count == DeleteChunk);
    }

    public async Task<int> PurgeAsync(JobQuery filter, CancellationToken cancellationToken = default)
    {
        var total = 0;
        while (true)
        {
            var count = await Writer.WriteAsync(context => PurgeChunk(context, filter), cancellationToken).ConfigureAwait(false);
            total += count;
            if (count < DeleteChunk) return total;
        }
    }

    private static int PurgeChunk(SqliteWriteContext context, JobQuery filter)
    {
        var victims = new List<(long Id, string Queue, string? Key, bool LiveHead)>();
        using (var select = context.Connection.CreateCommand())
        {
            select.CommandText = "SELECT id, queue, key, status = 0 AND is_head = 1 FROM inbox_jobs WHERE status <> 1 AND " + Where(filter, select, paging: false) +
                " ORDER BY id LIMIT " + DeleteChunk.ToString(CultureInfo.InvariantCulture);
            using var reader = select.ExecuteReader();
            while (reader.Read()) victims.Add((reader.GetInt64(0), reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetString(2), reader.GetInt64(3) != 0));
        }

        foreach (var victim in victims) DeleteJob(context, victim.Id);
        foreach (var head in victims.Where(v => v.LiveHead && v.Key is not null).Select(v => (v.Queue, v.Key!)).Distinct())
        {
            PromoteNext(context, head.Queue, head.Item2);
        }

        return victims.Count;
    }

    private static void DeleteJob(SqliteWriteContext context, long id)
    {
        DeleteAttempts(context, id);
        context.Command("DELETE FROM inbox_jobs WHERE id = $id").Set("$id", id).ExecuteNonQuery();
    }

    private static void DeleteAttempts(SqliteWriteContext context, long id) =>
        context.Command("DELETE FROM inbox_job_attempts WHERE job_id = $id").Set("$id", id).ExecuteNonQuery();

    public async Task<int> DeleteFinishedAsync(DateTimeOffset finishedBefore, CancellationToken cancellationToken = default)
    {
        var before = finishedBefore.ToUnixTimeMilliseconds();
        var total = 0;
        while (true)
        {
            var count = await Writer.WriteAsync(context =>
            {
                var ids = new List<long>();
                using (var reader = context.Command("SELECT id FROM inbox_jobs WHERE status IN (2, 4) AND finished_at < $b LIMIT " + DeleteChunk.ToString(CultureInfo.InvariantCulture))
                    .Set("$b", before).ExecuteReader())
                {
                    while (reader.Read()) ids.Add(reader.GetInt64(0));
                }

                foreach (var id in ids) DeleteJob(context, id);
                return ids.Count;
            }, cancellationToken).ConfigureAwait(false);
            total += count;
            if (count < DeleteChunk) return total;
        }
    }

    public void Dispose()
    {
        if (_writer.IsValueCreated) _writer.Value.Dispose();
    }
}
