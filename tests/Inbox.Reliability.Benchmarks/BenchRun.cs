using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using Inbox.Reliability.Jobs;
using Inbox.Reliability.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Inbox.Reliability.Benchmarks;

/// <summary>
/// One run of one mode, in its own process, on a fresh database, through the public API as a host app uses it:
/// 1. single enqueues from 8 concurrent callers; 2. batch enqueues of 1,000; 3. burn-down of everything by the worker,
/// started only after the enqueues; 4. enqueue-to-start latency on the idle running worker.
/// </summary>
public static class BenchRun
{
    public const string BenchQueue = "bench";
    public const string LatencyQueue = "lat";

    public static async Task<BenchResult> RunAsync(BenchOptions options, string mode, IBenchStorage storage)
    {
        var keyed = mode == BenchModes.Keyed;
        var total = options.Total;
        var where = await storage.PrepareAsync();
        await Console.Error.WriteLineAsync($"[bench] {mode}: {storage.Name} at {where}");

        var builder = CreateHostBuilder();
        builder.Services.AddSingleton(new BurnDownCounter(total));
        builder.Services.AddSingleton(new LatencyRecorder(options.LatencyJobs));

        var inbox = builder.Services.AddInboxReliability();
        storage.Configure(inbox);
        inbox.AddJobHandler<NoopHandler>(BenchQueue, o =>
        {
            o.Concurrency = options.Concurrency;
            o.Prefetch = options.Prefetch; // like graphile-worker's batched mode (localQueue), jobs claimed ahead in memory
            o.BatchSize = Math.Min(1000, Math.Max(1, options.Prefetch));
            o.RemoveOnComplete = mode == BenchModes.Removed;
        });
        inbox.AddJobHandler<LatencyHandler>(LatencyQueue, o => o.Concurrency = options.Concurrency);

        using var host = builder.Build();
        var queue = host.Services.GetRequiredService<IJobQueue>();
        var counter = host.Services.GetRequiredService<BurnDownCounter>();
        var latency = host.Services.GetRequiredService<LatencyRecorder>();

        // The worker must not run while enqueueing: create the schema now (startup migrates again, a no-op) and
        // start the host only for the burn-down.
        await host.Services.GetRequiredService<IJobStore>().MigrateAsync();

        string? Key(int i) => keyed ? "k" + (i % options.Keys).ToString(CultureInfo.InvariantCulture) : null;
        static string Payload(int i) => "{\"i\":" + i.ToString(CultureInfo.InvariantCulture) + "}";

        var phases = new PhaseLog(mode);

        // 1. Single enqueues from 8 concurrent callers, like webhooks arriving.
        var next = -1;
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, options.SingleCallers).Select(_ => Task.Run(async () =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < options.Single)
            {
                await queue.EnqueueAsync(new JobRequest(BenchQueue, Payload(i)) { Key = Key(i) });
            }
        })));
        var singleRate = Rate(options.Single, clock.Elapsed);
        await phases.MarkAsync("single enqueue");

        // 2. Batch enqueues, 1,000 per call.
        clock.Restart();
        for (var start = 0; start < options.Jobs; start += options.BatchSize)
        {
            var count = Math.Min(options.BatchSize, options.Jobs - start);
            var batch = new JobRequest[count];
            for (var k = 0; k < count; k++)
            {
                var i = options.Single + start + k;
                batch[k] = new JobRequest(BenchQueue, Payload(i)) { Key = Key(i) };
            }

            await queue.EnqueueBatchAsync(batch);
        }

        var batchRate = Rate(options.Jobs, clock.Elapsed);
        await phases.MarkAsync("batch enqueue");

        // 3. Burn-down: from host start until the handler counted every job and storage recorded every completion (the
        //    library's completed-jobs metric counts a job once its outcome is committed); then the stats must agree.
        using (var recorded = new RecordedCompletions(BenchQueue, total))
        {
            clock.Restart();
            await host.StartAsync();
            await counter.Done.WaitAsync(TimeSpan.FromMinutes(10));
            try
            {
                await recorded.Done.WaitAsync(TimeSpan.FromMinutes(1));
            }
            catch (TimeoutException)
            {
                throw new TimeoutException($"Queue {BenchQueue}: storage recorded {recorded.Count} of {total} completions a minute after the handler ran them all (outcomes lost or not written).");
            }
        }

        var processRate = Rate(total, clock.Elapsed);
        await phases.MarkAsync("burn-down");
        await CheckCompletedAsync(queue, BenchQueue, mode == BenchModes.Removed ? 0 : total);

        // 4. Enqueue-to-start latency on the idle worker, about 100 jobs/s (10 ms apart), unkeyed.
        for (var i = 0; i < options.LatencyJobs; i++)
        {
            await queue.EnqueueAsync(new JobRequest(LatencyQueue, LatencyRecorder.Payload()));
            await Task.Delay(10);
        }

        await latency.Done.WaitAsync(TimeSpan.FromMinutes(2));
        var samples = latency.Samples;
        await phases.MarkAsync("latency");

        await host.StopAsync();
        var result = new BenchResult
        {
            Version = PackageVersion(),
            Storage = storage.Name,
            Mode = mode,
            Concurrency = options.Concurrency,
            Jobs = total,
            SingleEnqueuePerS = Math.Round(singleRate),
            BatchEnqueuePerS = Math.Round(batchRate),
            ProcessPerS = Math.Round(processRate),
            LatencyMsP50 = Math.Round(BenchResult.Percentile(samples, 0.5), 2),
            LatencyMsP99 = Math.Round(BenchResult.Percentile(samples, 0.99), 2),
            PeakRssMb = ProcessMemory.PeakRssMb(),
            RssMbAfter = ProcessMemory.RssMb(),
        };
        return result;
    }

    /// <summary>The generic host of every run and measure, as a host app has it; quiet (warnings and errors only, to stderr).</summary>
    public static HostApplicationBuilder CreateHostBuilder()
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        // Quiet: warnings and errors only, to stderr, so stdout carries nothing but the JSON lines.
        builder.Logging.ClearProviders();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Logging.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(30));
        return builder;
    }

    /// <summary>Wall and CPU time of each phase, to stderr: tells CPU-bound phases from I/O-bound ones.</summary>
    internal sealed class PhaseLog(string mode)
    {
        private readonly Process _self = Process.GetCurrentProcess();
        private TimeSpan _cpu = Process.GetCurrentProcess().TotalProcessorTime;
        private readonly Stopwatch _wall = Stopwatch.StartNew();
        private int _gcs = GC.CollectionCount(0);

        public Task MarkAsync(string phase)
        {
            _self.Refresh();
            var cpu = _self.TotalProcessorTime;
            var gcs = GC.CollectionCount(0);
            var wall = _wall.Elapsed;
            var line = string.Create(CultureInfo.InvariantCulture,
                $"[bench] {mode} {phase}: {wall.TotalMilliseconds:F0} ms wall, {(cpu - _cpu).TotalMilliseconds:F0} ms CPU ({(cpu - _cpu) / wall * 100:F0}% of one core), {gcs - _gcs} gen0 GCs");
            _cpu = cpu;
            _gcs = gcs;
            _wall.Restart();
            return Console.Error.WriteLineAsync(line);
        }
    }

    private static double Rate(int count, TimeSpan elapsed) => count == 0 ? 0 : count / elapsed.TotalSeconds;

    /// <summary>
    /// After the burn-down: the stats must show every job completed (<paramref name="total"/> of them; 0 when completed jobs
    /// are removed) and none pending, processing or failed. Storage recorded every completion before this runs.
    /// </summary>
    private static async Task CheckCompletedAsync(IJobQueue queue, string name, int total)
    {
        var stats = (await queue.GetStatsAsync()).FirstOrDefault(s => s.Queue == name);
        if (stats is null ? total != 0 : stats.Completed != total || stats.Failed > 0 || stats.Pending > 0 || stats.Processing > 0)
            throw new InvalidOperationException($"Queue {name}: {stats?.Pending} pending, {stats?.Processing} processing, {stats?.Failed} failed, {stats?.Completed} completed (expected {total}) after the burn-down.");
    }

    public static string PackageVersion()
    {
        var version = typeof(IJobQueue).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion;
        if (string.IsNullOrWhiteSpace(version)) return "0.1.0";
        var plus = version.IndexOf('+', StringComparison.Ordinal);
        return plus < 0 ? version : version[..plus];
    }
}
