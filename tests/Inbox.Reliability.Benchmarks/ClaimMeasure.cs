using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Inbox.Reliability.Jobs;
using Inbox.Reliability.Storage;
using Microsoft.Extensions.DependencyInjection;

namespace Inbox.Reliability.Benchmarks;

/// <summary>
/// Claim time at a queue depth: fills one queue with <see cref="BenchOptions.Queued"/> jobs (batches of 5,000 through
/// <see cref="IJobQueue.EnqueueBatchAsync"/>, host not started so no worker runs), then times 200
/// <see cref="IJobStore.ClaimAsync"/> calls of 100 jobs. After each claim the 100 jobs are completed (FinishAsync, in
/// parallel) and 100 new ones enqueued, so the depth stays at N for every timed claim; only the claim call is timed.
/// </summary>
public static class ClaimMeasure
{
    private const string Queue = "claim";
    private const int FillBatch = 5_000;
    private const int ClaimSize = 100;
    private const int WarmupClaims = 10;
    private const int TimedClaims = 200;

    public static async Task<JsonObject> RunAsync(BenchOptions options, IBenchStorage storage)
    {
        var where = await storage.PrepareAsync();
        await Console.Error.WriteLineAsync($"[bench] claim at {options.Queued:N0} queued: {storage.Name} at {where}");

        var builder = BenchRun.CreateHostBuilder();
        var inbox = builder.Services.AddInboxReliability();
        storage.Configure(inbox);
        using var host = builder.Build(); // never started: the claims below are the only ones
        var queue = host.Services.GetRequiredService<IJobQueue>();
        var store = host.Services.GetRequiredService<IJobStore>();
        await store.MigrateAsync();

        var next = 0;
        JobRequest[] Requests(int count)
        {
            var batch = new JobRequest[count];
            for (var k = 0; k < count; k++, next++) batch[k] = new JobRequest(Queue, "{\"i\":" + next.ToString(CultureInfo.InvariantCulture) + "}");
            return batch;
        }

        // Fill.
        var clock = Stopwatch.StartNew();
        var lastReport = TimeSpan.Zero;
        while (next < options.Queued)
        {
            await queue.EnqueueBatchAsync(Requests(Math.Min(FillBatch, options.Queued - next)));
            if (clock.Elapsed - lastReport > TimeSpan.FromSeconds(10))
            {
                lastReport = clock.Elapsed;
                await Console.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"[bench] claim: {next:N0} of {options.Queued:N0} queued after {clock.Elapsed.TotalSeconds:F0} s"));
            }
        }

        var fillSeconds = clock.Elapsed.TotalSeconds;
        await Console.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"[bench] claim: filled {options.Queued:N0} jobs in {fillSeconds:F1} s ({options.Queued / fillSeconds:F0} jobs/s)"));

        // Warm-up (jitted code, prepared statements), then the timed claims.
        var owner = "bench-claim:" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
        var claimMs = new List<double>(TimedClaims);
        var finishMs = new List<double>(TimedClaims);
        var claimed = 0;
        var shortClaims = 0;
        for (var i = 0; i < WarmupClaims + TimedClaims; i++)
        {
            var start = Stopwatch.GetTimestamp();
            var jobs = await store.ClaimAsync(Queue, ClaimSize, owner, TimeSpan.FromMinutes(5));
            var claimElapsed = Stopwatch.GetElapsedTime(start);

            start = Stopwatch.GetTimestamp();
            var finished = await Task.WhenAll(jobs.Select(j => store.FinishAsync(j.Lease, JobOutcome.Completed)));
            var finishElapsed = Stopwatch.GetElapsedTime(start);
            if (finished.Any(ok => !ok)) throw new InvalidOperationException("A claimed job's lease was lost before it was completed.");

            // Keep the depth at N: as many new jobs as were just taken (untimed).
            if (jobs.Count > 0) await queue.EnqueueBatchAsync(Requests(jobs.Count));

            if (i < WarmupClaims) continue;
            claimMs.Add(claimElapsed.TotalMilliseconds);
            finishMs.Add(finishElapsed.TotalMilliseconds);
            claimed += jobs.Count;
            if (jobs.Count < Math.Min(ClaimSize, options.Queued)) shortClaims++;
        }

        var result = new JsonObject
        {
            ["measure"] = BenchMeasures.Claim,
            ["system"] = "inbox-reliability",
            ["version"] = BenchRun.PackageVersion(),
            ["storage"] = storage.Name,
            ["queued"] = options.Queued,
            ["claims"] = TimedClaims,
            ["claim_size"] = ClaimSize,
            ["claimed"] = claimed,
            ["short_claims"] = shortClaims,
            ["claim_ms_p50"] = Math.Round(BenchResult.Percentile(claimMs, 0.5), 2),
            ["claim_ms_p99"] = Math.Round(BenchResult.Percentile(claimMs, 0.99), 2),
            ["finish_ms_p50"] = Math.Round(BenchResult.Percentile(finishMs, 0.5), 2),
            ["fill_s"] = Math.Round(fillSeconds, 1),
            ["fill_per_s"] = Math.Round(options.Queued / fillSeconds),
        };
        return result;
    }
}
