using Inbox.Reliability.Conformance;

namespace Inbox.Reliability.Sqlite.Tests;

/// <summary>A fresh SQLite file per test, in its own temporary folder, deleted afterwards.</summary>
public sealed class SqliteStorage : IStorageUnderTest
{
    public SqliteStorage()
    {
        Folder = Path.Combine(Path.GetTempPath(), "inbox-sqlite-tests", Guid.NewGuid().ToString("n"));
        Directory.CreateDirectory(Folder);
    }

    public string Folder { get; }

    public string Path_ => System.IO.Path.Combine(Folder, "inbox.db");

    public string ConnectionString => $"Data Source={Path_}";

    public void Configure(IInboxReliabilityBuilder builder) => builder.UseSqlite(ConnectionString);

    public ValueTask DisposeAsync()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (IOException)
        {
            // A handle may still be closing; the temp folder is cleaned by the OS eventually.
        }

        return ValueTask.CompletedTask;
    }
}

public sealed class SqliteJobStoreConformance : JobStoreConformanceTests
{
    protected override IStorageUnderTest CreateStorage() => new SqliteStorage();
}

public sealed class SqliteJobEngineConformance : JobEngineConformanceTests
{
    protected override IStorageUnderTest CreateStorage() => new SqliteStorage();
}

public sealed class SqliteWebhookPipelineConformance : WebhookPipelineConformanceTests
{
    protected override IStorageUnderTest CreateStorage() => new SqliteStorage();
}

public sealed class SqliteMediaPipelineConformance : MediaPipelineConformanceTests
{
    protected override IStorageUnderTest CreateStorage() => new SqliteStorage();
}
