using System.Collections.Concurrent;
using System.Data;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Inbox.Reliability.Capture;
using Inbox.Reliability.Jobs;
using Inbox.Reliability.Storage;
using Microsoft.Extensions.Logging;
using Npgsql;
using static Inbox.Reliability.PostgreSql.SqlParameters;

namespace Inbox.Reliability.PostgreSql;

/// <summary>
/// The PostgreSQL job store, shared by every host process pointed at the same schema.
/// </summary>
/// <remarks>
/// <para>
/// <b>Per-key FIFO across processes.</b> Each job row carries <c>is_head</c>: true for unkeyed jobs and for the one live
/// job of a key that may be claimed. Claims read only heads (a partial index), so they need no key check and a blocked
/// key costs nothing. Keeping exactly one head per key is the hard part: under READ COMMITTED, two processes enqueueing
/// the same key at once would each see "no live job" and both insert a head, and a completion racing an enqueue would
/// each miss the other's row and leave the key headless. So every write that can change which job of a key is live
/// (enqueue, completion, failure, cancel, reap, requeue, purge) first takes a transaction-scoped advisory lock on the
/// key (<c>pg_advisory_xact_lock</c> on a 64-bit hash of schema, queue and key), in one statement, in ascending lock
/// order (no deadlocks between writers), and only then, in a later statement with a fresh snapshot, reads and changes
/// the key's rows. An advisory lock rather than a lock row: no extra table to update, vacuum or clean up, and it works
/// inside the host's own transaction. A hash collision only makes two keys wait for each other briefly. Claims take no
/// key lock: they only turn a pending head into a processing one, which changes nothing about the key. (Until migration
/// 7 a unique index also refused a second live head; it cost every hand-over a unique check, see <see cref="PostgreSqlMigrations"/>.)
/// </para>
/// <para>
/// <b>Throughput.</b> Single enqueues and completions are group-committed (<see cref="GroupCommit{TRequest,TResult}"/>): what
/// waits is written with array parameters (<c>unnest</c>) in one batch of statements, one round trip and one implicit
/// transaction, whatever the number of jobs. Claims lease a batch with <c>FOR UPDATE SKIP LOCKED</c>.
/// </para>
/// <para>
/// <b>Time.</b> Every timestamp comes from the injected <see cref="TimeProvider"/> as a parameter; SQL never calls
/// <c>now()</c> for job logic, so hosts and tests agree on one clock.
/// </para>
/// </remarks>
internal sealed partial class PostgreSqlJobStore : IJobStore, IJobWakeupSource, IAsyncDisposable, IDisposable
{
    private const int DeleteChunk = 2000;
    private const int ReapChunk = 500;
    private const int MaxGroupRows = 2000;
    private const int MigrationLockClass = 0x1B0C_5EED;
    private const string LeaseExpiredError = "The lease expired before the worker recorded an outcome (the worker stopped or hung).";
    private static readonly TimeSpan ListenCheckInterval = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan MaxListenBackoff = TimeSpan.FromSeconds(30);

    private readonly PostgreSqlStorageOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly bool _ownsDataSource;
    private readonly Lazy<NpgsqlDataSource> _dataSource;
    private readonly string _schemaName;
    private readonly string _channel;
    private readonly string _sender = Guid.NewGuid().ToString("N");
    private readonly GroupCommit<NewJob[], EnqueueResult[]> _enqueues;
    private readonly GroupCommit<(JobLease Lease, JobOutcome Outcome), bool>[] _finishes;

    /// <summary>Outcomes waiting for the first completion writer from which keyed jobs' completions go to the second.</summary>
    private const int SpillOutcomes = 200;
    private readonly ConcurrentDictionary<string, byte> _claimedQueues = new(StringComparer.Ordinal);

    /// <summary>
    /// Jobs claimed here and not finished yet, and whether each has a key: a group of completions of unkeyed jobs skips
    /// the key locks and the head repair. A job missing here (claimed before a restart of this store) counts as keyed.
    /// </summary>
    private readonly ConcurrentDictionary<long, (string Queue, string? Key)> _claimedKeyed = new();
    private const int MaxRememberedClaims = 100_000;
    private readonly Sql _sql;

    /// <summary>This process's workers, by queue: a completion hands a worker its key's next job (<see cref="IJobTaker"/>).</summary>
    private readonly QueueSignals? _workers;

    private readonly object _wakeLock = new();
    private readonly HashSet<string> _wakePending = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _wakeStop = new();
    private Task? _wakeLoop;

    public PostgreSqlJobStore(PostgreSqlStorageOptions options, NpgsqlDataSource? dataSource, TimeProvider time, ILoggerFactory loggers, QueueSignals? workers = null)
    {
        _workers = workers;
        _options = options;
        _time = time;
        _logger = loggers.CreateLogger("Inbox.Reliability.PostgreSql");
        _schemaName = options.Schema;
        _channel = options.Schema + "_jobs";
        _sql = new Sql(options.Schema);
        _ownsDataSource = dataSource is null;

        // Built on first use, so an invalid connection string is reported by startup validation with every other problem.
        _dataSource = dataSource is not null ? new Lazy<NpgsqlDataSource>(dataSource) : new Lazy<NpgsqlDataSource>(() => BuildDataSource(options.ConnectionString ?? ""));
        _enqueues = new GroupCommit<NewJob[], EnqueueResult[]>(WriteEnqueuesAsync, static jobs => jobs.Length, MaxGroupRows);
        _finishes = Enumerable.Range(0, 2).Select(_ => new GroupCommit<(JobLease, JobOutcome), bool>(WriteFinishesAsync, static _ => 1, MaxGroupRows)).ToArray();
    }

    internal NpgsqlDataSource DataSource => _dataSource.Value;

    internal string Schema => _schemaName;

    /// <summary>The job statements of this schema (the pipeline store takes key locks with them).</summary>
    internal Sql Statements => _sql;

    /// <summary>
    /// Wakes the workers of <paramref name="queues"/> in other processes (not this one) once the caller's transaction has
    /// committed: call it after the commit. A NOTIFY sent inside a data transaction would make that commit wait in
    /// PostgreSQL's queue of notifying commits, which run one after another, each holding its lock until its WAL is flushed:
    /// every enqueue, capture and ingest of every host would commit in single file. Here one statement at a time carries
    /// every wake-up asked for while the one before ran, in a transaction of its own that does not wait for its flush (a
    /// wake-up lost in a crash costs nothing: the jobs are committed, and workers also poll). A failed NOTIFY is not
    /// retried, for the same reason.
    /// </summary>
    internal void WakeOthersAfterCommit(IEnumerable<string> queues)
    {
        if (!_options.UseNotifications) return;
        lock (_wakeLock)
        {
            foreach (var queue in queues) _wakePending.Add(queue);
            if (_wakePending.Count == 0 || _wakeLoop is { IsCompleted: false }) return;
            _wakeLoop = Task.Run(WakeLoopAsync);
        }
    }

