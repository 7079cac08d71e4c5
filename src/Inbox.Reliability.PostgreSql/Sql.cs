using System.Globalization;

namespace Inbox.Reliability.PostgreSql;

/// <summary>
/// The store's statements for one schema. The schema name is the only identifier put in the SQL text: validated by
/// <see cref="PostgreSqlStorageOptions"/> (letters, digits, underscores) and double-quoted. Every value is a parameter.
/// Statements have a fixed text whatever the number of jobs (arrays, not value lists), so prepared statements are reused.
/// </summary>
internal sealed class Sql
{
    /// <summary>The columns a new job row is inserted with (the other columns keep their defaults).</summary>
    public const string NewJobColumns = "queue, key, is_head, payload, status, priority, attempts, max_attempts, run_at, dedupe_key, created_at";

    public Sql(string schema)
    {
        S = "\"" + schema + "\"";
        LockSeed = Fnv1a64(schema);
        var seed = LockSeed.ToString(CultureInfo.InvariantCulture);

        // The advisory lock id of a (queue, key): a 64-bit hash, seeded per schema so schemas never wait for each other.
        string LockId(string queue, string key) => $"hashtextextended({queue} || chr(31) || {key}, {seed})";

        // Locks are taken in ascending id order, in one statement, before any row of those keys is read or written:
        // two writers never wait for each other in a cycle. count() makes the statement return one row.
        LockKeysOfArrays = $"""
            SELECT count(pg_advisory_xact_lock(l)) FROM (
                SELECT DISTINCT {LockId("k.queue", "k.key")} AS l FROM unnest($1::text[], $2::text[]) AS k(queue, key) WHERE k.key IS NOT NULL ORDER BY 1) AS s
            """;
        LockKeysOfIds = $"""
            SELECT count(pg_advisory_xact_lock(l)) FROM (
                SELECT DISTINCT {LockId("j.queue", "j.key")} AS l FROM {S}.jobs j WHERE j.id = ANY($1::bigint[]) AND j.key IS NOT NULL ORDER BY 1) AS s
            """;
        LockKeyOfId = $"SELECT count(pg_advisory_xact_lock({LockId("j.queue", "j.key")})) FROM {S}.jobs j WHERE j.id = $1 AND j.key IS NOT NULL";

        // A key's first job of the batch becomes its head when the key has no live job. The key lock is held, and this
        // statement's snapshot was taken after it was granted, so no other writer can change the answer until commit.
        Insert = $"""
            INSERT INTO {S}.jobs ({NewJobColumns})
            SELECT t.queue, t.key,
                   t.key IS NULL OR (t.cand AND {KeyHasNoLiveJob(S, "t")}),
                   t.payload, 0, t.priority, 0, t.max_attempts, t.run_at, t.dedupe_key, $9
            FROM unnest($1::text[], $2::text[], $3::text[], $4::integer[], $5::integer[], $6::timestamptz[], $7::text[], $8::boolean[])
                 WITH ORDINALITY AS t(queue, key, payload, priority, max_attempts, run_at, dedupe_key, cand, ord)
            ORDER BY t.ord
            ON CONFLICT (queue, dedupe_key) WHERE status IN (0, 1) AND dedupe_key IS NOT NULL DO NOTHING
            RETURNING id, queue, dedupe_key
            """;

        LiveByDedupe = $"""
            SELECT j.queue, j.dedupe_key, j.id FROM {S}.jobs j
            JOIN unnest($1::text[], $2::text[]) AS d(queue, dedupe_key) ON j.queue = d.queue AND j.dedupe_key = d.dedupe_key
            WHERE j.status IN (0, 1) AND j.dedupe_key IS NOT NULL
            """;

        Notify = "SELECT count(pg_notify($1, $2 || q)) FROM unnest($3::text[]) AS q";
        NotifyWithoutFlush = "SELECT set_config('synchronous_commit', 'off', true), count(pg_notify($1, $2 || q)) FROM unnest($3::text[]) AS q";
        // Claims and outcomes touch a handful of rows by key. The plan of a prepared statement is cached, and one made while
        // the jobs table was nearly empty (a new schema, the first seconds of a burst) would go on reading the whole table,
        // or a whole partial index, on every later call. With these off, what is left is the plan that is right at every
        // size: one index probe per row of the statement's input.
        const string indexPlans = "set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true), "
            + "set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true), set_config('enable_material', 'off', true)";
        IndexPlans = "SELECT " + indexPlans;
        IndexPlansAsynchronousCommit = "SELECT set_config('synchronous_commit', 'off', true), " + indexPlans;

        // The webhook pipeline's statements, with that plan made once: left to choose, PostgreSQL planned the chats'
        // pending-events read and the instances' update anew on every call (the custom plan, which knows the arrays'
        // lengths, looked cheaper than the generic one), and planning cost more than running them. (The job statements
        // keep the choice: forced, the unkeyed burn-down ran slower in 6 of 8 interleaved pairs.)
        const string generic = ", set_config('plan_cache_mode', 'force_generic_plan', true)";
        GenericIndexPlans = IndexPlans + generic;
        GenericIndexPlansAsynchronousCommit = IndexPlansAsynchronousCommit + generic;

        // Makes the oldest pending job of each key its head, for keys that have no live head. Idempotent, and correct
        // whenever the keys' locks are held: after a head finished, was canceled, reaped or purged, or a requeue. A
        // processing job is always a head, so a processing head keeps its key (a requeued older job waits for it).
        string EnsureHeads(string keys) => $"""
            UPDATE {S}.jobs j SET is_head = true
            FROM ({keys}) AS k
            CROSS JOIN LATERAL ({NextPendingOfKey(S, "k")}) AS h
            WHERE j.id = h.id AND NOT j.is_head AND {KeyHasNoLiveHead(S, "k")}
            """;
        EnsureHeadsOfArrays = EnsureHeads("SELECT DISTINCT t.queue, t.key FROM unnest($1::text[], $2::text[]) AS t(queue, key) WHERE t.key IS NOT NULL");
        EnsureHeadsOfIds = EnsureHeads($"SELECT DISTINCT q.queue, q.key FROM {S}.jobs q WHERE q.id = ANY($1::bigint[]) AND q.key IS NOT NULL");

        // EnsureHeadsOfArrays, and a new head that is due, of a queue with a worker in this process ($3-$5: queue, owner
        // and lease expiry of each), is leased to that worker at once (as a claim would: attempt + 1, token + 1, started at
        // $6): the completion that freed the key hands its worker the key's next job, with no claim. One per key the
        // completions free, so the worker holds no more jobs than before them. The update checks again that the row is a
        // pending non-head (the keys' locks are held, so nothing else changes them meanwhile; the check only keeps the
        // statement safe on its own). Rows are written in id order, as every multi-row write here (and nearer each other
        // on disk: 22-24 µs per job against 24-26 unordered).
        EnsureHeadsLeased = $"""
            WITH k AS (SELECT DISTINCT t.queue, t.key FROM unnest($1::text[], $2::text[]) AS t(queue, key) WHERE t.key IS NOT NULL),
            c AS MATERIALIZED (
                SELECT h.id, k.queue, h.run_at FROM k
                CROSS JOIN LATERAL ({NextPendingOfKey(S, "k")}) AS h
                WHERE NOT h.is_head AND {KeyHasNoLiveHead(S, "k")}),
            l AS (
                SELECT c.id, w.owner, w.expires, w.owner IS NOT NULL AND c.run_at <= $6 AS leased
                FROM c LEFT JOIN unnest($3::text[], $4::text[], $5::timestamptz[]) AS w(queue, owner, expires) ON w.queue = c.queue
                ORDER BY c.id)
            UPDATE {S}.jobs j SET is_head = true,
                status = CASE WHEN l.leased THEN 1 ELSE 0 END,
                attempts = CASE WHEN l.leased THEN j.attempts + 1 ELSE j.attempts END,
                lease_owner = CASE WHEN l.leased THEN l.owner ELSE j.lease_owner END,
                lease_expires_at = CASE WHEN l.leased THEN l.expires ELSE j.lease_expires_at END,
                lease_token = CASE WHEN l.leased THEN j.lease_token + 1 ELSE j.lease_token END,
                started_at = CASE WHEN l.leased THEN $6 ELSE j.started_at END,
                cancel_requested = CASE WHEN l.leased THEN false ELSE j.cancel_requested END
            FROM l
            WHERE j.id = l.id AND NOT j.is_head AND j.status = 0
            RETURNING j.id, j.key, j.payload, j.attempts, j.max_attempts, j.lease_token, j.dedupe_key, j.priority, j.created_at, j.run_at, l.leased, j.queue
            """;

        // Only heads are in ix_jobs_ready, so this reads the first due entries of one queue and nothing else. The rows the
        // subquery returns are locked by this statement: the UPDATE needs no conditions but where they are. It finds them
        // by tuple id (a TID scan: no second probe of the primary key per row), which stays theirs while the lock is held.
        // ARRAY(...) runs the locking subquery exactly once: re-run inside a join, each run would skip the rows the
        // previous one just updated and lock the next ones (a claim of 1 would lease 2). Every locking subquery here is
        // run once (MATERIALIZED CTEs elsewhere). A row whose newest version was committed after this statement's snapshot
        // is locked but not visible to the UPDATE: it stays pending, and the claim returns fewer jobs.
        Claim = $"""
            UPDATE {S}.jobs j SET status = 1, attempts = j.attempts + 1, lease_owner = $4, lease_expires_at = $5,
                lease_token = j.lease_token + 1, started_at = $2, cancel_requested = false
            WHERE j.ctid = ANY(ARRAY(
                SELECT ctid FROM {S}.jobs
                WHERE queue = $1 AND status = 0 AND is_head AND run_at <= $2
                ORDER BY priority DESC, run_at, id
                LIMIT $3
                FOR UPDATE SKIP LOCKED))
            RETURNING j.id, j.key, j.payload, j.attempts, j.max_attempts, j.lease_token, j.dedupe_key, j.priority, j.created_at, j.run_at
            """;

        // Outcome kinds: 0 completed, 1 retry, 2 failed, 3 canceled, 4 released (not counted, no attempt recorded),
        // 5 removed (completed and deleted, with the attempts of its earlier retries: a delete writes no index entries,
        // where marking the row completed writes new ones in the primary key and ix_jobs_finished).
        // Attempt outcomes 0-3 have the same numbers. A retry's attempt gets a job_attempts row; a final outcome stays in
        // the job row (final_outcome), so a job that completes at once writes no attempt row. Rows are read by primary
        // key, one probe per id (never a scan of ix_jobs_lease over every processing job), and not locked before
        // they are updated (one heap write per row, not two): a row changed meanwhile (reaped, say) is checked again,
        // newest version, against the lease conditions and left alone when they no longer hold. The lease is live only
        // while the job is processing (status 1 is the only state with a lease_expires_at), so the conditions need not
        // name the status, which would offer the planner ix_jobs_lease.
        Finish = $"""
            WITH done AS (
                UPDATE {S}.jobs j SET
                    status = CASE i.kind WHEN 0 THEN 2 WHEN 2 THEN 3 WHEN 3 THEN 4 ELSE 0 END,
                    finished_at = CASE WHEN i.kind IN (0, 2, 3) THEN $6 ELSE j.finished_at END,
                    run_at = CASE WHEN i.kind = 1 OR (i.kind = 4 AND i.retry_at > j.run_at) THEN i.retry_at ELSE j.run_at END,
                    last_error = CASE WHEN i.kind IN (1, 2, 3) THEN i.error ELSE j.last_error END,
                    attempts = CASE WHEN i.kind = 4 THEN j.attempts - 1 ELSE j.attempts END,
                    lease_token = CASE WHEN i.kind = 4 THEN j.lease_token + 1 ELSE j.lease_token END,
                    lease_expires_at = NULL,
                    final_outcome = CASE WHEN i.kind IN (0, 2, 3) THEN i.kind ELSE NULL END
                FROM unnest($1::bigint[], $2::bigint[], $3::integer[], $4::text[], $5::timestamptz[]) AS i(id, token, kind, error, retry_at)
                WHERE j.id = i.id AND j.lease_token = i.token AND j.lease_expires_at > $6 AND i.kind <> 5
                RETURNING j.id, i.token, i.kind, i.error, j.attempts, j.started_at, j.lease_owner),
            removed AS (
                DELETE FROM {S}.jobs j USING unnest($1::bigint[], $2::bigint[], $3::integer[]) AS i(id, token, kind)
                WHERE j.id = i.id AND i.kind = 5 AND j.lease_token = i.token AND j.lease_expires_at > $6
                RETURNING j.id, i.token),
            attempts AS (
                INSERT INTO {S}.job_attempts (job_id, attempt, started_at, finished_at, outcome, error, worker)
                SELECT d.id, d.attempts, COALESCE(d.started_at, $6), $6, 1, d.error, d.lease_owner
                FROM done d WHERE d.kind = 1),
            history AS (DELETE FROM {S}.job_attempts a WHERE a.job_id IN (SELECT id FROM removed))
            SELECT id, token FROM done UNION ALL SELECT id, token FROM removed
            """;

        Extend = $"""
            WITH input AS (SELECT * FROM unnest($1::bigint[], $2::bigint[]) AS t(id, token)),
            target AS MATERIALIZED (
                SELECT x.id, i.token FROM input i
                CROSS JOIN LATERAL (
                    SELECT j.id FROM {S}.jobs j
                    WHERE j.id = i.id AND j.lease_token = i.token AND j.status = 1 AND j.lease_expires_at > $4
                    FOR UPDATE) AS x)
            UPDATE {S}.jobs j SET lease_expires_at = $3
            FROM target t
            WHERE j.id = t.id
            RETURNING j.id, t.token, j.cancel_requested
            """;

        Expired = $"SELECT id FROM {S}.jobs WHERE status = 1 AND lease_expires_at <= $1 ORDER BY id LIMIT $2";

        Reap = $"""
            WITH target AS MATERIALIZED (
                SELECT id FROM {S}.jobs WHERE id = ANY($1::bigint[]) AND status = 1 AND lease_expires_at <= $2 ORDER BY id FOR UPDATE),
            reaped AS (
                UPDATE {S}.jobs j SET
                    status = CASE WHEN j.cancel_requested THEN 4 WHEN j.attempts >= j.max_attempts THEN 3 ELSE 0 END,
                    finished_at = CASE WHEN j.cancel_requested OR j.attempts >= j.max_attempts THEN $2 ELSE NULL END,
                    last_error = $3, lease_expires_at = NULL, lease_token = j.lease_token + 1, final_outcome = NULL
                FROM target t
                WHERE j.id = t.id
                RETURNING j.id, j.attempts, j.started_at, j.lease_owner),
            attempts AS (
                INSERT INTO {S}.job_attempts (job_id, attempt, started_at, finished_at, outcome, error, worker)
                SELECT r.id, r.attempts, COALESCE(r.started_at, $2), $2, 4, 'The lease expired before the worker recorded an outcome.', r.lease_owner FROM reaped r)
            SELECT count(*) FROM reaped
            """;

        // A requeued job is not a head until the head repair that follows says so (its key may be running).
        // Its final attempt moves from the row into job_attempts first, since the row starts over.
        // Among failed jobs sharing a dedupe key only the oldest comes back, and none while a live job holds the key.
        Requeue = $"""
            WITH target AS MATERIALIZED (
                SELECT c.id, c.attempts, c.started_at, c.finished_at, c.final_outcome, c.last_error, c.lease_owner FROM {S}.jobs c
                WHERE c.id = ANY($1::bigint[]) AND c.status IN (3, 4)
                  AND (c.dedupe_key IS NULL OR (
                      NOT EXISTS (SELECT 1 FROM {S}.jobs d WHERE d.queue = c.queue AND d.dedupe_key = c.dedupe_key AND d.status IN (0, 1))
                      AND c.id = (SELECT min(e.id) FROM {S}.jobs e WHERE e.id = ANY($1::bigint[]) AND e.queue = c.queue AND e.dedupe_key = c.dedupe_key AND e.status IN (3, 4))))
                ORDER BY c.id FOR UPDATE),
            kept AS (
                INSERT INTO {S}.job_attempts (job_id, attempt, started_at, finished_at, outcome, error, worker)
                SELECT t.id, t.attempts, COALESCE(t.started_at, t.finished_at), t.finished_at, t.final_outcome,
                       CASE WHEN t.final_outcome = 0 THEN NULL ELSE t.last_error END, t.lease_owner
                FROM target t WHERE t.final_outcome IS NOT NULL AND t.finished_at IS NOT NULL),
            requeued AS (
                UPDATE {S}.jobs j SET status = 0, attempts = 0, run_at = $2, finished_at = NULL, lease_expires_at = NULL,
                    cancel_requested = false, is_head = (j.key IS NULL), final_outcome = NULL
                FROM target t WHERE j.id = t.id
                RETURNING j.id)
            SELECT count(*) FROM requeued
            """;

        Attempts = $"""
            SELECT attempt, started_at, finished_at, outcome, error, worker FROM (
                SELECT 0 AS part, a.id, a.attempt, a.started_at, a.finished_at, a.outcome, a.error, a.worker
                FROM {S}.job_attempts a WHERE a.job_id = $1
                UNION ALL
                SELECT 1, j.id, j.attempts, COALESCE(j.started_at, j.finished_at), j.finished_at, j.final_outcome,
                       CASE WHEN j.final_outcome = 0 THEN NULL ELSE j.last_error END, j.lease_owner
                FROM {S}.jobs j WHERE j.id = $1 AND j.final_outcome IS NOT NULL AND j.finished_at IS NOT NULL) AS all_attempts
            ORDER BY part, id
            """;

        Purge = $"""
            WITH deleted AS (DELETE FROM {S}.jobs WHERE id = ANY($1::bigint[]) AND status <> 1 RETURNING id),
            attempts AS (DELETE FROM {S}.job_attempts WHERE job_id IN (SELECT id FROM deleted))
            SELECT count(*) FROM deleted
            """;

        DeleteFinished = $"""
            WITH deleted AS (
                DELETE FROM {S}.jobs WHERE id IN (
                    SELECT id FROM {S}.jobs WHERE status IN (2, 4) AND finished_at < $1 ORDER BY finished_at LIMIT $2)
                  AND status IN (2, 4) AND finished_at < $1
                RETURNING id),
            attempts AS (DELETE FROM {S}.job_attempts WHERE job_id IN (SELECT id FROM deleted))
            SELECT count(*) FROM deleted
            """;
    }

