using Microsoft.Data.Sqlite;
using Npgsql;

namespace Inbox.Reliability.Benchmarks;

/// <summary>
/// One storage the benchmark runs on. Each run gets a fresh instance: <see cref="PrepareAsync"/> makes an empty
/// database, <see cref="Configure"/> plugs it into the host the way an app would, and disposal removes it.
/// </summary>
public interface IBenchStorage : IAsyncDisposable
{
    /// <summary>The name printed in the "storage" field, e.g. "sqlite".</summary>
    string Name { get; }

    /// <summary>Creates an empty database for one run; returns a description of where it is (for stderr).</summary>
    Task<string> PrepareAsync();

    /// <summary>Configures the library's storage on the host's builder (e.g. <c>UseSqlite</c>).</summary>
    void Configure(IInboxReliabilityBuilder builder);
}

public static class BenchStorages
{
    /// <summary>The storages the benchmark knows.</summary>
    public static IBenchStorage Create(string name) => name switch
    {
        "sqlite" => new SqliteBenchStorage(),
        "postgres" or "postgresql" => new PostgreSqlBenchStorage(),
        _ => throw new ArgumentException($"--storage must be sqlite or postgres; was \"{name}\"."),
    };

    /// <summary>Fails early, in the parent process, for storages that cannot run.</summary>
    public static void Check(string name)
    {
        var storage = Create(name);
        storage.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }
}

/// <summary>A fresh SQLite file in its own temporary folder, with the library's defaults (WAL, synchronous=FULL).</summary>
public sealed class SqliteBenchStorage : IBenchStorage
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "inbox-reliability-bench", Guid.NewGuid().ToString("n"));

    public string Name => "sqlite";

    private string DatabasePath => Path.Combine(_folder, "inbox.db");

    public Task<string> PrepareAsync()
    {
        Directory.CreateDirectory(_folder);
        return Task.FromResult(DatabasePath);
    }

    public void Configure(IInboxReliabilityBuilder builder) => builder.UseSqlite($"Data Source={DatabasePath}");

    public ValueTask DisposeAsync()
    {
        SqliteConnection.ClearAllPools();
        try
        {
            if (Directory.Exists(_folder)) Directory.Delete(_folder, recursive: true);
        }
        catch (IOException)
        {
            // A handle may still be closing; the OS cleans temp folders eventually.
        }

        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// A fresh schema (random name) in the PostgreSQL database named by the environment variable INBOX_BENCH_POSTGRES
/// (a connection string, e.g. "Host=127.0.0.1;Port=5432;Username=postgres;Password=...;Database=bench"), dropped afterwards.
/// </summary>
public sealed class PostgreSqlBenchStorage : IBenchStorage
{
    public const string EnvironmentVariable = "INBOX_BENCH_POSTGRES";

    /// <summary>True when <see cref="EnvironmentVariable"/> names a server.</summary>
    public static bool IsConfigured => Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 };

    private readonly string _connectionString = Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } value
        ? value
        : throw new NotSupportedException($"--storage postgres needs {EnvironmentVariable} set to a connection string.");

    private readonly string _schema = "bench_" + Guid.NewGuid().ToString("n")[..12];

    public string Name => "postgres";

    /// <summary>The connection string from <see cref="EnvironmentVariable"/>.</summary>
    public string ConnectionString => _connectionString;

    /// <summary>The schema of this run.</summary>
    public string Schema => _schema;

    public Task<string> PrepareAsync() => Task.FromResult($"schema {_schema}");

    public void Configure(IInboxReliabilityBuilder builder) => builder.UsePostgreSql(_connectionString, o => o.Schema = _schema);

    private static bool _checkpointRefused;

    /// <summary>
    /// Runs <c>CHECKPOINT</c> on the server of <see cref="EnvironmentVariable"/> before a measure (ours or a peer's), so no
    /// measure pays for the dirty pages and WAL the one before it left: a checkpoint that the previous measure's WAL started
    /// ends with fsyncs of the data files, and commits wait behind them for tens of milliseconds on this kind of disk. Needs
    /// a superuser or the <c>pg_checkpoint</c> role; without it the measures run as they come (said once on stderr).
    /// </summary>
    public static async Task CheckpointAsync(CancellationToken cancellationToken)
    {
        if (!IsConfigured || _checkpointRefused) return;
        var builder = new NpgsqlConnectionStringBuilder(Environment.GetEnvironmentVariable(EnvironmentVariable)) { Pooling = false };
        try
        {
            await using var connection = new NpgsqlConnection(builder.ConnectionString);
            await connection.OpenAsync(cancellationToken);
            await using var checkpoint = new NpgsqlCommand("CHECKPOINT", connection) { CommandTimeout = 300 };
            await checkpoint.ExecuteNonQueryAsync(cancellationToken);
        }
        catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.InsufficientPrivilege)
        {
            _checkpointRefused = true;
            await Console.Error.WriteLineAsync($"[bench] CHECKPOINT before each measure skipped: {ex.MessageText} (grant pg_checkpoint to this user to have it).");
        }
    }

    public async ValueTask DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        var builder = new NpgsqlConnectionStringBuilder(_connectionString) { Pooling = false };
        await using var connection = new NpgsqlConnection(builder.ConnectionString);
        await connection.OpenAsync();
        await using var drop = new NpgsqlCommand($"DROP SCHEMA IF EXISTS \"{_schema}\" CASCADE", connection);
        await drop.ExecuteNonQueryAsync();
    }
}
