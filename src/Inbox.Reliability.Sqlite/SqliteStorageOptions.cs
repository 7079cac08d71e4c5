namespace Inbox.Reliability.Sqlite;

/// <summary>SQLite storage settings. Set through <c>UseSqlite(connectionString, o => ...)</c>.</summary>
public sealed class SqliteStorageOptions
{
    /// <summary>The connection string, e.g. <c>Data Source=data/inbox.db</c>. The folder is created when missing.</summary>
    public string ConnectionString { get; set; } = "";

    /// <summary>
    /// How hard commits go to disk. <see cref="SqliteDurability.Full"/> (default) survives power loss;
    /// <see cref="SqliteDurability.Normal"/> survives a process crash but may lose the last commits on power loss, and is faster.
    /// </summary>
    public SqliteDurability Durability { get; set; } = SqliteDurability.Full;

    /// <summary>
    /// How long a write waits for a lock held by another connection before failing. Default 30 seconds. SQLite's driver
    /// counts it in whole seconds: a value under a second waits one second.
    /// </summary>
    public TimeSpan BusyTimeout { get; set; } = TimeSpan.FromSeconds(30);

    internal IEnumerable<string> Validate()
    {
        if (string.IsNullOrWhiteSpace(ConnectionString)) yield return "UseSqlite: a connection string is required, for example \"Data Source=data/inbox.db\".";
        else
        {
            string? error = null;
            try
            {
                var builder = new Microsoft.Data.Sqlite.SqliteConnectionStringBuilder(ConnectionString);
                if (string.IsNullOrWhiteSpace(builder.DataSource)) error = "UseSqlite: the connection string has no Data Source; give a file path, for example \"Data Source=data/inbox.db\".";
                else if (builder.DataSource == ":memory:" || builder.Mode == Microsoft.Data.Sqlite.SqliteOpenMode.Memory)
                    error = "UseSqlite: an in-memory database loses every job when the process stops; give a file path, for example \"Data Source=data/inbox.db\".";
            }
            catch (ArgumentException ex)
            {
                error = $"UseSqlite: the connection string is invalid ({ex.Message}).";
            }

            if (error is not null) yield return error;
        }

        if (BusyTimeout < TimeSpan.Zero) yield return $"UseSqlite: BusyTimeout must not be negative (was {BusyTimeout}).";
    }
}

/// <summary>SQLite's <c>synchronous</c> setting in WAL mode.</summary>
public enum SqliteDurability
{
    /// <summary><c>synchronous=FULL</c>: every commit is fsynced. Survives power loss.</summary>
    Full = 0,

    /// <summary><c>synchronous=NORMAL</c>: survives a process crash; on power loss the last commits may be lost.</summary>
    Normal = 1,
}
