// Inbox.Reliability sample host.
//
// The first part is what a host adds to use the library: storage and one handler per queue. Copy it.
// The second part is the demo: it enqueues a workload in which some jobs fail on purpose, shows the progress,
// and checks at the end that nothing was lost, every chat ran in order and the poison jobs were dead-lettered.
//
//   dotnet run --project samples/Inbox.Reliability.SampleHost [-- [--jobs N] [--keep-running]]

using System.Diagnostics;
using Inbox.Reliability;
using Inbox.Reliability.Jobs;
using Inbox.Reliability.SampleHost;
using Inbox.Reliability.SampleHost.Demo;
using Inbox.Reliability.SampleHost.Handlers;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

var demo = DemoOptions.Parse(args);
if (demo is null) return 2;

var builder = Host.CreateApplicationBuilder(args);

// Logging. The library logs every failed attempt that will be retried as a Warning (event id 1001) and every
// dead letter as an Error (1002), under the categories "Inbox.Reliability.*". This demo fails hundreds of
// attempts on purpose, so it keeps only the library's errors on screen: the dead letters and real trouble
// such as storage failures. A production host keeps the warnings (a retry storm is worth seeing).
builder.Logging.SetMinimumLevel(LogLevel.Warning);
builder.Logging.AddFilter("Inbox.Reliability", LogLevel.Error);
builder.Logging.AddSimpleConsole(o => o.SingleLine = true); // one line per entry, between the progress lines

// ---- Inbox.Reliability: the part to copy ---------------------------------------------------------------
builder.Services.AddInboxReliability()
    // A SQLite file relative to the current directory; the folder is created when missing.
    .UseSqlite("Data Source=data/sample.db")

    // Inbound messages, keyed by chat id: one chat's messages run one at a time, in order; chats run in parallel.
    .AddJobHandler<ChatMessageHandler>(Queues.ChatMessages, o =>
    {
        o.Concurrency = 16;
        o.MaxAttempts = 3;
        o.Backoff.Base = TimeSpan.FromMilliseconds(200); // retries after ~200 ms, ~400 ms (default: 1 s, doubling)
    })

    // Receipts, unkeyed: they run in parallel, a failed one retries with backoff.
    .AddJobHandler<ReceiptHandler>(Queues.Receipts, o =>
    {
        o.Concurrency = 8;
        o.MaxAttempts = 3;
        o.Backoff.Base = TimeSpan.FromMilliseconds(200);
    })

    // Media downloads: a job that throws FatalJobException, or fails MaxAttempts times, is dead-lettered.
    .AddJobHandler<MediaDownloadHandler>(Queues.MediaDownloads, o =>
    {
        o.Concurrency = 4;
        o.MaxAttempts = 3;
        o.Backoff.Base = TimeSpan.FromMilliseconds(200);
    });
// ---------------------------------------------------------------------------------------------------------

// Demo only: a fresh run id, so the checks count this run's jobs only, and the per-chat order check.
var run = Guid.NewGuid().ToString("N")[..8];
builder.Services.AddSingleton(new ChatOrderChecker(run));

using var host = builder.Build();

// Starting the host validates the configuration, migrates the SQLite file and starts one worker per queue.
await host.StartAsync();
var stopping = host.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping; // Ctrl+C
var queue = host.Services.GetRequiredService<IJobQueue>();

int exitCode;
try
{
    // The SQLite file outlives the process: delete what earlier runs left in the demo queues (finished jobs,
    // dead letters, and pending jobs of a run stopped midway; running jobs are never purged). A real host
    // never does this: completed jobs go by retention, dead letters wait for an operator.
    var purged = 0;
    foreach (var name in Queues.All) purged += await queue.PurgeAsync(new JobQuery { Queue = name }, stopping);

    // Enqueue the whole workload in one transaction: every job is durable when this returns, or none is.
    var workload = DemoWorkload.Create(run, demo.Jobs);
    var clock = Stopwatch.StartNew();
    var enqueued = await queue.EnqueueBatchAsync(workload.Requests, stopping);
    Console.WriteLine($"Run {run}: enqueued {workload.Jobs} jobs into {string.Join(", ", Queues.All)} " +
        $"(plus {workload.Redeliveries.Count} webhook redeliveries); purged {purged} jobs of earlier runs.");
    Console.WriteLine($"Storage: {Path.GetFullPath("data/sample.db")}");
    Console.WriteLine($"The {workload.Poison} poison jobs are logged as errors when they are dead-lettered (\"fail: ... [1002]\"): that is expected.");
    Console.WriteLine();

    // Live progress every 500 ms until every job of this run is completed, failed or canceled.
    var tracker = new RunTracker(queue, enqueued.Select(r => r.Id));
    var (jobs, finished) = await tracker.WaitUntilFinishedAsync(
        TimeSpan.FromMilliseconds(500), stuckAfter: TimeSpan.FromSeconds(60), ConsoleReport.Progress, stopping);

    var passed = await ConsoleReport.SummaryAsync(
        queue, workload, enqueued, jobs, finished, clock.Elapsed, host.Services.GetRequiredService<ChatOrderChecker>(), stopping);
    exitCode = passed ? 0 : 1;

    if (demo.KeepRunning)
    {
        Console.WriteLine();
        Console.WriteLine("The host keeps running (--keep-running): the workers wait for new jobs. Press Ctrl+C to stop.");
        await host.WaitForShutdownAsync();
        return exitCode;
    }
}
catch (OperationCanceledException) when (stopping.IsCancellationRequested)
{
    Console.WriteLine("Stopped before the run finished; its jobs stay in data/sample.db until the next run purges them.");
    exitCode = 130;
}

// Stopping lets running handlers finish (ShutdownGracePeriod), then releases the rest back to pending.
await host.StopAsync();
return exitCode;
