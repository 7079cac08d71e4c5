using Inbox.Reliability.Sqlite;
using Inbox.Reliability.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Inbox.Reliability;

/// <summary>SQLite storage on <see cref="IInboxReliabilityBuilder"/>.</summary>
public static class SqliteBuilderExtensions
{
    /// <summary>
    /// Stores jobs in a SQLite file: the embedded default, for one host process. WAL mode, <c>synchronous=FULL</c>
    /// by default, and group commit through a single writer connection.
    /// </summary>
    /// <param name="builder">The builder.</param>
    /// <param name="connectionString">For example <c>Data Source=data/inbox.db</c>. The folder is created when missing.</param>
    /// <param name="configure">More settings.</param>
    public static IInboxReliabilityBuilder UseSqlite(this IInboxReliabilityBuilder builder, string connectionString, Action<SqliteStorageOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var options = new SqliteStorageOptions { ConnectionString = connectionString ?? "" };
        configure?.Invoke(options);
        builder.Services.AddSingleton<IInboxConfigurationValidator>(new SqliteOptionsValidator(options));
        builder.UseJobStore(new InboxStorageRegistration("SQLite", "UseSqlite"), sp => new SqliteJobStore(options, sp.GetRequiredService<TimeProvider>()));

        // The webhook pipeline's tables live in the same file and share the job store's writer (one transaction for a
        // raw webhook and its ingest job).
        builder.Services.TryAddSingleton<IInboxStore>(sp => sp.GetRequiredService<IJobStore>() is SqliteJobStore jobs ? new SqliteInboxStore(jobs) : null!);
        return builder;
    }

    private sealed class SqliteOptionsValidator(SqliteStorageOptions options) : IInboxConfigurationValidator
    {
        public IEnumerable<string> Validate() => options.Validate();
    }
}
