using System.Globalization;
using System.Text.Json;
using Inbox.Reliability.Jobs;
using Inbox.Reliability.SampleHost.Handlers;

namespace Inbox.Reliability.SampleHost.Demo;

/// <summary>Writes the live progress and the final summary of a demo run to the console.</summary>
public static class ConsoleReport
{
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    /// <summary>One line per queue: how many jobs of this run are in each status.</summary>
    public static void Progress(TimeSpan elapsed, IReadOnlyList<JobInfo> jobs)
    {
        var stamp = string.Create(Invariant, $"[{elapsed.TotalSeconds,5:0.0}s]");
        foreach (var stats in RunTracker.CountByQueue(jobs, Queues.All))
        {
            var retries = RunTracker.Retries(jobs.Where(j => j.Queue == stats.Queue));
            Console.WriteLine(string.Create(Invariant,
                $"{stamp} {stats.Queue,-16} pending {stats.Pending,5}  processing {stats.Processing,3}  completed {stats.Completed,5}  failed {stats.Failed,3}  canceled {stats.Canceled,3}  retries {retries,4}"));
            stamp = new string(' ', stamp.Length);
        }
    }

    /// <summary>Writes the summary and returns true when every check passed.</summary>
    public static async Task<bool> SummaryAsync(
        IJobQueue queue, DemoWorkload workload, IReadOnlyList<EnqueueResult> enqueued, IReadOnlyList<JobInfo> jobs,
        bool finished, TimeSpan elapsed, ChatOrderChecker order, CancellationToken cancellationToken)
    {
        Console.WriteLine();
        Console.WriteLine(string.Create(Invariant, $"Summary of run {workload.Run}: {jobs.Count} jobs in {elapsed.TotalSeconds:0.0} s"));
        Console.WriteLine();
        Table(jobs);
        Console.WriteLine();

        var ok = true;
        Console.WriteLine("Checks");

        // 1. Nothing stuck or lost: every job enqueued is stored and final.
        var notFinal = jobs.Where(j => !RunTracker.IsFinal(j)).ToList();
        var lost = workload.Jobs - jobs.Count;
        ok &= Check(finished && lost == 0, "every job final",
            finished && lost == 0 ? $"{jobs.Count} of {workload.Jobs} jobs completed, failed or canceled"
                : $"{notFinal.Count} jobs not final after no progress, {lost} jobs missing from storage");
        foreach (var job in notFinal.Take(10))
        {
            Console.WriteLine(string.Create(Invariant,
                $"      job {job.Id} {job.Queue} key={job.Key ?? "-"} {job.Status} attempts {job.Attempts}/{job.MaxAttempts} runAt {job.RunAt:HH:mm:ss.fff} lease {job.LeaseOwner ?? "-"} until {job.LeaseExpiresAt:HH:mm:ss.fff}"));
        }

        // 2. Each job ended as its simulation says: completed after N failed attempts, or dead-lettered.
        var surprises = jobs.Where(RunTracker.IsFinal).Select(j => (Job: j, Expected: Expect(j))).Where(x => x.Expected != (x.Job.Status, x.Job.Attempts)).ToList();
        var completed = jobs.Count(j => j.Status == JobStatus.Completed);
        var failed = jobs.Count(j => j.Status == JobStatus.Failed);
        ok &= Check(surprises.Count == 0, "outcomes",
            surprises.Count == 0 ? string.Create(Invariant, $"every job ended as simulated: {completed} completed, {failed} dead-lettered, {RunTracker.Retries(jobs)} retries")
                : $"{surprises.Count} jobs ended differently than simulated");
        foreach (var (job, expected) in surprises.Take(10))
        {
            Console.WriteLine(string.Create(Invariant, $"      job {job.Id} {job.Queue}: expected {expected.Status} after {expected.Attempts} attempts, got {job.Status} after {job.Attempts}"));
        }

        // 3. Per-chat FIFO: the handler saw every chat's messages one at a time, in order.
        var done = order.CompletedPerChat;
        var incompleteChats = workload.MessagesPerChat.Count(c => done.GetValueOrDefault(c.Key) != c.Value);
        ok &= Check(order.Violations == 0 && order.Duplicates == 0 && incompleteChats == 0, "chat order",
            string.Create(Invariant, $"{workload.MessagesPerChat.Count} chats, {workload.MessagesPerChat.Values.Sum()} messages: {order.Violations} order violations, {order.Duplicates} messages run twice, {incompleteChats} chats incomplete"));
        foreach (var problem in order.Problems) Console.WriteLine("      " + problem);

        // 4. Dedupe: each redelivered message got the id of the job already queued instead of a new job.
        var collapsed = workload.Redeliveries.Count(i => enqueued[i].Duplicate && enqueued[i].Id == enqueued[i - 1].Id);
        ok &= Check(collapsed == workload.Redeliveries.Count, "dedupe",
            string.Create(Invariant, $"{collapsed} of {workload.Redeliveries.Count} webhook redeliveries collapsed into the queued job by DedupeKey"));
        Console.WriteLine();

        await DeadLettersAsync(queue, jobs, cancellationToken);
        return ok;
    }