    /// <summary>Sends the wake-ups asked for, one statement at a time, until none wait.</summary>
    private async Task WakeLoopAsync()
    {
        while (true)
        {
            string[] queues;
            lock (_wakeLock)
            {
                if (_wakePending.Count == 0 || _wakeStop.IsCancellationRequested)
                {
                    _wakePending.Clear();
                    return;
                }

                queues = [.. _wakePending];
                _wakePending.Clear();
            }

            try
            {
                await WithConnectionAsync(async connection =>
                {
                    await using var command = new NpgsqlCommand(_sql.NotifyWithoutFlush, connection)
                    {
                        Parameters = { Text(_channel), Text(_sender + "/"), Texts(queues) },
                    };
                    await command.ExecuteNonQueryAsync(_wakeStop.Token).ConfigureAwait(false);
                    return true;
                }, _wakeStop.Token).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                // Whatever went wrong (the server is away, the store is being disposed), other hosts' workers find the jobs
                // at their next poll.
                if (!_wakeStop.IsCancellationRequested) PostgreSqlLog.WakeFailed(_logger, _channel, ex);
            }
        }
    }

    /// <summary>How many enqueue groups were committed (each one round trip and one commit).</summary>
    internal long EnqueueGroups => _enqueues.Groups;

    /// <summary>How many completion groups were committed.</summary>
    internal long FinishGroups => _finishes.Sum(f => f.Groups);

    internal DateTimeOffset Now => _time.GetUtcNow().ToUniversalTime();

