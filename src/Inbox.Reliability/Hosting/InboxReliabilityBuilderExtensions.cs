using Inbox.Reliability.Jobs;
using Inbox.Reliability.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Inbox.Reliability;

/// <summary>Job handlers and general settings on <see cref="IInboxReliabilityBuilder"/>.</summary>
public static class InboxReliabilityBuilderExtensions
{
    /// <summary>
    /// Runs the jobs of <paramref name="queue"/> with <typeparamref name="THandler"/>, created in a new DI scope per job.
    /// A worker (a hosted service) claims and runs them with the given options. One handler per queue.
    /// </summary>
    public static IInboxReliabilityBuilder AddJobHandler<THandler>(this IInboxReliabilityBuilder builder, string queue, Action<JobHandlerOptions>? configure = null)
        where THandler : class, IJobHandler
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(queue);
        var options = new JobHandlerOptions();
        configure?.Invoke(options);
        var registration = new JobHandlerRegistration(queue, typeof(THandler), options);
        builder.Services.TryAddScoped<THandler>();
        builder.Services.AddSingleton(registration);
        builder.Services.AddSingleton<IHostedService>(sp => new QueueWorker(
            registration,
            // Null when no storage is configured: startup validation then fails with every problem before any worker runs.
            sp.GetService<IJobStore>()!,
            sp.GetRequiredService<IServiceScopeFactory>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<QueueSignals>(),
            sp.GetRequiredService<RunningJobs>(),
            sp.GetRequiredService<StartupGate>(),
            sp.GetRequiredService<IOptions<InboxReliabilityOptions>>(),
            sp.GetRequiredService<ILoggerFactory>()));
        return builder;
    }

    /// <summary>Uses this <see cref="TimeProvider"/> for leases, backoff, delays and retention (tests drive time with it).</summary>
    public static IInboxReliabilityBuilder UseTimeProvider(this IInboxReliabilityBuilder builder, TimeProvider timeProvider)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(timeProvider);
        builder.Services.Replace(ServiceDescriptor.Singleton(timeProvider));
        return builder;
    }

    /// <summary>
    /// For storage packages: registers <paramref name="store"/> as the job storage. A second storage replaces none:
    /// startup then fails and names both, since only one storage may be configured.
    /// </summary>
    public static IInboxReliabilityBuilder UseJobStore(this IInboxReliabilityBuilder builder, InboxStorageRegistration registration, Func<IServiceProvider, IJobStore> store)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(registration);
        ArgumentNullException.ThrowIfNull(store);
        builder.Services.AddSingleton(registration);
        builder.Services.TryAddSingleton<IJobStore>(store);
        return builder;
    }
}
