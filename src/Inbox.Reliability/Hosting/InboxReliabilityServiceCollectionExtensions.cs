using Inbox.Reliability;
using Inbox.Reliability.Jobs;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers Inbox.Reliability in a service collection.</summary>
public static class InboxReliabilityServiceCollectionExtensions
{
    /// <summary>
    /// Adds Inbox.Reliability: the job queue, the lease reaper and retention. Configure storage next
    /// (for example <c>.UseSqlite("Data Source=inbox.db")</c>) and add handlers with <c>.AddJobHandler&lt;T&gt;("queue")</c>.
    /// Calling it again returns a builder for the same registration and applies <paramref name="configure"/> too.
    /// </summary>
    public static IInboxReliabilityBuilder AddInboxReliability(this IServiceCollection services, Action<InboxReliabilityOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var options = services.AddOptions<InboxReliabilityOptions>();
        if (configure is not null) options.Configure(configure);

        if (!services.Any(d => d.ServiceType == typeof(InboxReliabilityMarker)))
        {
            services.AddSingleton<InboxReliabilityMarker>();
            services.TryAddSingleton(TimeProvider.System);
            services.TryAddSingleton<QueueSignals>();
            services.TryAddSingleton<RunningJobs>();
            services.TryAddSingleton<StartupGate>();
            services.TryAddSingleton<IJobQueue>(sp => new JobQueue(
                sp.GetService<Inbox.Reliability.Storage.IJobStore>() ?? throw InboxStartup.NoStorage(),
                sp.GetRequiredService<TimeProvider>(),
                sp.GetRequiredService<QueueSignals>(),
                sp.GetRequiredService<RunningJobs>(),
                sp.GetRequiredService<IOptions<InboxReliabilityOptions>>(),
                sp.GetServices<JobHandlerRegistration>()));

            // Startup first: it validates everything and migrates before any worker claims.
            services.AddSingleton<IHostedService, InboxStartup>();
            services.AddSingleton<IHostedService, LeaseReaper>();
            services.AddSingleton<IHostedService, RetentionService>();
            services.AddSingleton<IHostedService, WakeupListener>();
        }

        return new InboxReliabilityBuilder(services);
    }
}

/// <summary>Added once by <c>AddInboxReliability</c>.</summary>
internal sealed class InboxReliabilityMarker;
