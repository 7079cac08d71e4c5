namespace Inbox.Reliability.PostgreSql;

/// <summary>
/// The schema, as numbered migrations applied in order, each once, in one transaction guarded by an advisory lock.
/// <c>{s}</c> stands for the quoted schema name.
/// </summary>
/// <remarks>
/// Index design: every index that a claim or a key check reads is partial over live jobs, so finished rows (most of the
/// table) never slow a claim, and a finished row's update adds no entry to them. Only heads of keys (and unkeyed jobs)
/// are in the ready index, so a key blocked behind a retrying job costs claims nothing, whatever its backlog.
/// <c>ux_jobs_key_head</c> made "at most one live head per key" a constraint the database enforces (until migration 7).
/// Autovacuum is set tighter than the defaults because the table is a queue: rows are updated
/// and deleted all the time (see docs/postgresql.md).
/// <c>final_outcome</c>: a job's last attempt, once the job has finished, lives in the job row itself (started_at,
/// finished_at, lease_owner, last_error, attempts) instead of a <c>job_attempts</c> row, so the usual life of a job
/// (claimed once, completed) writes no attempt row at all; earlier attempts (retries, lease expiries) get rows. A
/// requeue moves the final attempt into <c>job_attempts</c> before the row starts over.
/// Migration 2, the webhook pipeline: <c>ux_raw_webhooks_body</c> stores a body once per provider and instance (captures
/// insert with <c>ON CONFLICT DO NOTHING</c> on it); <c>ix_raw_webhooks_captured</c> is partial over rows waiting for
/// ingest (what an ingest job reads, oldest first); <c>ix_raw_webhooks_failed</c> is partial over failed rows (lists and
/// reprocessing of failed webhooks); other lists walk the primary key, newest first. Every capture and every ingest writes
/// these indexes, so there are no more of them than the queries need.
/// <c>ux_events_dedupe</c> and <c>ux_events_seq</c> make a duplicate event or a reused sequence number impossible whatever
/// the code does; an event's dispatch status update touches no indexed column, so with the fillfactor it stays on its
/// page (HOT). An instance row is updated by every ingest of its instance: fillfactor 50 keeps those HOT too.
/// Migration 3's <c>ix_events_pending</c> (pending events of a chat in order, what a chat's dispatch run reads) is partial
/// over pending events, so a dispatch mark now writes the event's indexes again.
/// Migration 4: queue names, keys, dedupe keys, providers, instances and chat ids are identifiers, compared byte by byte
/// (collation "C"): every index over them compares with memcmp instead of the database's locale rules, whatever
/// locale the database was created with; lists ordered by them come in byte order.
/// Migration 5 drops <c>ix_events_chat</c>: no query reads it (a chat's pending events come from <c>ix_events_pending</c>),
/// and every event insert and dispatch mark wrote it.
/// Migration 6: a key's jobs in order are indexed while pending only (<c>ix_jobs_key_pending</c>; was pending or
/// processing), so a claim, which turns a pending head into a processing one, no longer adds an entry to it, and finding
/// a key's next head walks past fewer entries of jobs that left. A processing job is always its key's head (claims and
/// hand-overs take heads only; a retry, a release and a lease expiry keep the flag), so "the key has a live job" is "it has
/// a pending job or a live head" (<c>ux_jobs_key_head</c>).
/// Migration 7: the index of live heads is no longer unique (<c>ix_jobs_key_head</c> replaces <c>ux_jobs_key_head</c>).
/// Every new head of a key (each completion that hands the key's next job over) inserts an entry, and a unique insert
/// visits the heap rows of the entries the key's earlier heads left there until vacuum removes them; without it the keyed
/// burn-down is 16% faster (medians of eight interleaved pairs). One live head per key is what the key locks guarantee:
/// every write that changes a key's live job takes the key's advisory lock first and checks for a live head under it.
/// </remarks>
internal static class PostgreSqlMigrations
{
    public static readonly (int Version, string Name, string Sql)[] All =
    [
        (1, "jobs", """
            CREATE TABLE {s}.jobs (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                queue text NOT NULL,
                key text NULL,
                is_head boolean NOT NULL,
                payload text NOT NULL,
                status smallint NOT NULL,
                priority integer NOT NULL,
                attempts integer NOT NULL,
                max_attempts integer NOT NULL,
                run_at timestamptz NOT NULL,
                dedupe_key text NULL,
                lease_owner text NULL,
                lease_expires_at timestamptz NULL,
                lease_token bigint NOT NULL DEFAULT 0,
                cancel_requested boolean NOT NULL DEFAULT false,
                last_error text NULL,
                final_outcome smallint NULL,
                created_at timestamptz NOT NULL,
                started_at timestamptz NULL,
                finished_at timestamptz NULL
            ) WITH (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 1000, autovacuum_analyze_scale_factor = 0.02);
            CREATE INDEX ix_jobs_ready ON {s}.jobs (queue, priority DESC, run_at, id) WHERE status = 0 AND is_head;
            CREATE INDEX ix_jobs_key ON {s}.jobs (queue, key, id) WHERE status IN (0, 1) AND key IS NOT NULL;
            CREATE UNIQUE INDEX ux_jobs_key_head ON {s}.jobs (queue, key) WHERE is_head AND status IN (0, 1) AND key IS NOT NULL;
            CREATE UNIQUE INDEX ux_jobs_dedupe ON {s}.jobs (queue, dedupe_key) WHERE status IN (0, 1) AND dedupe_key IS NOT NULL;
            CREATE INDEX ix_jobs_lease ON {s}.jobs (lease_expires_at) WHERE status = 1;
            CREATE INDEX ix_jobs_finished ON {s}.jobs (finished_at) WHERE status IN (2, 4);
            CREATE TABLE {s}.job_attempts (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                job_id bigint NOT NULL,
                attempt integer NOT NULL,
                started_at timestamptz NOT NULL,
                finished_at timestamptz NOT NULL,
                outcome smallint NOT NULL,
                error text NULL,
                worker text NULL
            ) WITH (autovacuum_vacuum_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.05);
            CREATE INDEX ix_job_attempts_job ON {s}.job_attempts (job_id);
            """),
        (2, "webhook pipeline", """
            CREATE TABLE {s}.raw_webhooks (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                provider text NOT NULL,
                instance text NOT NULL,
                received_at timestamptz NOT NULL,
                sha256 bytea NOT NULL,
                body bytea NOT NULL,
                content_type text NULL,
                headers text NULL,
                status smallint NOT NULL,
                error text NULL,
                duplicates integer NOT NULL DEFAULT 0,
                event_count integer NOT NULL DEFAULT 0,
                processed_at timestamptz NULL
            );
            CREATE UNIQUE INDEX ux_raw_webhooks_body ON {s}.raw_webhooks (provider, instance, sha256);
            CREATE INDEX ix_raw_webhooks_captured ON {s}.raw_webhooks (provider, instance, id) WHERE status = 0;
            CREATE INDEX ix_raw_webhooks_failed ON {s}.raw_webhooks (id) WHERE status = 2;
            CREATE TABLE {s}.events (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                provider text NOT NULL,
                instance text NOT NULL,
                seq bigint NOT NULL,
                kind smallint NOT NULL,
                external_id text NOT NULL,
                dedupe_key text NOT NULL,
                chat_id text NULL,
                sender_id text NULL,
                from_me boolean NOT NULL,
                occurred_at timestamptz NOT NULL,
                message_type smallint NOT NULL,
                status smallint NULL,
                body text NOT NULL,
                raw_id bigint NOT NULL,
                dispatch_status smallint NOT NULL DEFAULT 0,
                dispatch_error text NULL,
                created_at timestamptz NOT NULL,
                media_status smallint NOT NULL DEFAULT 0,
                media_key text NULL,
                media_size bigint NULL,
                media_mime text NULL,
                media_sha256 text NULL,
                media_error text NULL,
                media_updated_at timestamptz NULL
            ) WITH (fillfactor = 90);
            CREATE UNIQUE INDEX ux_events_dedupe ON {s}.events (dedupe_key);
            CREATE UNIQUE INDEX ux_events_seq ON {s}.events (provider, instance, seq);
            CREATE INDEX ix_events_chat ON {s}.events (instance, chat_id, id);
            CREATE INDEX ix_events_media ON {s}.events (media_status) WHERE media_status IN (1, 3);
            CREATE TABLE {s}.instances (
                provider text NOT NULL,
                instance text NOT NULL,
                status smallint NOT NULL,
                changed_at timestamptz NOT NULL,
                last_webhook_at timestamptz NULL,
                next_seq bigint NOT NULL DEFAULT 1,
                PRIMARY KEY (provider, instance)
            ) WITH (fillfactor = 50);
            """),
        (3, "chat dispatch runs", """
            ALTER TABLE {s}.events ADD COLUMN dispatch_attempts integer NOT NULL DEFAULT 0;
            CREATE INDEX ix_events_pending ON {s}.events (provider, instance, (coalesce(chat_id, '')), seq) WHERE dispatch_status = 0;
            """),
        (4, "byte-order collation for names and keys", """
            ALTER TABLE {s}.jobs ALTER COLUMN queue TYPE text COLLATE "C", ALTER COLUMN key TYPE text COLLATE "C",
                ALTER COLUMN dedupe_key TYPE text COLLATE "C";
            ALTER TABLE {s}.raw_webhooks ALTER COLUMN provider TYPE text COLLATE "C", ALTER COLUMN instance TYPE text COLLATE "C";
            ALTER TABLE {s}.events ALTER COLUMN provider TYPE text COLLATE "C", ALTER COLUMN instance TYPE text COLLATE "C",
                ALTER COLUMN dedupe_key TYPE text COLLATE "C", ALTER COLUMN chat_id TYPE text COLLATE "C";
            ALTER TABLE {s}.instances ALTER COLUMN provider TYPE text COLLATE "C", ALTER COLUMN instance TYPE text COLLATE "C";
            """),
        (5, "no index by chat and id; lz4 for bodies", """
            DROP INDEX IF EXISTS {s}.ix_events_chat;
            DO $$
            BEGIN
                IF EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
                    EXECUTE 'ALTER TABLE {s}.events ALTER COLUMN body SET COMPRESSION lz4';
                    EXECUTE 'ALTER TABLE {s}.raw_webhooks ALTER COLUMN body SET COMPRESSION lz4';
                END IF;
            END $$;
            """),
        (6, "pending jobs of a key", """
            DROP INDEX IF EXISTS {s}.ix_jobs_key;
            CREATE INDEX ix_jobs_key_pending ON {s}.jobs (queue, key, id) WHERE status = 0 AND key IS NOT NULL;
            """),
        (7, "key heads without a unique check", """
            DROP INDEX IF EXISTS {s}.ux_jobs_key_head;
            CREATE INDEX IF NOT EXISTS ix_jobs_key_head ON {s}.jobs (queue, key) WHERE is_head AND status IN (0, 1) AND key IS NOT NULL;
            """),
    ];
}
