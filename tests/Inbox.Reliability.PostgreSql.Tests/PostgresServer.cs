using Inbox.Reliability.Testing;
using Npgsql;

namespace Inbox.Reliability.PostgreSql.Tests;

/// <summary>
/// The PostgreSQL server the tests use: the one named by the environment variable <c>INBOX_TEST_POSTGRES</c> (a connection
/// string), or else a throwaway cluster started here (<see cref="PostgresCluster"/>: initdb + pg_ctl as the <c>postgres</c>
/// user, in a temporary folder, on a free loopback port, socket in the folder), stopped and deleted at the end.
/// </summary>
public sealed class PostgresServer : IAsyncLifetime
{
    public const string EnvironmentVariable = "INBOX_TEST_POSTGRES";
    private const string Database = "inbox_tests";

    private PostgresCluster? _cluster;

    public string ConnectionString { get; private set; } = "";

    /// <summary>True when this fixture started the server (so tests may restart it).</summary>
    public bool OwnsServer => _cluster is not null;

    public string? Folder => _cluster?.Folder;

    public async Task InitializeAsync()
    {
        var given = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(given))
        {
            ConnectionString = given;
            return;
        }

        var cluster = new PostgresCluster(Database, EnvironmentVariable);
        await cluster.StartAsync();
        _cluster = cluster;
        ConnectionString = cluster.ConnectionString;
    }

    /// <summary>A fresh schema name for one test.</summary>
    public static string NewSchema() => "t_" + Guid.NewGuid().ToString("n")[..16];

    public async Task DropSchemaAsync(string schema)
    {
        var builder = new NpgsqlConnectionStringBuilder(ConnectionString) { Pooling = false };
        await using var connection = new NpgsqlConnection(builder.ConnectionString);
        await connection.OpenAsync();
        await using var drop = new NpgsqlCommand($"DROP SCHEMA IF EXISTS \"{schema}\" CASCADE", connection);
        await drop.ExecuteNonQueryAsync();
    }

    /// <summary>A connection outside any storage, for assertions and for the host's own writes.</summary>
    public async Task<NpgsqlConnection> OpenAsync()
    {
        var connection = new NpgsqlConnection(ConnectionString);
        await connection.OpenAsync();
        return connection;
    }

    /// <summary>Runs a query outside any storage and reads each row with <paramref name="read"/> (for assertions).</summary>
    public async Task<List<T>> QueryAsync<T>(string sql, Func<NpgsqlDataReader, T> read)
    {
        await using var connection = await OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<T>();
        while (await reader.ReadAsync()) rows.Add(read(reader));
        return rows;
    }

    /// <summary>
    /// Restarts the server (<c>pg_ctl restart -m fast</c>): every connection is dropped. The pool of <see cref="OpenAsync"/>
    /// is emptied after it, so the tests' own queries do not pick up a connection the restart closed.
    /// </summary>
    public async Task RestartAsync()
    {
        if (_cluster is null) throw new InvalidOperationException("Only a server this fixture started can be restarted.");
        await _cluster.RestartAsync();
        using var pooled = new NpgsqlConnection(ConnectionString);
        NpgsqlConnection.ClearPool(pooled);
    }

    public async Task DisposeAsync()
    {
        if (_cluster is null) return;
        await _cluster.StopAsync();
        _cluster = null;
    }
}

[CollectionDefinition(Name)]
public sealed class PostgresCollection : ICollectionFixture<PostgresServer>
{
    public const string Name = "postgres";
}
