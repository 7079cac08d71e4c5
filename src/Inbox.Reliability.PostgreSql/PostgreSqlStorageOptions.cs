using System.Text.RegularExpressions;

namespace Inbox.Reliability.PostgreSql;

/// <summary>PostgreSQL storage settings. Set through <c>UsePostgreSql(connectionString, o => ...)</c>.</summary>
public sealed partial class PostgreSqlStorageOptions
{
    /// <summary>The longest schema name: the notification channel (<c>{Schema}_jobs</c>) must fit PostgreSQL's 63-character identifiers.</summary>
    internal const int MaxSchemaLength = 50;

    /// <summary>
    /// The schema that holds the tables (<c>jobs</c>, <c>job_attempts</c>, <c>migrations</c>); created by the migrations when missing.
    /// Default <c>inbox</c>. Letters, digits and underscores, starting with a letter or underscore, at most 50 characters.
    /// Hosts that share a schema share their queues: that is how to scale out.
    /// </summary>
    public string Schema { get; set; } = "inbox";

    /// <summary>
    /// Wake idle workers with LISTEN/NOTIFY when another process enqueues. Default true. Turn it off behind a connection
    /// pooler in transaction mode (PgBouncer), which does not support LISTEN: workers then poll at their MaxPollInterval.
    /// </summary>
    public bool UseNotifications { get; set; } = true;

    /// <summary>
    /// While notifications are on, how often an idle worker still polls its queue (a backstop for a lost notification, and for
    /// jobs scheduled for later or waiting to retry). Default 5 seconds. Never shorter than a queue's MaxPollInterval.
    /// </summary>
    public TimeSpan BackstopPollInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Whether claims and job outcomes (complete, retry, fail, release) wait for their commit to reach disk. Default false:
    /// they commit without waiting for the WAL flush, which removes most of the flush waits a busy queue spends. This is
    /// safe for at-least-once delivery: only a crash of the database server itself (not of a host) can undo the last few
    /// hundred milliseconds of them, and the jobs concerned then simply run again. Enqueues always wait for the flush (a job
    /// is durable when <c>EnqueueAsync</c> returns), whatever this says. Set true to make claims and outcomes durable too.
    /// </summary>
    public bool SynchronousClaimsAndOutcomes { get; set; }

    internal string? ConnectionString { get; set; }

    internal bool HasDataSource { get; set; }

    internal IEnumerable<string> Validate()
    {
        if (!HasDataSource)
        {
            if (string.IsNullOrWhiteSpace(ConnectionString))
            {
                yield return "UsePostgreSql: a connection string is required, for example \"Host=localhost;Database=app;Username=app;Password=...\".";
            }
            else
            {
                string? error = null;
                try
                {
                    var builder = new Npgsql.NpgsqlConnectionStringBuilder(ConnectionString);
                    if (string.IsNullOrWhiteSpace(builder.Host)) error = "UsePostgreSql: the connection string has no Host; add one, for example \"Host=localhost\".";
                }
                catch (ArgumentException ex)
                {
                    error = $"UsePostgreSql: the connection string is invalid ({ex.Message}).";
                }

                if (error is not null) yield return error;
            }
        }

        if (string.IsNullOrEmpty(Schema) || Schema.Length > MaxSchemaLength || !SafeIdentifier().IsMatch(Schema))
        {
            yield return $"UsePostgreSql: Schema must be 1 to {MaxSchemaLength} letters, digits or underscores, starting with a letter or underscore (was \"{Schema}\").";
        }
        else if (Schema.StartsWith("pg_", StringComparison.OrdinalIgnoreCase))
        {
            yield return $"UsePostgreSql: Schema must not start with \"pg_\", which PostgreSQL reserves (was \"{Schema}\").";
        }

        if (BackstopPollInterval <= TimeSpan.Zero || BackstopPollInterval > TimeSpan.FromHours(1))
        {
            yield return $"UsePostgreSql: BackstopPollInterval must be positive and at most 1 hour (was {BackstopPollInterval}).";
        }
    }

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]*$", RegexOptions.CultureInvariant)]
    private static partial Regex SafeIdentifier();
}