    /// <summary>
    /// True when the key of row <paramref name="row"/> (its <c>queue</c> and <c>key</c> columns) has no live job in
    /// <paramref name="schema"/>'s jobs: no pending job (<c>ix_jobs_key_pending</c>) and no live head
    /// (<c>ix_jobs_key_head</c>). That is every live job, since a processing job is always its key's head: claims and
    /// hand-overs take heads only, and a retry, a release or a lease expiry keeps the flag. Read under the key's lock.
    /// </summary>
    public static string KeyHasNoLiveJob(string schema, string row) =>
        $"NOT EXISTS (SELECT 1 FROM {schema}.jobs x WHERE x.queue = {row}.queue AND x.key = {row}.key AND x.key IS NOT NULL AND x.status = 0) "
        + "AND " + KeyHasNoLiveHead(schema, row);

    /// <summary>True when the key of row <paramref name="row"/> has no head that is pending or processing (<c>ix_jobs_key_head</c>).</summary>
    private static string KeyHasNoLiveHead(string schema, string row) =>
        $"NOT EXISTS (SELECT 1 FROM {schema}.jobs y WHERE y.queue = {row}.queue AND y.key = {row}.key AND y.key IS NOT NULL AND y.status IN (0, 1) AND y.is_head)";

    /// <summary>The oldest pending job of the key of row <paramref name="row"/> (<c>ix_jobs_key_pending</c>): its id, run_at and is_head.</summary>
    private static string NextPendingOfKey(string schema, string row) =>
        $"SELECT x.id, x.run_at, x.is_head FROM {schema}.jobs x WHERE x.queue = {row}.queue AND x.key = {row}.key AND x.key IS NOT NULL AND x.status = 0 ORDER BY x.id LIMIT 1";

