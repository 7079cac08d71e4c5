using System.Text;
using Inbox.Reliability.Diagnostics;
using Inbox.Reliability.Jobs;
using Inbox.Reliability.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Inbox.Reliability;

/// <summary>
/// Runs first at startup: checks the whole configuration and reports every problem at once, migrates storage,
/// returns leases left expired by a previous run, then opens the gate the workers wait on.
/// </summary>
internal sealed class InboxStartup(IServiceProvider services, StartupGate gate, ILogger<InboxStartup> logger) : IHostedService
{
    internal static InvalidOperationException NoStorage() => new(
        "Inbox.Reliability has no storage configured. Call a storage method on the builder returned by AddInboxReliability(), " +
        "for example services.AddInboxReliability().UseSqlite(\"Data Source=inbox.db\").");

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        try
        {
            Validate(services);
            var options = services.GetRequiredService<IOptions<InboxReliabilityOptions>>().Value;
            var store = services.GetRequiredService<IJobStore>();
            if (options.RunMigrations) await store.MigrateAsync(cancellationToken).ConfigureAwait(false);
            var reaped = await store.ReapExpiredLeasesAsync(cancellationToken).ConfigureAwait(false);
            if (reaped > 0) Log.LeasesReaped(logger, reaped);
            Log.StorageReady(logger, services.GetRequiredService<InboxStorageRegistration>().Name);
            if (!options.ProcessJobs) Log.JobsNotProcessed(logger);
            gate.Open();
        }
        catch (Exception ex)
        {
            gate.Fail(ex);
            throw;
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Throws one exception listing every configuration problem.</summary>
    internal static void Validate(IServiceProvider services)
    {
        var errors = new List<string>();
        var storages = services.GetServices<InboxStorageRegistration>().ToList();
        if (storages.Count == 0) errors.Add(NoStorage().Message);
        else if (storages.Count > 1) errors.Add($"Inbox.Reliability has {storages.Count} storages configured ({string.Join(", ", storages.Select(s => s.Method + "()"))}); keep exactly one.");

        try
        {
            errors.AddRange(services.GetRequiredService<IOptions<InboxReliabilityOptions>>().Value.Validate());
        }
        catch (OptionsValidationException ex)
        {
            errors.AddRange(ex.Failures);
        }

        var handlers = services.GetServices<JobHandlerRegistration>().ToList();
        foreach (var group in handlers.GroupBy(h => h.Queue, StringComparer.Ordinal).Where(g => g.Count() > 1))
        {
            errors.Add($"Queue \"{group.Key}\" has {group.Count()} handlers ({string.Join(", ", group.Select(h => h.HandlerType.Name))}); register one handler per queue.");
        }

        foreach (var handler in handlers)
        {
            if (handler.Queue.Length > JobQueue.MaxQueueLength) errors.Add($"Queue name \"{handler.Queue[..20]}...\" is longer than {JobQueue.MaxQueueLength} characters.");
            errors.AddRange(handler.Options.Validate(handler.Queue));
        }

        foreach (var error in CollectStorageErrors(services)) errors.Add(error);
        if (errors.Count == 0) return;

        var message = new StringBuilder("Inbox.Reliability is not configured correctly:");
        foreach (var error in errors) message.Append(Environment.NewLine).Append(" - ").Append(error);
        throw new InboxConfigurationException(message.ToString(), errors);
    }

    private static IEnumerable<string> CollectStorageErrors(IServiceProvider services)
    {
        foreach (var validator in services.GetServices<IInboxConfigurationValidator>())
        {
            foreach (var error in validator.Validate()) yield return error;
        }
    }
}

/// <summary>For packages that plug in: reports configuration problems at startup, together with every other problem.</summary>
public interface IInboxConfigurationValidator
{
    /// <summary>Returns one message per problem, each saying what to call or fix.</summary>
    IEnumerable<string> Validate();
}

/// <summary>Thrown at startup when the configuration is invalid; <see cref="Exception.Message"/> lists every problem.</summary>
public sealed class InboxConfigurationException : InvalidOperationException
{
    /// <summary>Creates the exception.</summary>
    public InboxConfigurationException(string message, IReadOnlyList<string> errors) : base(message) => Errors = errors;

    /// <summary>Each problem found.</summary>
    public IReadOnlyList<string> Errors { get; }
}
