using Inbox.Reliability.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Inbox.Reliability.Jobs;

/// <summary>Runs the store's <see cref="IJobWakeupSource"/>, when it has one, feeding the in-process signals.</summary>
internal sealed class WakeupListener(IServiceProvider services, StartupGate gate, QueueSignals signals, IOptions<InboxReliabilityOptions> options) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await gate.WaitAsync(stoppingToken).ConfigureAwait(false);

            // Wake-ups only serve workers; an enqueue-only host has none (and keeps no listening connection).
            if (!options.Value.ProcessJobs) return;
            if (services.GetService<IJobStore>() is not IJobWakeupSource source) return;
            await source.ListenAsync(signals.Set, stoppingToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Stopping.
        }
    }
}
