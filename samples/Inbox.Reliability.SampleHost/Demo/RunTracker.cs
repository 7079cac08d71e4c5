using System.Diagnostics;
using Inbox.Reliability.Jobs;

namespace Inbox.Reliability.SampleHost.Demo;

/// <summary>
/// Follows the jobs of this run only (by id), so jobs an earlier run left behind never mix into the numbers.
/// Reads them with <see cref="IJobQueue.ListAsync"/>, one page of up to 1,000 jobs at a time, newest first.
/// </summary>
public sealed class RunTracker
{
    private readonly IJobQueue _queue;
    private readonly HashSet<long> _ids;
    private readonly long _maxId;
    private readonly long _minId;

    /// <summary>Tracks the jobs with these ids.</summary>
    public RunTracker(IJobQueue queue, IEnumerable<long> ids)
    {
        _queue = queue;
        _ids = [.. ids];
        _minId = _ids.Count == 0 ? 0 : _ids.Min();
        _maxId = _ids.Count == 0 ? 0 : _ids.Max();
    }

    /// <summary>How many jobs are tracked.</summary>
    public int Count => _ids.Count;

    /// <summary>Reads every job of this run as stored now.</summary>
    public async Task<IReadOnlyList<JobInfo>> SnapshotAsync(CancellationToken cancellationToken)
    {
        var jobs = new List<JobInfo>(_ids.Count);
        long? before = _maxId + 1;
        while (before is { } id && id > _minId)
        {
            var page = await _queue.ListAsync(new JobQuery { BeforeId = id, Limit = 1000 }, cancellationToken);
            jobs.AddRange(page.Jobs.Where(j => _ids.Contains(j.Id)));
            before = page.NextBeforeId;
        }

        return jobs;
    }

    /// <summary>
    /// Calls <paramref name="report"/> every <paramref name="interval"/> until every job of this run is final
    /// (completed, failed or canceled). Returns the last snapshot, and false when nothing changed for
    /// <paramref name="stuckAfter"/> while some jobs were still not final.
    /// </summary>
    public async Task<(IReadOnlyList<JobInfo> Jobs, bool Finished)> WaitUntilFinishedAsync(
        TimeSpan interval, TimeSpan stuckAfter, Action<TimeSpan, IReadOnlyList<JobInfo>> report, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var lastChange = clock.Elapsed;
        var last = "";
        while (true)
        {
            var jobs = await SnapshotAsync(cancellationToken);
            report(clock.Elapsed, jobs);
            if (jobs.Count == _ids.Count && jobs.All(IsFinal)) return (jobs, true);

            var state = string.Join(',', jobs.Select(j => $"{j.Id}:{j.Status}:{j.Attempts}"));
            if (!string.Equals(state, last, StringComparison.Ordinal)) (last, lastChange) = (state, clock.Elapsed);
            else if (clock.Elapsed - lastChange > stuckAfter) return (jobs, false);

            await Task.Delay(interval, cancellationToken);
        }
    }

    /// <summary>True for completed, failed and canceled jobs.</summary>
    public static bool IsFinal(JobInfo job)
    {
        ArgumentNullException.ThrowIfNull(job);
        return job.Status is JobStatus.Completed or JobStatus.Failed or JobStatus.Canceled;
    }

    /// <summary>Counts jobs per queue and status, in the shape <see cref="IJobQueue.GetStatsAsync"/> returns.</summary>
    public static IReadOnlyList<QueueStats> CountByQueue(IEnumerable<JobInfo> jobs, IEnumerable<string> queues) =>
        queues.Select(queue =>
        {
            var of = jobs.Where(j => string.Equals(j.Queue, queue, StringComparison.Ordinal)).ToList();
            return new QueueStats
            {
                Queue = queue,
                Pending = of.Count(j => j.Status == JobStatus.Pending),
                Processing = of.Count(j => j.Status == JobStatus.Processing),
                Completed = of.Count(j => j.Status == JobStatus.Completed),
                Failed = of.Count(j => j.Status == JobStatus.Failed),
                Canceled = of.Count(j => j.Status == JobStatus.Canceled),
            };
        }).ToList();

    /// <summary>Retries so far: every attempt after a job's first.</summary>
    public static long Retries(IEnumerable<JobInfo> jobs) => jobs.Sum(j => (long)Math.Max(0, j.Attempts - 1));
}
