using Inbox.Reliability.Storage;
using Microsoft.Extensions.Options;

namespace Inbox.Reliability.Jobs;

internal sealed class JobQueue : IJobQueue, IJobQueueStorageAccess
{
    internal const int MaxQueueLength = 200;
    internal const int MaxKeyLength = 500;

    private readonly IJobStore _store;
    private readonly TimeProvider _time;
    private readonly QueueSignals _signals;
    private readonly RunningJobs _running;
    private readonly InboxReliabilityOptions _options;
    private readonly Dictionary<string, int> _maxAttemptsByQueue;

    public JobQueue(IJobStore store, TimeProvider time, QueueSignals signals, RunningJobs running, IOptions<InboxReliabilityOptions> options, IEnumerable<JobHandlerRegistration> handlers)
    {
        _store = store;
        _time = time;
        _signals = signals;
        _running = running;
        _options = options.Value;
        _maxAttemptsByQueue = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var handler in handlers) _maxAttemptsByQueue[handler.Queue] = handler.Options.MaxAttempts;
    }

    public async Task<EnqueueResult> EnqueueAsync(JobRequest job, CancellationToken cancellationToken = default)
    {
        var results = await EnqueueCoreAsync(new[] { job }, cancellationToken).ConfigureAwait(false);
        return results[0];
    }

    public Task<IReadOnlyList<EnqueueResult>> EnqueueBatchAsync(IReadOnlyList<JobRequest> jobs, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(jobs);
        return jobs.Count == 0 ? Task.FromResult<IReadOnlyList<EnqueueResult>>(Array.Empty<EnqueueResult>()) : EnqueueCoreAsync(jobs, cancellationToken);
    }

    IJobStore IJobQueueStorageAccess.Store => _store;

    IReadOnlyList<NewJob> IJobQueueStorageAccess.Prepare(IReadOnlyList<JobRequest> jobs)
    {
        ArgumentNullException.ThrowIfNull(jobs);
        return ToNewJobs(jobs);
    }

    private NewJob[] ToNewJobs(IReadOnlyList<JobRequest> jobs)
    {
        var now = _time.GetUtcNow();
        var rows = new NewJob[jobs.Count];
        for (var i = 0; i < jobs.Count; i++)
        {
            var job = jobs[i];
            Validate(job, i, jobs.Count);
            var maxAttempts = job.MaxAttempts ?? (_maxAttemptsByQueue.TryGetValue(job.Queue, out var m) ? m : _options.DefaultMaxAttempts);
            rows[i] = new NewJob(job.Queue, job.Payload, job.Key, job.RunAt ?? now, job.DedupeKey, maxAttempts, job.Priority);
        }

        return rows;
    }

    private async Task<IReadOnlyList<EnqueueResult>> EnqueueCoreAsync(IReadOnlyList<JobRequest> jobs, CancellationToken cancellationToken)
    {
        var rows = ToNewJobs(jobs);
        var results = await _store.EnqueueAsync(rows, cancellationToken).ConfigureAwait(false);
        string? last = null;
        for (var i = 0; i < rows.Length; i++)
        {
            if (results[i].Duplicate) continue;
            Diagnostics.InboxTelemetry.JobsEnqueued.Add(1, new KeyValuePair<string, object?>("queue", rows[i].Queue));
            if (!string.Equals(last, rows[i].Queue, StringComparison.Ordinal)) _signals.Set(last = rows[i].Queue);
        }

        return results;
    }

    private static void Validate(JobRequest job, int index, int count)
    {
        ArgumentNullException.ThrowIfNull(job);
        var at = count == 1 ? "The job" : $"Job [{index}]";
        if (string.IsNullOrWhiteSpace(job.Queue) || job.Queue.Length > MaxQueueLength)
            throw new ArgumentException($"{at} needs a queue name of 1 to {MaxQueueLength} characters.", nameof(job));
        if (job.Payload is null) throw new ArgumentException($"{at} needs a payload (use \"{{}}\" for none).", nameof(job));
        if (job.Key is { Length: 0 or > MaxKeyLength }) throw new ArgumentException($"{at}: Key must be null or 1 to {MaxKeyLength} characters.", nameof(job));
        if (job.DedupeKey is { Length: 0 or > MaxKeyLength }) throw new ArgumentException($"{at}: DedupeKey must be null or 1 to {MaxKeyLength} characters.", nameof(job));
        if (job.MaxAttempts is < 1) throw new ArgumentException($"{at}: MaxAttempts must be at least 1 (was {job.MaxAttempts}).", nameof(job));
    }

    public Task<JobInfo?> GetAsync(long id, CancellationToken cancellationToken = default) => _store.GetJobAsync(id, cancellationToken);

    public Task<IReadOnlyList<JobAttemptInfo>> GetAttemptsAsync(long id, CancellationToken cancellationToken = default) => _store.GetAttemptsAsync(id, cancellationToken);

    public Task<JobPage> ListAsync(JobQuery query, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        if (query.Limit is < 1 or > 1000) throw new ArgumentException($"Limit must be between 1 and 1000 (was {query.Limit}).", nameof(query));
        return _store.ListJobsAsync(query, cancellationToken);
    }

    public Task<IReadOnlyList<QueueStats>> GetStatsAsync(CancellationToken cancellationToken = default) => _store.GetStatsAsync(cancellationToken);

    public async Task<CancelJobResult> CancelAsync(long id, CancellationToken cancellationToken = default)
    {
        var result = await _store.CancelAsync(id, cancellationToken).ConfigureAwait(false);
        if (result == CancelJobResult.CancellationRequested) _running.TryCancel(id);
        else if (result == CancelJobResult.Canceled) _signals.SetAll(); // the job may have been the head of its key
        return result;
    }

    public async Task<bool> RequeueAsync(long id, CancellationToken cancellationToken = default)
    {
        var count = await _store.RequeueAsync(id, null, cancellationToken).ConfigureAwait(false);
        if (count > 0) _signals.SetAll();
        return count > 0;
    }

    public async Task<int> RequeueFailedAsync(JobQuery filter, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(filter);
        var count = await _store.RequeueAsync(null, filter with { Status = JobStatus.Failed }, cancellationToken).ConfigureAwait(false);
        if (count > 0) _signals.SetAll();
        return count;
    }

    public async Task<int> PurgeAsync(JobQuery filter, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(filter);
        if (filter.Status == JobStatus.Processing) throw new ArgumentException("Running jobs cannot be purged: cancel them first.", nameof(filter));
        var count = await _store.PurgeAsync(filter, cancellationToken).ConfigureAwait(false);
        if (count > 0) _signals.SetAll(); // a purged head lets its key move on
        return count;
    }

    public Task<int> ApplyRetentionAsync(CancellationToken cancellationToken = default) =>
        _store.DeleteFinishedAsync(_time.GetUtcNow() - _options.Retention, cancellationToken);
}
