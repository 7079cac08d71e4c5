using Inbox.Reliability.PostgreSql;
using Inbox.Reliability.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace Inbox.Reliability;

/// <summary>PostgreSQL storage on <see cref="IInboxReliabilityBuilder"/>.</summary>
public static class PostgreSqlBuilderExtensions
{
    /// <summary>
    /// Stores jobs in PostgreSQL, in the schema <see cref="PostgreSqlStorageOptions.Schema"/> (default <c>inbox</c>).
    /// Every host process pointed at the same database and schema shares the queues: that is how to scale out.
    /// Unless the connection string sets <c>Max Auto Prepare</c>, statements are prepared automatically.
    /// </summary>
    /// <param name="builder">The builder.</param>
    /// <param name="connectionString">An Npgsql connection string, for example <c>Host=db;Database=app;Username=app;Password=...</c>.</param>
    /// <param name="configure">More settings.</param>
    public static IInboxReliabilityBuilder UsePostgreSql(this IInboxReliabilityBuilder builder, string connectionString, Action<PostgreSqlStorageOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var options = new PostgreSqlStorageOptions();
        configure?.Invoke(options);
        options.ConnectionString = connectionString ?? "";
        options.HasDataSource = false;
        return Register(builder, options, null);
    }

    /// <summary>
    /// Stores jobs in PostgreSQL through the host's own <see cref="NpgsqlDataSource"/> (its pool, credentials and settings),
    /// in the schema <see cref="PostgreSqlStorageOptions.Schema"/> (default <c>inbox</c>). The data source stays the host's:
    /// it is not disposed with the storage. Consider <c>Max Auto Prepare</c> in its connection string.
    /// </summary>
    /// <param name="builder">The builder.</param>
    /// <param name="dataSource">The data source to open connections from.</param>
    /// <param name="configure">More settings.</param>
    public static IInboxReliabilityBuilder UsePostgreSql(this IInboxReliabilityBuilder builder, NpgsqlDataSource dataSource, Action<PostgreSqlStorageOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(dataSource);
        var options = new PostgreSqlStorageOptions();
        configure?.Invoke(options);
        options.ConnectionString = null;
        options.HasDataSource = true;
        return Register(builder, options, dataSource);
    }

    private static IInboxReliabilityBuilder Register(IInboxReliabilityBuilder builder, PostgreSqlStorageOptions options, NpgsqlDataSource? dataSource)
    {
        builder.Services.AddSingleton<IInboxConfigurationValidator>(new PostgreSqlOptionsValidator(options));
        builder.UseJobStore(new InboxStorageRegistration("PostgreSQL", "UsePostgreSql"), sp => new PostgreSqlJobStore(
            options,
            dataSource,
            sp.GetRequiredService<TimeProvider>(),
            sp.GetService<ILoggerFactory>() ?? NullLoggerFactory.Instance,
            sp.GetService<Inbox.Reliability.Jobs.QueueSignals>()));

        // The webhook pipeline's tables live in the same schema and write on the job store's connections (one transaction
        // for a raw webhook and its ingest job, or for events and their dispatch jobs).
        builder.Services.TryAddSingleton<IInboxStore>(sp => sp.GetRequiredService<IJobStore>() is PostgreSqlJobStore jobs ? new PostgreSqlInboxStore(jobs, sp.GetService<Inbox.Reliability.Jobs.QueueSignals>()) : null!);

        // Reads of chats' pending events are combined into shared statements here, so more chat runs in flight cost no more
        // connections or round trips: the dispatch queue runs 32 at once unless the host says otherwise.
        builder.UsePipelineStorageDefaults(new PipelineStorageDefaults { DispatchConcurrency = 32 });
        return builder;
    }

    private sealed class PostgreSqlOptionsValidator(PostgreSqlStorageOptions options) : IInboxConfigurationValidator
    {
        public IEnumerable<string> Validate() => options.Validate();
    }
}
