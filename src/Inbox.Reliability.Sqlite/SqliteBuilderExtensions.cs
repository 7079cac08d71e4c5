using Inbox.Reliability.Sqlite;
using Inbox.Reliability.Storage;
using Microsoft.Extensions.DependencyInjection;

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
        return builder.UseJobStore(new InboxStorageRegistration("SQLite", "UseSqlite"), sp => new SqliteJobStore(options, sp.GetRequiredService<TimeProvider>()));
    }

    private sealed class SqliteOptionsValidator(SqliteStorageOptions options) : IInboxConfigurationValidator
    {
        public IEnumerable<string> Validate() => options.Validate();
    }
}
