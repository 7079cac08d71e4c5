namespace Inbox.Reliability.PostgreSql;

/// <summary>
/// The schema, as numbered migrations applied in order, each once, in one transaction guarded by an advisory lock.
/// <c>{s}</c> stands for the quoted schema name.
/// </summary>
/// <remarks>
/// Index design: every index that a claim or a key check reads is partial over live jobs, so finished rows (most of the
/// table) never slow a claim, and a finished row's update adds no entry to them. Only heads of keys (and unkeyed jobs)
/// are in the ready index, so a key blocked behind a retrying job costs claims nothing, whatever its backlog.
/// <c>ux_jobs_key_head</c> makes "at most one live head per key" a constraint the database enforces, not only a
/// property of the code. Autovacuum is set tighter than the defaults because the table is a queue: rows are updated
/// and deleted all the time (see docs/postgresql.md).
/// <c>final_outcome</c>: a job's last attempt, once the job has finished, lives in the job row itself (started_at,
/// finished_at, lease_owner, last_error, attempts) instead of a <c>job_attempts</c> row, so the usual life of a job
/// (claimed once, completed) writes no attempt row at all; earlier attempts (retries, lease expiries) get rows. A
/// requeue moves the final attempt into <c>job_attempts</c> before the row starts over.
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
    ];
}