    /// <summary>The quoted schema name.</summary>
    public string S { get; }

    /// <summary>A per-schema seed for lock ids.</summary>
    public long LockSeed { get; }

    public string LockKeysOfArrays { get; }

    public string LockKeysOfIds { get; }

    public string LockKeyOfId { get; }

    public string Insert { get; }

    public string LiveByDedupe { get; }

    public string Notify { get; }

    /// <summary><see cref="Notify"/> as a transaction of its own whose commit does not wait for the WAL flush.</summary>
    public string NotifyWithoutFlush { get; }

    /// <summary>This transaction only: plans use indexes (see the constructor); one row of settings.</summary>
    public string IndexPlans { get; }

    /// <summary><see cref="IndexPlans"/>, and this transaction's commit does not wait for the WAL flush.</summary>
    public string IndexPlansAsynchronousCommit { get; }

    /// <summary><see cref="IndexPlans"/>, and prepared statements run on their generic plan (planned once).</summary>
    public string GenericIndexPlans { get; }

    /// <summary><see cref="IndexPlansAsynchronousCommit"/>, and prepared statements run on their generic plan (planned once).</summary>
    public string GenericIndexPlansAsynchronousCommit { get; }

    public string EnsureHeadsOfArrays { get; }

    public string EnsureHeadsOfIds { get; }

    public string Claim { get; }

    public string EnsureHeadsLeased { get; }

    public string Finish { get; }

    public string Extend { get; }

    public string Expired { get; }

    public string Reap { get; }

    public string Requeue { get; }

    /// <summary>A job's attempts, oldest first: the rows of earlier attempts, then the final one kept in the job row.</summary>
    public string Attempts { get; }

    public string Purge { get; }

    public string DeleteFinished { get; }

    /// <summary>FNV-1a: a stable 64-bit hash (string.GetHashCode differs per process).</summary>
    private static long Fnv1a64(string text)
    {
        var hash = 14695981039346656037UL;
        foreach (var c in text)
        {
            hash ^= c;
            hash *= 1099511628211UL;
        }

        return unchecked((long)hash);
    }
}
