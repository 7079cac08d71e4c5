using Npgsql;
using NpgsqlTypes;

namespace Inbox.Reliability.PostgreSql;

/// <summary>Typed positional parameters (<c>$1</c>, <c>$2</c>...): explicit types keep each statement's parameter types fixed, so prepared statements are reused.</summary>
internal static class SqlParameters
{
    public static NpgsqlParameter Bigint(long value) => new NpgsqlParameter<long> { TypedValue = value, NpgsqlDbType = NpgsqlDbType.Bigint };

    public static NpgsqlParameter Integer(int value) => new NpgsqlParameter<int> { TypedValue = value, NpgsqlDbType = NpgsqlDbType.Integer };

    public static NpgsqlParameter Text(string? value) => new() { Value = (object?)value ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text };

    /// <summary>A timestamptz; PostgreSQL keeps microseconds, and Npgsql wants UTC.</summary>
    public static NpgsqlParameter Timestamp(DateTimeOffset value) => new NpgsqlParameter<DateTimeOffset> { TypedValue = value.ToUniversalTime(), NpgsqlDbType = NpgsqlDbType.TimestampTz };

    public static NpgsqlParameter Texts(string?[] values) => new() { Value = values, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text };

    public static NpgsqlParameter Bigints(long[] values) => new() { Value = values, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint };

    public static NpgsqlParameter Integers(int[] values) => new() { Value = values, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Integer };

    public static NpgsqlParameter Booleans(bool[] values) => new() { Value = values, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Boolean };

    public static NpgsqlParameter Timestamps(DateTimeOffset[] values) => new() { Value = values, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.TimestampTz };

    public static NpgsqlBatchCommand Command(string sql, params NpgsqlParameter[] parameters)
    {
        var command = new NpgsqlBatchCommand(sql);
        foreach (var parameter in parameters) command.Parameters.Add(parameter);
        return command;
    }
}
