namespace Inbox.Reliability.Sqlite;

/// <summary>The schema, as numbered migrations applied in order, each once.</summary>
internal static class SqliteMigrations
{
    public static readonly (int Version, string Name, string Sql)[] All =
    [
        (1, "jobs", """
            CREATE TABLE inbox_jobs (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                queue TEXT NOT NULL,
                key TEXT NULL,
                is_head INTEGER NOT NULL,
                payload TEXT NOT NULL,
                status INTEGER NOT NULL,
                priority INTEGER NOT NULL,
                attempts INTEGER NOT NULL,
                max_attempts INTEGER NOT NULL,
                run_at INTEGER NOT NULL,
                dedupe_key TEXT NULL,
                lease_owner TEXT NULL,
                lease_expires_at INTEGER NULL,
                lease_token INTEGER NOT NULL DEFAULT 0,
                cancel_requested INTEGER NOT NULL DEFAULT 0,
                last_error TEXT NULL,
                created_at INTEGER NOT NULL,
                started_at INTEGER NULL,
                finished_at INTEGER NULL
            );
            CREATE INDEX ix_inbox_jobs_ready ON inbox_jobs (queue, priority DESC, run_at, id) WHERE status = 0 AND is_head = 1;
            CREATE INDEX ix_inbox_jobs_key ON inbox_jobs (queue, key, id) WHERE status IN (0, 1) AND key IS NOT NULL;
            CREATE UNIQUE INDEX ux_inbox_jobs_dedupe ON inbox_jobs (queue, dedupe_key) WHERE status IN (0, 1) AND dedupe_key IS NOT NULL;
            CREATE INDEX ix_inbox_jobs_lease ON inbox_jobs (lease_expires_at) WHERE status = 1;
            CREATE INDEX ix_inbox_jobs_finished ON inbox_jobs (finished_at) WHERE status IN (2, 4);
            CREATE INDEX ix_inbox_jobs_status ON inbox_jobs (queue, status);
            CREATE TABLE inbox_job_attempts (
                id INTEGER PRIMARY KEY,
                job_id INTEGER NOT NULL,
                attempt INTEGER NOT NULL,
                started_at INTEGER NOT NULL,
                finished_at INTEGER NOT NULL,
                outcome INTEGER NOT NULL,
                error TEXT NULL,
                worker TEXT NULL
            );
            CREATE INDEX ix_inbox_job_attempts_job ON inbox_job_attempts (job_id);
            """),
        (2, "webhook pipeline", """
            CREATE TABLE inbox_raw_webhooks (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                provider TEXT NOT NULL,
                instance TEXT NOT NULL,
                received_at INTEGER NOT NULL,
                sha256 BLOB NOT NULL,
                body BLOB NOT NULL,
                content_type TEXT NULL,
                headers TEXT NULL,
                status INTEGER NOT NULL,
                error TEXT NULL,
                duplicates INTEGER NOT NULL DEFAULT 0,
                event_count INTEGER NOT NULL DEFAULT 0,
                processed_at INTEGER NULL
            );
            CREATE UNIQUE INDEX ux_inbox_raw_webhooks_body ON inbox_raw_webhooks (provider, instance, sha256);
            CREATE INDEX ix_inbox_raw_webhooks_status ON inbox_raw_webhooks (status, id);
            CREATE TABLE inbox_events (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                provider TEXT NOT NULL,
                instance TEXT NOT NULL,
                seq INTEGER NOT NULL,
                kind INTEGER NOT NULL,
                external_id TEXT NOT NULL,
                dedupe_key TEXT NOT NULL,
                chat_id TEXT NULL,
                sender_id TEXT NULL,
                from_me INTEGER NOT NULL,
                occurred_at INTEGER NOT NULL,
                message_type INTEGER NOT NULL,
                status INTEGER NULL,
                body TEXT NOT NULL,
                raw_id INTEGER NOT NULL,
                dispatch_status INTEGER NOT NULL DEFAULT 0,
                dispatch_error TEXT NULL,
                created_at INTEGER NOT NULL
            );
            CREATE UNIQUE INDEX ux_inbox_events_dedupe ON inbox_events (dedupe_key);
            CREATE UNIQUE INDEX ux_inbox_events_seq ON inbox_events (provider, instance, seq);
            CREATE INDEX ix_inbox_events_chat ON inbox_events (instance, chat_id, id);
            CREATE TABLE inbox_instances (
                provider TEXT NOT NULL,
                instance TEXT NOT NULL,
                status INTEGER NOT NULL,
                changed_at INTEGER NOT NULL,
                last_webhook_at INTEGER NULL,
                next_seq INTEGER NOT NULL DEFAULT 1,
                PRIMARY KEY (provider, instance)
            ) WITHOUT ROWID;
            """),
        (3, "media", """
            ALTER TABLE inbox_events ADD COLUMN media_status INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE inbox_events ADD COLUMN media_key TEXT NULL;
            ALTER TABLE inbox_events ADD COLUMN media_size INTEGER NULL;
            ALTER TABLE inbox_events ADD COLUMN media_mime TEXT NULL;
            ALTER TABLE inbox_events ADD COLUMN media_sha256 TEXT NULL;
            ALTER TABLE inbox_events ADD COLUMN media_error TEXT NULL;
            ALTER TABLE inbox_events ADD COLUMN media_updated_at INTEGER NULL;
            CREATE INDEX ix_inbox_events_media ON inbox_events (media_status) WHERE media_status IN (1, 3);
            """),
        (4, "chat dispatch runs", """
            ALTER TABLE inbox_events ADD COLUMN dispatch_attempts INTEGER NOT NULL DEFAULT 0;
            CREATE INDEX ix_inbox_events_pending ON inbox_events (provider, instance, coalesce(chat_id, ''), seq) WHERE dispatch_status = 0;
            """),
        (5, "no index by chat and id", """
            DROP INDEX IF EXISTS ix_inbox_events_chat;
            """),
    ];
}
