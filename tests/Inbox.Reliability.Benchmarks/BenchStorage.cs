using Microsoft.Data.Sqlite;

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
    /// <summary>The storages the benchmark knows; a PostgreSQL one is added here when the package exists.</summary>
    public static IBenchStorage Create(string name) => name switch
    {
        "sqlite" => new SqliteBenchStorage(),
        "postgres" or "postgresql" => throw new NotSupportedException(
            "--storage postgres: not available yet (the PostgreSQL storage package does not exist yet); use --storage sqlite."),
        _ => throw new ArgumentException($"--storage must be sqlite (or postgres, not available yet); was \"{name}\"."),
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
