using Inbox.Reliability.Conformance;
using Inbox.Reliability.Jobs;
using Inbox.Reliability.Storage;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Inbox.Reliability.Sqlite.Tests;

public sealed class SqliteSpecificTests : IAsyncLifetime
{
    private readonly SqliteStorage _storage = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _storage.DisposeAsync();

    private static async Task<InboxConfigurationException> StartFails(Action<IInboxReliabilityBuilder> configure)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        configure(builder.Services.AddInboxReliability());
        using var host = builder.Build();
        return await Assert.ThrowsAsync<InboxConfigurationException>(() => host.StartAsync());
    }

    [Fact]
    public async Task An_in_memory_or_empty_connection_string_fails_at_startup_saying_what_to_give()
    {
        var memory = await StartFails(b => b.UseSqlite("Data Source=:memory:"));
        Assert.Contains("in-memory database loses every job", memory.Message, StringComparison.Ordinal);
        var empty = await StartFails(b => b.UseSqlite(""));
        Assert.Contains("connection string is required", empty.Message, StringComparison.Ordinal);
        var both = await StartFails(b => b.UseSqlite(_storage.ConnectionString).UseSqlite(_storage.ConnectionString));
        Assert.Contains("keep exactly one", both.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_folder_is_created_the_database_is_in_wal_mode_and_jobs_survive_a_new_process_view()
    {
        var nested = Path.Combine(_storage.Folder, "a", "b", "inbox.db");
        long id;
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddInboxReliability().UseSqlite($"Data Source={nested}", o => o.Durability = SqliteDurability.Full);
        await using (var provider = services.BuildServiceProvider())
        {
            await provider.GetRequiredService<IJobStore>().MigrateAsync();
            id = (await provider.GetRequiredService<IJobQueue>().EnqueueAsync(new JobRequest("q", "{\"x\":1}"))).Id;
        }

        Assert.True(File.Exists(nested));
        await using var connection = new SqliteConnection($"Data Source={nested};Mode=ReadOnly");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA journal_mode";
        Assert.Equal("wal", (string?)await command.ExecuteScalarAsync());
        command.CommandText = "SELECT payload FROM inbox_jobs WHERE id = $id";
        command.Parameters.AddWithValue("$id", id);
        Assert.Equal("{\"x\":1}", (string?)await command.ExecuteScalarAsync());
        command.CommandText = "SELECT MAX(version) FROM inbox_migrations";
        Assert.Equal((long)SqliteMigrations.All.Max(m => m.Version), (long?)await command.ExecuteScalarAsync());
    }

    [Fact]
    public async Task Migrations_are_skipped_when_turned_off()
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Services.AddInboxReliability(o => o.RunMigrations = false).UseSqlite(_storage.ConnectionString);
        using var host = builder.Build();
        await Assert.ThrowsAsync<SqliteException>(() => host.StartAsync()); // no schema: the reaper's first query fails
        await using var connection = new SqliteConnection(_storage.ConnectionString);
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT COUNT(*) FROM sqlite_master WHERE name = 'inbox_jobs'";
        Assert.Equal(0L, (long?)await command.ExecuteScalarAsync());
    }

    [Fact]
    public async Task A_write_that_throws_fails_alone_and_the_rest_of_its_group_commit_is_kept()
    {
        using var writer = new SqliteWriter(() =>
        {
            var connection = new SqliteConnection(_storage.ConnectionString);
            connection.Open();
            return connection;
        });
        await writer.WriteAsync(c => { c.Execute("CREATE TABLE t (x INTEGER UNIQUE)"); return 0; });

        // Hold the writer so the next writes queue up and run as one group.
        using var gate = new ManualResetEventSlim();
        var blocker = writer.WriteAsync(_ => gate.Wait(TimeSpan.FromSeconds(30)));
        var writes = Enumerable.Range(0, 20).Select(i => writer.WriteAsync(c =>
            c.Command("INSERT INTO t (x) VALUES ($x)").Set("$x", i == 7 ? 3 : i).ExecuteNonQuery())).ToList();
        gate.Set();
        Assert.True(await blocker);

        await Assert.ThrowsAsync<SqliteException>(() => writes[7]); // duplicate of 3: fails alone
        foreach (var write in writes.Where((_, i) => i != 7)) Assert.Equal(1, await write);
        var count = await writer.WriteAsync(c => (long)c.Command("SELECT COUNT(*) FROM t").ExecuteScalar()!);
        Assert.Equal(19, count);
    }
}