    private static void Table(IReadOnlyList<JobInfo> jobs)
    {
        Console.WriteLine($"{"queue",-16} {"pending",8} {"processing",11} {"completed",10} {"failed",7} {"canceled",9} {"total",7} {"retries",8}");
        var rows = RunTracker.CountByQueue(jobs, Queues.All).Select(s => (Stats: s, Retries: RunTracker.Retries(jobs.Where(j => j.Queue == s.Queue)))).ToList();
        foreach (var (s, retries) in rows) Row(s.Queue, s.Pending, s.Processing, s.Completed, s.Failed, s.Canceled, retries);
        Console.WriteLine(new string('-', 16 + 8 + 11 + 10 + 7 + 9 + 7 + 8 + 7));
        Row("all", rows.Sum(r => r.Stats.Pending), rows.Sum(r => r.Stats.Processing), rows.Sum(r => r.Stats.Completed),
            rows.Sum(r => r.Stats.Failed), rows.Sum(r => r.Stats.Canceled), rows.Sum(r => r.Retries));

        static void Row(string name, long pending, long processing, long completed, long failed, long canceled, long retries) =>
            Console.WriteLine(string.Create(Invariant,
                $"{name,-16} {pending,8} {processing,11} {completed,10} {failed,7} {canceled,9} {pending + processing + completed + failed + canceled,7} {retries,8}"));
    }

    /// <summary>A few dead-lettered jobs of this run, with their last error and attempt history.</summary>
    private static async Task DeadLettersAsync(IJobQueue queue, IReadOnlyList<JobInfo> jobs, CancellationToken cancellationToken)
    {
        var ofRun = jobs.Select(j => j.Id).ToHashSet();
        var page = await queue.ListAsync(new JobQuery { Status = JobStatus.Failed, Limit = 1000 }, cancellationToken);
        var dead = page.Jobs.Where(j => ofRun.Contains(j.Id)).ToList();
        if (dead.Count == 0)
        {
            Console.WriteLine("Dead letters: none.");
            return;
        }

        // Two that failed fatally at once and two that ran out of attempts, oldest first.
        var shown = dead.Where(j => j.Attempts == 1).TakeLast(2).Concat(dead.Where(j => j.Attempts > 1).TakeLast(2)).OrderBy(j => j.Id).ToList();
        var total = jobs.Count(j => j.Status == JobStatus.Failed);
        Console.WriteLine($"Dead letters of this run: {total} (IJobQueue.ListAsync with Status = Failed); {shown.Count} of them with their attempts:");
        foreach (var job in shown)
        {
            Console.WriteLine(string.Create(Invariant, $"  job {job.Id} {job.Queue}, failed after {job.Attempts} of {job.MaxAttempts} attempts"));
            Console.WriteLine($"    last error: {job.LastError}");
            foreach (var attempt in await queue.GetAttemptsAsync(job.Id, cancellationToken))
            {
                Console.WriteLine(string.Create(Invariant,
                    $"    attempt {attempt.Attempt}: {attempt.StartedAt.ToLocalTime():HH:mm:ss.fff} {attempt.Outcome,-8} after {attempt.Duration.TotalMilliseconds,4:0} ms  {Shorten(attempt.Error)}"));
            }
        }

        Console.WriteLine("  Fix the cause, then requeue them with IJobQueue.RequeueFailedAsync(new JobQuery { Queue = \"...\" }), or delete them with PurgeAsync.");
    }

    private static string Shorten(string? error)
    {
        if (error is null) return "";
        var type = error.IndexOf(':', StringComparison.Ordinal) is var colon and > 0 ? error[..colon] : error;
        return type[(type.LastIndexOf('.') + 1)..];
    }

    private static bool Check(bool passed, string name, string detail)
    {
        Console.WriteLine($"  {(passed ? "OK  " : "FAIL")}  {name + ":",-16} {detail}");
        return passed;
    }

    /// <summary>How a job should end according to its payload's simulation.</summary>
    private static (JobStatus Status, int Attempts) Expect(JobInfo job)
    {
        var simulate = JsonSerializer.Deserialize<SimulatedPayload>(job.Payload, SampleJson.Options)?.Simulate ?? new Simulation();
        if (simulate.Fatal) return (JobStatus.Failed, 1);
        return simulate.Failures >= job.MaxAttempts ? (JobStatus.Failed, job.MaxAttempts) : (JobStatus.Completed, simulate.Failures + 1);
    }

    private sealed record SimulatedPayload(Simulation? Simulate);
}
