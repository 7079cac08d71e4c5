using System.Diagnostics;
using Inbox.Reliability.Jobs;

namespace Inbox.Reliability.SampleHost.Demo;

/// <summary>
/// The job demo (the sample's default mode): enqueues a workload in which some jobs fail on purpose, shows the progress,
/// and checks at the end that nothing was lost, every chat ran in order and the poison jobs were dead-lettered.
/// </summary>
public static class JobDemo
{
    /// <summary>Runs the demo on the started host; returns 0 when every check passed, 1 otherwise.</summary>
    public static async Task<int> RunAsync(IServiceProvider services, DemoOptions demo, CancellationToken stopping)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(demo);
        var queue = services.GetRequiredService<IJobQueue>();
        var order = services.GetRequiredService<ChatOrderChecker>();

        // The SQLite file outlives the process: delete what earlier runs left in the demo queues (finished jobs,
        // dead letters, and pending jobs of a run stopped midway; running jobs are never purged). A real host
        // never does this: completed jobs go by retention, dead letters wait for an operator.
        var purged = 0;
        foreach (var name in Queues.All) purged += await queue.PurgeAsync(new JobQuery { Queue = name }, stopping);

        // Enqueue the whole workload in one transaction: every job is durable when this returns, or none is.
        var workload = DemoWorkload.Create(order.Run, demo.Jobs);
        var clock = Stopwatch.StartNew();
        var enqueued = await queue.EnqueueBatchAsync(workload.Requests, stopping);
        Console.WriteLine($"Run {order.Run}: enqueued {workload.Jobs} jobs into {string.Join(", ", Queues.All)} " +
            $"(plus {workload.Redeliveries.Count} webhook redeliveries); purged {purged} jobs of earlier runs.");
        Console.WriteLine($"Storage: {Path.GetFullPath("data/sample.db")}");
        Console.WriteLine($"The {workload.Poison} poison jobs are logged as errors when they are dead-lettered (\"fail: ... [1002]\"): that is expected.");
        Console.WriteLine();

        // Live progress every 500 ms until every job of this run is completed, failed or canceled.
        var tracker = new RunTracker(queue, enqueued.Select(r => r.Id));
        var (jobs, finished) = await tracker.WaitUntilFinishedAsync(
            TimeSpan.FromMilliseconds(500), stuckAfter: TimeSpan.FromSeconds(60), ConsoleReport.Progress, stopping);

        var passed = await ConsoleReport.SummaryAsync(queue, workload, enqueued, jobs, finished, clock.Elapsed, order, stopping);
        return passed ? 0 : 1;
    }
}