    private static NpgsqlDataSource BuildDataSource(string connectionString)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);

        // Hot statements run thousands of times a second: let Npgsql prepare them, unless the host chose otherwise.
        if (!AutoPrepareSetting().IsMatch(connectionString)) builder.MaxAutoPrepare = 64;

        // This pool is the storage's own, and its statements leave no session state behind (transaction-scoped locks
        // only; the LISTEN connection unlistens before it goes back): skip the reset statements sent on every reuse.
        if (!ResetOnCloseSetting().IsMatch(connectionString)) builder.NoResetOnClose = true;
        return new NpgsqlDataSourceBuilder(builder.ConnectionString).Build();
    }

    [GeneratedRegex(@"max\s*auto\s*prepare", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex AutoPrepareSetting();

    [GeneratedRegex(@"no\s*reset\s*on\s*close", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex ResetOnCloseSetting();

    // ---------------------------------------------------------------- migrations

    public async Task MigrateAsync(CancellationToken cancellationToken = default)
    {
        await WithConnectionAsync(async connection =>
        {
            var transaction = await connection.BeginTransactionAsync(IsolationLevel.ReadCommitted, cancellationToken).ConfigureAwait(false);
            await using (transaction.ConfigureAwait(false))
            {
                // Hosts starting together wait here for each other; the first applies what is missing, the others find it done.
                await ExecuteAsync(connection, transaction, "SELECT pg_advisory_xact_lock($1, $2)", cancellationToken, Integer(MigrationLockClass), Integer((int)_sql.LockSeed)).ConfigureAwait(false);
                var exists = await ScalarAsync(connection, transaction, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", cancellationToken, Text(_schemaName)).ConfigureAwait(false);
                if (Convert.ToInt64(exists, CultureInfo.InvariantCulture) == 0) await ExecuteAsync(connection, transaction, $"CREATE SCHEMA {_sql.S}", cancellationToken).ConfigureAwait(false);
                await ExecuteAsync(connection, transaction, $"CREATE TABLE IF NOT EXISTS {_sql.S}.migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL)", cancellationToken).ConfigureAwait(false);

                var applied = new HashSet<int>();
                await using (var command = new NpgsqlCommand($"SELECT version FROM {_sql.S}.migrations", connection, transaction))
                {
                    var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                    await using (reader.ConfigureAwait(false))
                    {
                        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) applied.Add(reader.GetInt32(0));
                    }
                }

                foreach (var (version, name, sql) in PostgreSqlMigrations.All)
                {
                    if (applied.Contains(version)) continue;
                    await ExecuteAsync(connection, transaction, sql.Replace("{s}", _sql.S, StringComparison.Ordinal), cancellationToken).ConfigureAwait(false);
                    await ExecuteAsync(connection, transaction, $"INSERT INTO {_sql.S}.migrations (version, name, applied_at) VALUES ($1, $2, $3)", cancellationToken,
                        Integer(version), Text(name), Timestamp(Now)).ConfigureAwait(false);
                    PostgreSqlLog.Migrated(_logger, _schemaName, version, name);
                }

                await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            }

            return true;
        }, cancellationToken).ConfigureAwait(false);
    }

    // ---------------------------------------------------------------- enqueue

    public async Task<IReadOnlyList<EnqueueResult>> EnqueueAsync(IReadOnlyList<NewJob> jobs, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(jobs);
        if (jobs.Count == 0) return Array.Empty<EnqueueResult>();
        return await _enqueues.SubmitAsync(jobs.ToArray(), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>One group of enqueue requests: all their jobs in one implicit transaction, then split back per request.</summary>
    private async Task<EnqueueResult[][]> WriteEnqueuesAsync(IReadOnlyList<NewJob[]> requests, CancellationToken cancellationToken)
    {
        var all = requests.Count == 1 ? requests[0] : requests.SelectMany(r => r).ToArray();
        var results = await WithConnectionAsync(
            connection => InsertJobsAsync(connection, null, all, null, cancellationToken), cancellationToken, retryConflicts: true).ConfigureAwait(false);
        WakeOthersAfterCommit(all.Select(j => j.Queue));
        var split = new EnqueueResult[requests.Count][];
        var offset = 0;
        for (var i = 0; i < requests.Count; i++)
        {
            split[i] = results.AsSpan(offset, requests[i].Length).ToArray();
            offset += requests[i].Length;
        }

        return split;
    }

    /// <summary>
    /// Adds jobs in list order in one batch of statements: key locks, one multi-row insert, the head repair a dedupe conflict
    /// may need, and the lookup of duplicates' ids. Without <paramref name="transaction"/> the batch is its own (implicit)
    /// transaction; with one, it joins the caller's and everything commits or rolls back with it. With a
    /// <paramref name="notifySender"/> the batch also sends one NOTIFY per queue, in the transaction (for a host's own
    /// transaction, whose commit this store does not see); without one, the caller wakes other processes with
    /// <see cref="WakeOthersAfterCommit"/> once it has committed. <paramref name="keysLocked"/>: the caller's transaction
    /// already holds the locks of every key in the list.
    /// </summary>
    internal async Task<EnqueueResult[]> InsertJobsAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, IReadOnlyList<NewJob> jobs, string? notifySender, CancellationToken cancellationToken, bool keysLocked = false)
    {
        var now = Now;
        var results = new EnqueueResult[jobs.Count];

        // Duplicates within the list resolve to the first job with that dedupe key, as if added one by one.
        var dupOf = new int[jobs.Count];
        var fresh = new List<int>(jobs.Count);
        var firstByDedupe = new Dictionary<(string, string), int>();
        var keyed = new HashSet<(string, string)>();
        var cand = new List<bool>(jobs.Count);
        var hasDedupe = false;
        for (var i = 0; i < jobs.Count; i++)
        {
            var job = jobs[i];
            dupOf[i] = -1;
            if (job.DedupeKey is not null)
            {
                if (firstByDedupe.TryGetValue((job.Queue, job.DedupeKey), out var first))
                {
                    dupOf[i] = first;
                    continue;
                }

                firstByDedupe[(job.Queue, job.DedupeKey)] = i;
                hasDedupe = true;
            }

            fresh.Add(i);

            // Only a key's first job in the list may become its head; the ones behind it wait for it.
            cand.Add(job.Key is not null && keyed.Add((job.Queue, job.Key)));
        }

        var n = fresh.Count;
        var queues = new string?[n];
        var keys = new string?[n];
        var payloads = new string?[n];
        var priorities = new int[n];
        var maxAttempts = new int[n];
        var runAts = new DateTimeOffset[n];
        var dedupes = new string?[n];
        for (var f = 0; f < n; f++)
        {
            var job = jobs[fresh[f]];
            queues[f] = job.Queue;
            keys[f] = job.Key;
            payloads[f] = job.Payload;
            priorities[f] = job.Priority;
            maxAttempts[f] = job.MaxAttempts;
            runAts[f] = job.RunAt.ToUniversalTime();
            dedupes[f] = job.DedupeKey;
        }

        var lockQueues = keyed.Select(k => (string?)k.Item1).ToArray();
        var keyNames = keyed.Select(k => (string?)k.Item2).ToArray();
        var dedupeRows = fresh.Where(i => jobs[i].DedupeKey is not null).ToList();

        await using var batch = new NpgsqlBatch(connection, transaction);
        var lockKeys = keyed.Count > 0 && !keysLocked;
        if (lockKeys) batch.BatchCommands.Add(Command(_sql.LockKeysOfArrays, Texts(lockQueues), Texts(keyNames)));
        batch.BatchCommands.Add(Command(_sql.Insert, Texts(queues), Texts(keys), Texts(payloads), Integers(priorities), Integers(maxAttempts), Timestamps(runAts), Texts(dedupes), Booleans(cand.ToArray()), Timestamp(now)));

        // A key's first job skipped as a duplicate would leave the jobs behind it without a head: repair, under the same locks.
        if (keyed.Count > 0 && hasDedupe) batch.BatchCommands.Add(Command(_sql.EnsureHeadsOfArrays, Texts(lockQueues), Texts(keyNames)));
        if (hasDedupe)
        {
            batch.BatchCommands.Add(Command(_sql.LiveByDedupe,
                Texts(dedupeRows.Select(i => (string?)jobs[i].Queue).ToArray()), Texts(dedupeRows.Select(i => jobs[i].DedupeKey).ToArray())));
        }

        if (_options.UseNotifications && notifySender is not null)
        {
            batch.BatchCommands.Add(Command(_sql.Notify, Text(_channel), Text(notifySender + "/"), Texts(queues.Distinct(StringComparer.Ordinal).ToArray())));
        }

        var inserted = new List<(long Id, string Queue, string? Dedupe)>(n);
        var live = new Dictionary<(string, string), long>();
        var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await using (reader.ConfigureAwait(false))
        {
            if (lockKeys) await reader.NextResultAsync(cancellationToken).ConfigureAwait(false); // past the lock's row
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                inserted.Add((reader.GetInt64(0), reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetString(2)));
            }

            if (hasDedupe)
            {
                await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) live[(reader.GetString(0), reader.GetString(1))] = reader.GetInt64(2);
            }

            while (await reader.NextResultAsync(cancellationToken).ConfigureAwait(false))
            {
                // The NOTIFY's row.
            }
        }

        // Inserted rows come back in insert (list) order; a fresh job missing from them was skipped by its dedupe key.
        inserted.Sort(static (a, b) => a.Id.CompareTo(b.Id));
        var next = 0;
        var unresolved = new List<int>();
        foreach (var i in fresh)
        {
            var job = jobs[i];
            if (next < inserted.Count && string.Equals(inserted[next].Queue, job.Queue, StringComparison.Ordinal) && string.Equals(inserted[next].Dedupe, job.DedupeKey, StringComparison.Ordinal))
            {
                results[i] = new EnqueueResult(inserted[next++].Id, false);
            }
            else if (job.DedupeKey is not null && live.TryGetValue((job.Queue, job.DedupeKey), out var existing))
            {
                results[i] = new EnqueueResult(existing, true);
            }
            else
            {
                unresolved.Add(i); // its duplicate finished in between: add it after all
            }
        }

        if (next != inserted.Count) throw new InvalidOperationException("PostgreSQL returned inserted jobs that do not match the request; nothing was lost, but the ids are unknown.");
        if (unresolved.Count > 0)
        {
            var again = await InsertJobsAsync(connection, transaction, unresolved.Select(i => jobs[i]).ToList(), notifySender, cancellationToken, keysLocked).ConfigureAwait(false);
            for (var u = 0; u < unresolved.Count; u++) results[unresolved[u]] = again[u];
        }

        for (var i = 0; i < jobs.Count; i++)
        {
            if (dupOf[i] >= 0) results[i] = new EnqueueResult(results[dupOf[i]].Id, true);
        }

        return results;
    }

    // ---------------------------------------------------------------- claim, finish, leases

    public async Task<IReadOnlyList<ClaimedJob>> ClaimAsync(string queue, int maxJobs, string owner, TimeSpan leaseDuration, CancellationToken cancellationToken = default)
    {
        _claimedQueues.TryAdd(queue, 0);
        var now = Now;
        return await WithConnectionAsync(async connection =>
        {
            // A lost claim (a database crash before the WAL flush) only means the job runs again: no flush wait.
            await using var batch = new NpgsqlBatch(connection);
            batch.BatchCommands.Add(Command(_options.SynchronousClaimsAndOutcomes ? _sql.IndexPlans : _sql.IndexPlansAsynchronousCommit));
            batch.BatchCommands.Add(Command(_sql.Claim, Text(queue), Timestamp(now), Integer(maxJobs), Text(owner), Timestamp(now + leaseDuration)));
            var jobs = new List<ClaimedJob>();
            var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                await reader.NextResultAsync(cancellationToken).ConfigureAwait(false); // past set_config's row
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) jobs.Add(Leased(reader, queue, now));
            }

            if (_claimedKeyed.Count > MaxRememberedClaims) _claimedKeyed.Clear(); // leases lost without an outcome; forgetting is safe
            foreach (var job in jobs) _claimedKeyed[job.Lease.JobId] = (queue, job.Key);

            // RETURNING gives no order; hand jobs out in claim order.
            jobs.Sort(static (a, b) => a.Priority != b.Priority ? b.Priority.CompareTo(a.Priority)
                : a.RunAt != b.RunAt ? a.RunAt.CompareTo(b.RunAt) : a.Lease.JobId.CompareTo(b.Lease.JobId));
            return (IReadOnlyList<ClaimedJob>)jobs;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>A job a statement leased, from its row: id, key, payload, attempts, max_attempts, lease_token, dedupe_key, priority, created_at, run_at.</summary>
    private static ClaimedJob Leased(NpgsqlDataReader reader, string queue, DateTimeOffset now) => new()
    {
        Lease = new JobLease(reader.GetInt64(0), reader.GetInt64(5)),
        Queue = queue,
        Key = reader.IsDBNull(1) ? null : reader.GetString(1),
        Payload = reader.GetString(2),
        Attempt = reader.GetInt32(3),
        MaxAttempts = reader.GetInt32(4),
        DedupeKey = reader.IsDBNull(6) ? null : reader.GetString(6),
        Priority = reader.GetInt32(7),
        CreatedAt = reader.GetFieldValue<DateTimeOffset>(8),
        RunAt = reader.GetFieldValue<DateTimeOffset>(9),
        StartedAt = now,
    };

    /// <summary>Remembers the keys of jobs leased to this process outside <see cref="ClaimAsync"/> (handed over by an ingest), as a claim does.</summary>
    private void RememberClaims(IEnumerable<ClaimedJob> jobs)
    {
        foreach (var job in jobs) _claimedKeyed[job.Lease.JobId] = (job.Queue, job.Key);
    }

    public Task<bool> FinishAsync(JobLease lease, JobOutcome outcome, CancellationToken cancellationToken = default)
    {
        if (!Enum.IsDefined(outcome.Kind)) throw new ArgumentOutOfRangeException(nameof(outcome), outcome.Kind, "Unknown outcome.");
        // One writer, in groups as large as wait. A keyed job's completion that would wait behind a long queue goes to a
        // second writer instead: the key's next job waits for that commit, and each such completion also makes that job
        // its key's head, so a burst of them is written by two server processes. (Unkeyed completions have nobody waiting
        // on them, and fewer, larger groups cost the database less per job.)
        var keyed = _claimedKeyed.TryGetValue(lease.JobId, out var claimed) && claimed.Key is not null;
        var writer = keyed && _finishes[0].Waiting >= SpillOutcomes ? _finishes[1] : _finishes[0];
        return writer.SubmitAsync((lease, outcome), cancellationToken);
    }

    /// <summary>Records a group of outcomes in one round trip: lock the keys the finished jobs leave, update, record attempts, promote the next jobs.</summary>
    private Task<bool[]> WriteFinishesAsync(IReadOnlyList<(JobLease Lease, JobOutcome Outcome)> group, CancellationToken cancellationToken)
    {
        var now = Now;
        var n = group.Count;

        // Sorted by id: rows are locked in array order, and every writer locking several rows does so in ascending id order.
        var finishes = group.OrderBy(f => f.Lease.JobId).ToList();
        var ids = new long[n];
        var tokens = new long[n];
        var kinds = new int[n];
        var errors = new string?[n];
        var retryAts = new DateTimeOffset[n];
        var leaving = new List<long>(n); // keyed jobs leaving their key: their keys are locked and get a new head
        var leavingKeys = new HashSet<(string Queue, string Key)>();
        var unknownKeys = false; // a job claimed before this store started: its key is looked up by id
        for (var i = 0; i < n; i++)
        {
            var (lease, outcome) = finishes[i];
            ids[i] = lease.JobId;
            tokens[i] = lease.Token;
            kinds[i] = (int)outcome.Kind;
            errors[i] = outcome.Error;
            retryAts[i] = (outcome.RetryAt ?? (outcome.Kind == JobOutcomeKind.Released ? DateTimeOffset.UnixEpoch : now)).ToUniversalTime(); // epoch: a release keeps the due time
            var known = _claimedKeyed.TryRemove(lease.JobId, out var claimed);
            if ((!known || claimed.Key is not null) && outcome.Kind is JobOutcomeKind.Completed or JobOutcomeKind.Removed or JobOutcomeKind.Failed or JobOutcomeKind.Canceled)
            {
                leaving.Add(lease.JobId);
                if (known) leavingKeys.Add((claimed.Queue, claimed.Key!));
                else unknownKeys = true;
            }
        }

        // The workers in this process of the queues whose keys get new heads: a key's new head that is due is leased to the
        // worker whose job freed the key, so a key's jobs follow each other without a claim (one for each job that leaves,
        // so a process holds no more jobs than it did). Not the webhook pipeline's queues: their jobs are drains, and a
        // pending drain absorbs the work that arrives for its key until it starts (leasing it at once makes each later
        // arrival insert a drain of its own). Jobs claimed before this store started name no key here: those keys get
        // their heads the plain way.
        var takers = leavingKeys.Count == 0 || unknownKeys || _workers is null ? null
            : leavingKeys.Select(k => k.Queue).Where(q => q is not (InboxQueues.Ingest or InboxQueues.Dispatch)).Distinct(StringComparer.Ordinal)
                .Select(q => (Queue: q, Taker: _workers.TakerOf(q))).Where(t => t.Taker is not null).Select(t => (t.Queue, Taker: t.Taker!)).ToList();
        return WriteFinishesAsync(group, n, now, ids, tokens, kinds, errors, retryAts, leaving, leavingKeys, unknownKeys, takers is { Count: > 0 } ? takers : null, cancellationToken);
    }

    private async Task<bool[]> WriteFinishesAsync(
        IReadOnlyList<(JobLease Lease, JobOutcome Outcome)> group, int n, DateTimeOffset now, long[] ids, long[] tokens, int[] kinds, string?[] errors, DateTimeOffset[] retryAts,
        List<long> leaving, HashSet<(string Queue, string Key)> leavingKeys, bool unknownKeys, List<(string Queue, IJobTaker Taker)>? takers, CancellationToken cancellationToken)
    {
        var (results, leased) = await WithConnectionAsync(async connection =>
        {
            await using var batch = new NpgsqlBatch(connection);
            // A lost outcome only means the job runs again: no flush wait unless configured.
            batch.BatchCommands.Add(Command(_options.SynchronousClaimsAndOutcomes ? _sql.IndexPlans : _sql.IndexPlansAsynchronousCommit));
            // The keys of jobs claimed here are known: lock and repair them by (queue, key), without looking the rows up.
            var leavingIds = leaving.ToArray();
            var keyQueues = leavingKeys.Select(k => (string?)k.Queue).ToArray();
            var keyNames = leavingKeys.Select(k => (string?)k.Key).ToArray();
            if (leavingIds.Length > 0)
            {
                batch.BatchCommands.Add(unknownKeys ? Command(_sql.LockKeysOfIds, Bigints(leavingIds)) : Command(_sql.LockKeysOfArrays, Texts(keyQueues), Texts(keyNames)));
            }

            batch.BatchCommands.Add(Command(_sql.Finish, Bigints(ids), Bigints(tokens), Integers(kinds), Texts(errors), Timestamps(retryAts), Timestamp(now)));
            if (leavingIds.Length > 0)
            {
                batch.BatchCommands.Add(
                    unknownKeys ? Command(_sql.EnsureHeadsOfIds, Bigints(leavingIds))
                    : takers is null ? Command(_sql.EnsureHeadsOfArrays, Texts(keyQueues), Texts(keyNames))
                    : Command(_sql.EnsureHeadsLeased, Texts(keyQueues), Texts(keyNames),
                        Texts(takers.Select(t => (string?)t.Queue).ToArray()), Texts(takers.Select(t => (string?)t.Taker.Owner).ToArray()),
                        Timestamps(takers.Select(t => now + t.Taker.LeaseDuration).ToArray()), Timestamp(now)));
            }

            var done = new HashSet<(long, long)>();
            var handed = new List<ClaimedJob>();
            var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                await reader.NextResultAsync(cancellationToken).ConfigureAwait(false); // past set_config's row
                if (leavingIds.Length > 0) await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) done.Add((reader.GetInt64(0), reader.GetInt64(1)));
                while (await reader.NextResultAsync(cancellationToken).ConfigureAwait(false))
                {
                    if (takers is null) continue;
                    while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        if (reader.GetBoolean(10)) handed.Add(Leased(reader, reader.GetString(11), now));
                    }
                }
            }

            var results = new bool[n];
            for (var i = 0; i < n; i++) results[i] = done.Contains((group[i].Lease.JobId, group[i].Lease.Token));
            return (results, handed);
        }, cancellationToken, retryConflicts: true).ConfigureAwait(false);

        if (leased.Count > 0) _ = HandOverAsync(leased); // not awaited: its releases would wait for this group
        return results;
    }

    /// <summary>
    /// Hands jobs a statement leased to this process's workers (a completion's next heads of its keys, a capture's ingest
    /// jobs, an ingest's drains) to them, once committed (so their runs read what the transaction wrote). A worker that
    /// stopped meanwhile does not take them: they are released to pending (or, if that fails, their leases expire). The
    /// task ends when those releases are written, true when every job was taken; a caller inside a group of outcomes does
    /// not wait for it (the releases are outcomes too).
    /// </summary>
    internal Task<bool> HandOverAsync(IReadOnlyList<ClaimedJob> leased)
    {
        RememberClaims(leased);
        List<Task>? releases = null;
        foreach (var queue in leased.GroupBy(j => j.Queue, StringComparer.Ordinal))
        {
            var jobs = queue.ToList();
            if (_workers?.TakerOf(queue.Key) is { } taker && taker.TryTake(jobs)) continue;
            foreach (var job in jobs) (releases ??= []).Add(ReleaseQuietlyAsync(job.Lease));
        }

        return releases is null ? Task.FromResult(true) : AllReleasedAsync(releases);

        static async Task<bool> AllReleasedAsync(List<Task> releases)
        {
            await Task.WhenAll(releases).ConfigureAwait(false);
            return false;
        }
    }

    private async Task ReleaseQuietlyAsync(JobLease lease)
    {
        try
        {
            await FinishAsync(lease, JobOutcome.Released, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException or ObjectDisposedException)
        {
            // Not released now: the lease expires and the reaper returns the job to pending.
        }
    }

    public async Task<IReadOnlyList<LeaseRenewal>> ExtendLeasesAsync(IReadOnlyList<JobLease> leases, TimeSpan leaseDuration, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(leases);
        if (leases.Count == 0) return Array.Empty<LeaseRenewal>();
        var now = Now;
        var sorted = leases.OrderBy(l => l.JobId).ToList(); // locked in ascending id order, like every multi-row write
        var ids = sorted.Select(l => l.JobId).ToArray();
        var tokens = sorted.Select(l => l.Token).ToArray();
        var extended = await WithConnectionAsync(async connection =>
        {
            await using var command = new NpgsqlCommand(_sql.Extend, connection);
            command.Parameters.Add(Bigints(ids));
            command.Parameters.Add(Bigints(tokens));
            command.Parameters.Add(Timestamp(now + leaseDuration));
            command.Parameters.Add(Timestamp(now));
            var rows = new Dictionary<(long, long), bool>();
            var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) rows[(reader.GetInt64(0), reader.GetInt64(1))] = reader.GetBoolean(2);
            }

            return rows;
        }, cancellationToken, retryConflicts: true).ConfigureAwait(false);

        var renewals = new LeaseRenewal[leases.Count];
        for (var i = 0; i < leases.Count; i++)
        {
            renewals[i] = !extended.TryGetValue((leases[i].JobId, leases[i].Token), out var cancel) ? LeaseRenewal.Lost
                : cancel ? LeaseRenewal.CancelRequested : LeaseRenewal.Extended;
            if (renewals[i] == LeaseRenewal.Lost) _claimedKeyed.TryRemove(leases[i].JobId, out _);
        }

        return renewals;
    }

    public async Task<int> ReapExpiredLeasesAsync(CancellationToken cancellationToken = default)
    {
        var total = 0;
        while (true)
        {
            var now = Now;
            var count = await WithConnectionAsync(async connection =>
            {
                // Usually nothing expired: one cheap index probe, no locks.
                var expired = new List<long>();
                await using (var select = new NpgsqlCommand(_sql.Expired, connection))
                {
                    select.Parameters.Add(Timestamp(now));
                    select.Parameters.Add(Integer(ReapChunk));
                    var reader = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                    await using (reader.ConfigureAwait(false))
                    {
                        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) expired.Add(reader.GetInt64(0));
                    }
                }

                if (expired.Count == 0) return (Reaped: 0, Selected: 0);
                var ids = expired.ToArray();
                await using var batch = new NpgsqlBatch(connection);
                batch.BatchCommands.Add(Command(_sql.LockKeysOfIds, Bigints(ids)));
                batch.BatchCommands.Add(Command(_sql.Reap, Bigints(ids), Timestamp(now), Text(LeaseExpiredError)));
                batch.BatchCommands.Add(Command(_sql.EnsureHeadsOfIds, Bigints(ids)));
                var reaped = 0;
                var batchReader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                await using (batchReader.ConfigureAwait(false))
                {
                    await batchReader.NextResultAsync(cancellationToken).ConfigureAwait(false);
                    if (await batchReader.ReadAsync(cancellationToken).ConfigureAwait(false)) reaped = (int)batchReader.GetInt64(0);
                    while (await batchReader.NextResultAsync(cancellationToken).ConfigureAwait(false))
                    {
                    }
                }

                return (Reaped: reaped, Selected: expired.Count);
            }, cancellationToken, retryConflicts: true).ConfigureAwait(false);
            total += count.Reaped;
            if (count.Selected < ReapChunk) return total;
        }
    }

    // ---------------------------------------------------------------- reads

    private const string JobColumns = "id, queue, key, payload, status, priority, attempts, max_attempts, dedupe_key, run_at, last_error, created_at, started_at, finished_at, lease_owner, lease_expires_at, cancel_requested";

    public Task<JobInfo?> GetJobAsync(long id, CancellationToken cancellationToken = default) =>
        WithConnectionAsync(async connection =>
        {
            await using var command = new NpgsqlCommand($"SELECT {JobColumns} FROM {_sql.S}.jobs WHERE id = $1", connection);
            command.Parameters.Add(Bigint(id));
            var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                return await reader.ReadAsync(cancellationToken).ConfigureAwait(false) ? ReadJob(reader) : null;
            }
        }, cancellationToken);

    private static JobInfo ReadJob(NpgsqlDataReader reader) => new()
    {
        Id = reader.GetInt64(0),
        Queue = reader.GetString(1),
        Key = reader.IsDBNull(2) ? null : reader.GetString(2),
        Payload = reader.GetString(3),
        Status = (JobStatus)reader.GetInt16(4),
        Priority = reader.GetInt32(5),
        Attempts = reader.GetInt32(6),
        MaxAttempts = reader.GetInt32(7),
        DedupeKey = reader.IsDBNull(8) ? null : reader.GetString(8),
        RunAt = reader.GetFieldValue<DateTimeOffset>(9),
        LastError = reader.IsDBNull(10) ? null : reader.GetString(10),
        CreatedAt = reader.GetFieldValue<DateTimeOffset>(11),
        StartedAt = reader.IsDBNull(12) ? null : reader.GetFieldValue<DateTimeOffset>(12),
        FinishedAt = reader.IsDBNull(13) ? null : reader.GetFieldValue<DateTimeOffset>(13),
        LeaseOwner = reader.IsDBNull(14) ? null : reader.GetString(14),
        LeaseExpiresAt = reader.IsDBNull(15) ? null : reader.GetFieldValue<DateTimeOffset>(15),
        CancelRequested = reader.GetBoolean(16),
    };

    public Task<IReadOnlyList<JobAttemptInfo>> GetAttemptsAsync(long id, CancellationToken cancellationToken = default) =>
        WithConnectionAsync(async connection =>
        {
            await using var command = new NpgsqlCommand(_sql.Attempts, connection);
            command.Parameters.Add(Bigint(id));
            var attempts = new List<JobAttemptInfo>();
            var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    attempts.Add(new JobAttemptInfo(reader.GetInt32(0), reader.GetFieldValue<DateTimeOffset>(1), reader.GetFieldValue<DateTimeOffset>(2),
                        (JobAttemptOutcome)reader.GetInt16(3), reader.IsDBNull(4) ? null : reader.GetString(4), reader.IsDBNull(5) ? null : reader.GetString(5)));
                }
            }

            return (IReadOnlyList<JobAttemptInfo>)attempts;
        }, cancellationToken);

    /// <summary>Builds the WHERE clause of a filter; values go in parameters, never in the SQL text.</summary>
    private static string Where(JobQuery query, NpgsqlParameterCollection parameters, bool paging)
    {
        var where = new StringBuilder("TRUE");
        void Add(string condition, NpgsqlParameter parameter)
        {
            parameters.Add(parameter);
            where.Append(" AND ").Append(condition).Append(" $").Append(parameters.Count.ToString(CultureInfo.InvariantCulture));
        }

        if (query.Queue is not null) Add("queue =", Text(query.Queue));
        if (query.Status is { } status) Add("status =", Integer((int)status));
        if (query.Key is not null) Add("key =", Text(query.Key));
        if (query.CreatedBefore is { } before) Add("created_at <", Timestamp(before));
        if (paging && query.BeforeId is { } id) Add("id <", Bigint(id));
        return where.ToString();
    }

    public Task<JobPage> ListJobsAsync(JobQuery query, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        return WithConnectionAsync(async connection =>
        {
            await using var command = new NpgsqlCommand { Connection = connection };
            var where = Where(query, command.Parameters, paging: true);
            command.Parameters.Add(Integer(query.Limit + 1));
            command.CommandText = $"SELECT {JobColumns} FROM {_sql.S}.jobs WHERE {where} ORDER BY id DESC LIMIT ${command.Parameters.Count.ToString(CultureInfo.InvariantCulture)}";
            var jobs = new List<JobInfo>();
            var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) jobs.Add(ReadJob(reader));
            }

            if (jobs.Count <= query.Limit) return new JobPage(jobs, null);
            jobs.RemoveAt(jobs.Count - 1);
            return new JobPage(jobs, jobs[^1].Id);
        }, cancellationToken);
    }

    public Task<IReadOnlyList<QueueStats>> GetStatsAsync(CancellationToken cancellationToken = default) =>
        WithConnectionAsync(async connection =>
        {
            await using var command = new NpgsqlCommand($"SELECT queue, status, count(*) FROM {_sql.S}.jobs GROUP BY queue, status", connection);
            var counts = new List<(string Queue, int Status, long Count)>();
            var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) counts.Add((reader.GetString(0), reader.GetInt16(1), reader.GetInt64(2)));
            }

            return StatsBuilder.Build(counts);
        }, cancellationToken);

    // ---------------------------------------------------------------- operations

    public Task<CancelJobResult> CancelAsync(long id, CancellationToken cancellationToken = default) =>
        InTransactionAsync(async (connection, transaction) =>
        {
            var now = Now;
            await ExecuteAsync(connection, transaction, _sql.LockKeyOfId, cancellationToken, Bigint(id)).ConfigureAwait(false);
            short status;
            string queue;
            string? key;
            await using (var select = new NpgsqlCommand($"SELECT status, queue, key FROM {_sql.S}.jobs WHERE id = $1 FOR UPDATE", connection, transaction))
            {
                select.Parameters.Add(Bigint(id));
                var reader = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                await using (reader.ConfigureAwait(false))
                {
                    if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) return CancelJobResult.NotFound;
                    status = reader.GetInt16(0);
                    queue = reader.GetString(1);
                    key = reader.IsDBNull(2) ? null : reader.GetString(2);
                }
            }

            switch ((JobStatus)status)
            {
                case JobStatus.Pending:
                    await ExecuteAsync(connection, transaction, $"UPDATE {_sql.S}.jobs SET status = 4, finished_at = $2, last_error = 'Canceled before it ran.' WHERE id = $1", cancellationToken,
                        Bigint(id), Timestamp(now)).ConfigureAwait(false);
                    if (key is not null)
                    {
                        await ExecuteAsync(connection, transaction, _sql.EnsureHeadsOfArrays, cancellationToken, Texts([queue]), Texts([key])).ConfigureAwait(false);
                        await NotifyAsync(connection, transaction, [queue], cancellationToken).ConfigureAwait(false);
                    }

                    return CancelJobResult.Canceled;
                case JobStatus.Processing:
                    await ExecuteAsync(connection, transaction, $"UPDATE {_sql.S}.jobs SET cancel_requested = true WHERE id = $1", cancellationToken, Bigint(id)).ConfigureAwait(false);
                    return CancelJobResult.CancellationRequested;
                default:
                    return CancelJobResult.AlreadyFinished;
            }
        }, cancellationToken);

    public async Task<int> RequeueAsync(long? id, JobQuery? filter, CancellationToken cancellationToken = default)
    {
        var total = 0;
        long after = 0;
        while (true)
        {
            // In chunks, so one large requeue does not hold many locks for long.
            var (count, last, more) = await InTransactionAsync((connection, transaction) => RequeueChunkAsync(connection, transaction, id, filter, after, cancellationToken), cancellationToken)
                .ConfigureAwait(false);
            total += count;
            if (!more) return total;
            after = last;
        }
    }

    private async Task<(int Count, long Last, bool More)> RequeueChunkAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, long? id, JobQuery? filter, long after, CancellationToken cancellationToken)
    {
        var now = Now;
        var candidates = new List<(long Id, string Queue, string? Key)>();
        await using (var select = new NpgsqlCommand { Connection = connection, Transaction = transaction })
        {
            if (id is not null)
            {
                select.CommandText = $"SELECT id, queue, key FROM {_sql.S}.jobs WHERE id = $1 AND status IN (3, 4)";
                select.Parameters.Add(Bigint(id.Value));
            }
            else
            {
                var where = Where(filter ?? new JobQuery(), select.Parameters, paging: false);
                select.Parameters.Add(Bigint(after));
                select.CommandText = $"SELECT id, queue, key FROM {_sql.S}.jobs WHERE status = 3 AND {where} AND id > ${select.Parameters.Count.ToString(CultureInfo.InvariantCulture)} ORDER BY id LIMIT {DeleteChunk.ToString(CultureInfo.InvariantCulture)}";
            }

            var reader = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) candidates.Add((reader.GetInt64(0), reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetString(2)));
            }
        }

        if (candidates.Count == 0) return (0, 0, false);
        var ids = candidates.Select(c => c.Id).ToArray();
        var keys = candidates.Where(c => c.Key is not null).Select(c => (c.Queue, c.Key!)).Distinct().ToList();
        var keyQueues = keys.Select(k => (string?)k.Queue).ToArray();
        var keyNames = keys.Select(k => (string?)k.Item2).ToArray();
        if (keys.Count > 0) await ExecuteAsync(connection, transaction, _sql.LockKeysOfArrays, cancellationToken, Texts(keyQueues), Texts(keyNames)).ConfigureAwait(false);
        var count = Convert.ToInt32(await ScalarAsync(connection, transaction, _sql.Requeue, cancellationToken, Bigints(ids), Timestamp(now)).ConfigureAwait(false), CultureInfo.InvariantCulture);
        if (keys.Count > 0) await ExecuteAsync(connection, transaction, _sql.EnsureHeadsOfArrays, cancellationToken, Texts(keyQueues), Texts(keyNames)).ConfigureAwait(false);
        if (count > 0) await NotifyAsync(connection, transaction, candidates.Select(c => c.Queue).Distinct(StringComparer.Ordinal).ToArray(), cancellationToken).ConfigureAwait(false);
        return (count, candidates[^1].Id, id is null && candidates.Count == DeleteChunk);
    }

    public async Task<int> PurgeAsync(JobQuery filter, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(filter);
        var total = 0;
        while (true)
        {
            var (deleted, selected) = await InTransactionAsync((connection, transaction) => PurgeChunkAsync(connection, transaction, filter, cancellationToken), cancellationToken).ConfigureAwait(false);
            total += deleted;
            if (selected < DeleteChunk) return total;
        }
    }

    private async Task<(int Deleted, int Selected)> PurgeChunkAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, JobQuery filter, CancellationToken cancellationToken)
    {
        var victims = new List<(long Id, string Queue, string? Key)>();
        await using (var select = new NpgsqlCommand { Connection = connection, Transaction = transaction })
        {
            var where = Where(filter, select.Parameters, paging: false);
            select.CommandText = $"SELECT id, queue, key FROM {_sql.S}.jobs WHERE status <> 1 AND {where} ORDER BY id LIMIT {DeleteChunk.ToString(CultureInfo.InvariantCulture)}";
            var reader = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) victims.Add((reader.GetInt64(0), reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetString(2)));
            }
        }

        if (victims.Count == 0) return (0, 0);
        var ids = victims.Select(v => v.Id).ToArray();
        var keys = victims.Where(v => v.Key is not null).Select(v => (v.Queue, v.Key!)).Distinct().ToList();
        var keyQueues = keys.Select(k => (string?)k.Queue).ToArray();
        var keyNames = keys.Select(k => (string?)k.Item2).ToArray();
        if (keys.Count > 0) await ExecuteAsync(connection, transaction, _sql.LockKeysOfArrays, cancellationToken, Texts(keyQueues), Texts(keyNames)).ConfigureAwait(false);
        var deleted = Convert.ToInt32(await ScalarAsync(connection, transaction, _sql.Purge, cancellationToken, Bigints(ids)).ConfigureAwait(false), CultureInfo.InvariantCulture);
        if (keys.Count > 0)
        {
            // A purged head lets the next job of its key run.
            await ExecuteAsync(connection, transaction, _sql.EnsureHeadsOfArrays, cancellationToken, Texts(keyQueues), Texts(keyNames)).ConfigureAwait(false);
            await NotifyAsync(connection, transaction, keys.Select(k => k.Queue).Distinct(StringComparer.Ordinal).ToArray(), cancellationToken).ConfigureAwait(false);
        }

        return (deleted, victims.Count);
    }

    public async Task<int> DeleteFinishedAsync(DateTimeOffset finishedBefore, CancellationToken cancellationToken = default)
    {
        var total = 0;
        while (true)
        {
            // Chunks keep each transaction short: retention never holds a long lock or a huge WAL burst.
            var count = await WithConnectionAsync(async connection =>
                Convert.ToInt32(await ScalarAsync(connection, null, _sql.DeleteFinished, cancellationToken, Timestamp(finishedBefore), Integer(DeleteChunk)).ConfigureAwait(false), CultureInfo.InvariantCulture),
                cancellationToken).ConfigureAwait(false);
            total += count;
            if (count < DeleteChunk) return total;
        }
    }

    // ---------------------------------------------------------------- wake-up

    /// <inheritdoc/>
    /// <remarks>
    /// Idle cost: with notifications on, an idle worker polls its queue once per <see cref="PostgreSqlStorageOptions.BackstopPollInterval"/>
    /// (5 s by default) instead of every MaxPollInterval (1 s), the lease reaper runs every 5 s, and the listener checks its
    /// connection every 30 s: three idle queues cost the database 0.6 + 0.2 + 0.03, under one query per second per host.
    /// </remarks>
    public TimeSpan? BackstopPollInterval => _options.UseNotifications ? _options.BackstopPollInterval : null;

    public async Task ListenAsync(Action<string> wake, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(wake);
        if (!_options.UseNotifications) return;
        var backoff = TimeSpan.Zero;
        var failed = false;
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                var connection = await DataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
                await using (connection.ConfigureAwait(false))
                {
                    connection.Notification += (_, e) => OnNotification(e.Payload, wake);
                    await using (var listen = new NpgsqlCommand($"LISTEN \"{_channel}\"", connection))
                    {
                        await listen.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                    }

                    if (failed) PostgreSqlLog.ListenRestored(_logger, _channel);
                    failed = false;
                    backoff = TimeSpan.Zero;

                    // Notifications sent while this connection was down are lost: wake every queue claimed here once.
                    foreach (var queue in _claimedQueues.Keys) wake(queue);
                    try
                    {
                        while (true)
                        {
                            if (await connection.WaitAsync(ListenCheckInterval, cancellationToken).ConfigureAwait(false)) continue;

                            // Quiet for a while: make sure the connection is still alive (a dead peer sends nothing).
                            await using var ping = new NpgsqlCommand("SELECT 1", connection);
                            await ping.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
                        }
                    }
                    catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested && connection.State == ConnectionState.Open)
                    {
                        // Back to the pool without the LISTEN (the pool may skip its reset).
                        try
                        {
                            await using var unlisten = new NpgsqlCommand("UNLISTEN *", connection);
                            await unlisten.ExecuteNonQueryAsync(CancellationToken.None).ConfigureAwait(false);
                        }
                        catch (NpgsqlException)
                        {
                            // The connection broke with the cancellation: it will not be reused.
                        }

                        throw;
                    }
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                failed = true;
                backoff = backoff == TimeSpan.Zero ? TimeSpan.FromMilliseconds(200) : TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxListenBackoff.Ticks));
                PostgreSqlLog.ListenFailed(_logger, _channel, backoff, ex);
                ForgetBrokenConnections(ex);
                try
                {
                    await Task.Delay(backoff, _time, cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    private void OnNotification(string payload, Action<string> wake)
    {
        // Payload: "{sender}/{queue}". This process's own enqueues already woke its workers in-process.
        var slash = payload.IndexOf('/', StringComparison.Ordinal);
        if (slash < 0) return;
        if (payload.AsSpan(0, slash).SequenceEqual(_sender)) return;
        wake(payload[(slash + 1)..]);
    }

    private async Task NotifyAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, string[] queues, CancellationToken cancellationToken)
    {
        if (!_options.UseNotifications || queues.Length == 0) return;
        await ExecuteAsync(connection, transaction, _sql.Notify, cancellationToken, Text(_channel), Text("/"), Texts(queues)).ConfigureAwait(false);
    }

    // ---------------------------------------------------------------- plumbing

    /// <summary>
    /// Runs <paramref name="work"/> on a pooled connection. When the server went away, idle pooled connections are dropped
    /// at once (they are dead too) so the next call reconnects instead of failing again. With <paramref name="retryConflicts"/>,
    /// a deadlock or serialization failure (the transaction was rolled back) is retried.
    /// </summary>
    internal async Task<T> WithConnectionAsync<T>(Func<NpgsqlConnection, Task<T>> work, CancellationToken cancellationToken, bool retryConflicts = false)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                var connection = await DataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
                await using (connection.ConfigureAwait(false))
                {
                    return await work(connection).ConfigureAwait(false);
                }
            }
            catch (PostgresException ex) when (retryConflicts && attempt < 4 && ex.SqlState is PostgresErrorCodes.DeadlockDetected or PostgresErrorCodes.SerializationFailure)
            {
                // Rolled back: safe to run again.
            }
            catch (Exception ex) when (ForgetBrokenConnections(ex))
            {
                throw;
            }
        }
    }

    internal Task<T> InTransactionAsync<T>(Func<NpgsqlConnection, NpgsqlTransaction, Task<T>> work, CancellationToken cancellationToken) =>
        WithConnectionAsync(async connection =>
        {
            var transaction = await connection.BeginTransactionAsync(IsolationLevel.ReadCommitted, cancellationToken).ConfigureAwait(false);
            await using (transaction.ConfigureAwait(false))
            {
                var result = await work(connection, transaction).ConfigureAwait(false);
                await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
                return result;
            }
        }, cancellationToken, retryConflicts: true);

    /// <summary>Always false (an exception filter that only looks): drops idle pooled connections when the server went away.</summary>
    private bool ForgetBrokenConnections(Exception ex)
    {
        var state = (ex as PostgresException)?.SqlState;
        var serverGone = ex is NpgsqlException and not PostgresException
            || state is "57P01" or "57P02" or "57P03"
            || (state is not null && state.StartsWith("08", StringComparison.Ordinal));
        if (serverGone && _dataSource.IsValueCreated)
        {
            PostgreSqlLog.ConnectionLost(_logger, state ?? "connection", ex);
            try
            {
                _dataSource.Value.Clear();
            }
            catch (ObjectDisposedException)
            {
                // Stopping.
            }
        }

        return false;
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, string sql, CancellationToken cancellationToken, params NpgsqlParameter[] parameters)
    {
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        foreach (var parameter in parameters) command.Parameters.Add(parameter);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private static async Task<object?> ScalarAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, string sql, CancellationToken cancellationToken, params NpgsqlParameter[] parameters)
    {
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        foreach (var parameter in parameters) command.Parameters.Add(parameter);
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        await _enqueues.DisposeAsync().ConfigureAwait(false);
        foreach (var finishes in _finishes) await finishes.DisposeAsync().ConfigureAwait(false);
        Task? wakes;
        lock (_wakeLock) wakes = _wakeLoop;
        if (wakes is not null) await Task.WhenAny(wakes, Task.Delay(TimeSpan.FromSeconds(5))).ConfigureAwait(false); // what was asked for goes out
        await _wakeStop.CancelAsync().ConfigureAwait(false);
        if (_ownsDataSource && _dataSource.IsValueCreated) await _dataSource.Value.DisposeAsync().ConfigureAwait(false);
    }

    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();
}
