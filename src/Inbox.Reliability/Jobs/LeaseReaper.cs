using Inbox.Reliability.Diagnostics;
using Inbox.Reliability.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Inbox.Reliability.Jobs;

/// <summary>Returns jobs whose lease expired (their worker died or hung) to pending, periodically.</summary>
internal sealed class LeaseReaper(IServiceProvider services, StartupGate gate, QueueSignals signals, TimeProvider time, IOptions<InboxReliabilityOptions> options, ILogger<LeaseReaper> logger)
    : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        MaintenanceLoop.RunAsync(gate, time, options.Value.LeaseReaperInterval, logger, "reaping expired leases", async ct =>
        {
            var count = await services.GetRequiredService<IJobStore>().ReapExpiredLeasesAsync(ct).ConfigureAwait(false);
            if (count == 0) return;
            Log.LeasesReaped(logger, count);
            signals.SetAll();
        }, stoppingToken);
}

/// <summary>Deletes completed and canceled jobs older than the retention, periodically. Failed jobs are kept.</summary>
internal sealed class RetentionService(IServiceProvider services, StartupGate gate, TimeProvider time, IOptions<InboxReliabilityOptions> options, ILogger<RetentionService> logger)
    : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        MaintenanceLoop.RunAsync(gate, time, options.Value.RetentionInterval, logger, "applying retention", async ct =>
        {
            var before = time.GetUtcNow() - options.Value.Retention;
            var count = await services.GetRequiredService<IJobStore>().DeleteFinishedAsync(before, ct).ConfigureAwait(false);
            if (count > 0) Log.RetentionApplied(logger, count, before);
        }, stoppingToken);
}

internal static class MaintenanceLoop
{
    public static async Task RunAsync(StartupGate gate, TimeProvider time, TimeSpan interval, ILogger logger, string operation, Func<CancellationToken, Task> work, CancellationToken stoppingToken)
    {
        try
        {
            await gate.WaitAsync(stoppingToken).ConfigureAwait(false);
            while (!stoppingToken.IsCancellationRequested)
            {
                await Task.Delay(interval, time, stoppingToken).ConfigureAwait(false);
                try
                {
                    await work(stoppingToken).ConfigureAwait(false);
                }
                catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
                {
                    Log.StorageError(logger, operation, "*", interval, ex);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Stopping.
        }
    }
}
