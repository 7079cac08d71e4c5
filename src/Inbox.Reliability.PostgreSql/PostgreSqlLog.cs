using Microsoft.Extensions.Logging;

namespace Inbox.Reliability.PostgreSql;

/// <summary>Event ids of the PostgreSQL storage's log messages (4001-4099), for filtering and alerting.</summary>
public static class PostgreSqlEventIds
{
    /// <summary>The LISTEN connection failed; it reconnects after a delay.</summary>
    public const int ListenFailed = 4001;

    /// <summary>The LISTEN connection is up again after a failure.</summary>
    public const int ListenRestored = 4002;

    /// <summary>Migrations were applied to the schema.</summary>
    public const int Migrated = 4003;

    /// <summary>A connection to the database failed; idle pooled connections were dropped.</summary>
    public const int ConnectionLost = 4004;

    /// <summary>A NOTIFY that wakes other processes' workers after a commit failed; they find the jobs at their next poll.</summary>
    public const int WakeFailed = 4005;
}

internal static partial class PostgreSqlLog
{
    [LoggerMessage(PostgreSqlEventIds.ListenFailed, LogLevel.Warning, "PostgreSQL notifications (LISTEN {Channel}) failed; reconnecting in {Delay}. Workers poll meanwhile")]
    public static partial void ListenFailed(ILogger logger, string channel, TimeSpan delay, Exception exception);

    [LoggerMessage(PostgreSqlEventIds.ListenRestored, LogLevel.Information, "PostgreSQL notifications (LISTEN {Channel}) are back")]
    public static partial void ListenRestored(ILogger logger, string channel);

    [LoggerMessage(PostgreSqlEventIds.Migrated, LogLevel.Information, "PostgreSQL schema {Schema}: applied migration {Version} ({Name})")]
    public static partial void Migrated(ILogger logger, string schema, int version, string name);

    [LoggerMessage(PostgreSqlEventIds.ConnectionLost, LogLevel.Warning, "A PostgreSQL connection failed ({SqlState}); idle pooled connections were dropped")]
    public static partial void ConnectionLost(ILogger logger, string sqlState, Exception exception);

    [LoggerMessage(PostgreSqlEventIds.WakeFailed, LogLevel.Warning, "A PostgreSQL NOTIFY on {Channel} after a commit failed; other processes' workers find its jobs at their next poll")]
    public static partial void WakeFailed(ILogger logger, string channel, Exception exception);
}
