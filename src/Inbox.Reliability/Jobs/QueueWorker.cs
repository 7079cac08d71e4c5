using System.Collections.Concurrent;
using System.Diagnostics;
using Inbox.Reliability.Diagnostics;
using Inbox.Reliability.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Inbox.Reliability.Jobs;

/// <summary>
/// Runs one queue's jobs in this process: claims batches up to the free concurrency, runs each handler in its own
/// DI scope, extends leases by heartbeat, records outcomes, and on shutdown drains then releases what is left.
/// </summary>
internal sealed class QueueWorker : BackgroundService, IJobTaker
{
    /// <summary>How long a handler whose token was canceled may take to stop before it is abandoned.</summary>
    internal static readonly TimeSpan CancellationGrace = TimeSpan.FromSeconds(5);

    private static readonly TimeSpan MaxStorageBackoff = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan MaxRetryWakeDelay = TimeSpan.FromMinutes(1);

    private readonly JobHandlerRegistration _registration;
    private readonly JobHandlerOptions _options;
    private readonly IJobStore _store;
    private readonly IServiceScopeFactory _scopes;
    private readonly TimeProvider _time;
    private readonly QueueSignal _signal;
    private readonly QueueSignals _signals;
    private readonly RunningJobs _running;
    private readonly StartupGate _gate;
    private readonly InboxReliabilityOptions _global;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _slots;
    private readonly SemaphoreSlim _held;
    private readonly int _bufferSize;
    private readonly ConcurrentDictionary<long, RunningJob> _inFlight = new();
    private readonly CancellationTokenSource _hardStop = new();
    private readonly KeyValuePair<string, object?> _queueTag;
    private CancellationToken _stopping;

    public QueueWorker(
        JobHandlerRegistration registration,
        IJobStore store,
        IServiceScopeFactory scopes,
        TimeProvider time,
        QueueSignals signals,
        RunningJobs running,
        StartupGate gate,
        IOptions<InboxReliabilityOptions> global,
        ILoggerFactory loggers)
    {
        _registration = registration;
        _options = registration.Options;
        _store = store;
        _scopes = scopes;
        _time = time;
        _signals = signals;
        _signal = signals.For(registration.Queue);
        _running = running;
        _gate = gate;
        _global = global.Value;
        _logger = loggers.CreateLogger("Inbox.Reliability.Jobs." + registration.Queue);
        // Invalid values are reported by startup validation; clamp so construction never throws first.
        var slots = Math.Clamp(_options.Concurrency, 1, 1024);
        var held = slots + Math.Clamp(_options.Prefetch, 0, 10_000);
        _slots = new SemaphoreSlim(slots, slots);
        _held = new SemaphoreSlim(held, held);
        _bufferSize = held;
        _queueTag = new KeyValuePair<string, object?>("queue", registration.Queue);
    }

    private string Queue => _registration.Queue;

    internal int InFlightCount => _inFlight.Count;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await _gate.WaitAsync(stoppingToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        if (!_global.ProcessJobs) return; // an enqueue-only host: other hosts claim this queue's jobs
        _stopping = stoppingToken;
        using var heartbeatStop = new CancellationTokenSource();
        var heartbeats = RunHeartbeatsAsync(heartbeatStop.Token);
        _signals.AddTaker(Queue, this);
        try
        {
            await ClaimLoopAsync(stoppingToken).ConfigureAwait(false);
        }
        finally
        {
            _signals.RemoveTaker(Queue, this);
            await DrainAsync().ConfigureAwait(false);
            await heartbeatStop.CancelAsync().ConfigureAwait(false);
            await heartbeats.ConfigureAwait(false);
        }
    }

    private async Task ClaimLoopAsync(CancellationToken stoppingToken)
    {
        var idleWait = _options.MinPollInterval;
        var maxIdleWait = _store is IJobWakeupSource { BackstopPollInterval: { } backstop } && backstop > _options.MaxPollInterval ? backstop : _options.MaxPollInterval;
        var storageBackoff = TimeSpan.Zero;
        var backlog = false;
        while (!stoppingToken.IsCancellationRequested)
        {
            // Claim for every free handler slot plus the prefetch buffer, so the next jobs are in memory when a
            // handler finishes and claims stay off the handlers' critical path.
            try
            {
                await _held.WaitAsync(stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            // With a backlog (the last claim was full), wait until a quarter of the prefetch buffer is free: one claim of many
            // rows costs the storage far less than many claims of a few, and the handlers still have three quarters in hand
            // while the claim runs. (Waiting for half, the handlers of short jobs ran out before the claim came back:
            // 6.6% fewer jobs per second in the benchmark's burn-down, eight pairs on PostgreSQL.)
            var free = 1;
            var want = backlog ? Math.Clamp(_options.Prefetch / 4, 1, _options.BatchSize) : 1;
            try
            {
                for (; free < want; free++) await _held.WaitAsync(stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                _held.Release(free);
                return;
            }

            while (free < _options.BatchSize && _held.Wait(0)) free++;

            _signal.Reset();
            IReadOnlyList<ClaimedJob> jobs;
            try
            {
                jobs = await _store.ClaimAsync(Queue, free, _global.WorkerName, _options.LeaseDuration, stoppingToken).ConfigureAwait(false);
                storageBackoff = TimeSpan.Zero;
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                _held.Release(free);
                return;
            }
            catch (Exception ex)
            {
                _held.Release(free);
                storageBackoff = storageBackoff == TimeSpan.Zero ? TimeSpan.FromMilliseconds(100) : TimeSpan.FromTicks(Math.Min(storageBackoff.Ticks * 2, MaxStorageBackoff.Ticks));
                Log.StorageError(_logger, "claiming jobs", Queue, storageBackoff, ex);
                if (!await DelayAsync(storageBackoff, null, stoppingToken).ConfigureAwait(false)) return;
                continue;
            }

            if (jobs.Count < free) _held.Release(free - jobs.Count);
            foreach (var job in jobs) Start(job);
            backlog = jobs.Count == free;

            if (jobs.Count == 0)
            {
                if (!await DelayAsync(idleWait, _signal.Task, stoppingToken).ConfigureAwait(false)) return;
                idleWait = TimeSpan.FromTicks(Math.Min(idleWait.Ticks * 2, maxIdleWait.Ticks));
            }
            else if (jobs.Count < free)
            {
                // The queue had no more ready jobs: rather than an empty claim, wait for a signal (an enqueue or a
                // keyed job finishing in this process) or the shortest poll.
                idleWait = _options.MinPollInterval;
                if (!await DelayAsync(idleWait, _signal.Task, stoppingToken).ConfigureAwait(false)) return;
            }
            else
            {
                idleWait = _options.MinPollInterval;
            }
        }
    }

    /// <summary>Waits for the delay or the signal; false when stopping.</summary>
    private async Task<bool> DelayAsync(TimeSpan delay, Task? signal, CancellationToken stoppingToken)
    {
        using var delayCts = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        var delayTask = Task.Delay(delay, _time, delayCts.Token);
        if (signal is not null) await Task.WhenAny(delayTask, signal).ConfigureAwait(false);
        else await Task.WhenAny(delayTask).ConfigureAwait(false);
        await delayCts.CancelAsync().ConfigureAwait(false);
        return !stoppingToken.IsCancellationRequested;
    }

    string IJobTaker.Owner => _global.WorkerName;

    TimeSpan IJobTaker.LeaseDuration => _options.LeaseDuration;

    // Jobs held here (running or waiting for a slot) against the buffer's size; not the free permits, which a claim in
    // flight holds for a moment whatever it finds.
    int IJobTaker.Capacity => _stopping.IsCancellationRequested ? 0 : Math.Max(0, _bufferSize - _inFlight.Count);

    bool IJobTaker.TryTake(IReadOnlyList<ClaimedJob> jobs)
    {
        if (_stopping.IsCancellationRequested) return false;

        // Leased by the storage, not claimed here: each takes a place in the claim buffer when one is free (the claim loop
        // then claims that much less), else it waits for a handler slot beside the buffer.
        foreach (var job in jobs) Start(job, holdsClaim: _held.Wait(0));
        return true;
    }

    private void Start(ClaimedJob job, bool holdsClaim = true)
    {
        var running = new RunningJob(job, _time, _hardStop.Token) { HoldsClaim = holdsClaim };
        _inFlight[job.Lease.JobId] = running;
        _running.Add(job.Lease.JobId, () => running.Cancel(StopReason.CancelRequested));
        running.Completion = Task.Run(() => RunAsync(running));
    }

    private async Task RunAsync(RunningJob running)
    {
        var job = running.Job;
        var holdsSlot = false;
        var holdsClaim = running.HoldsClaim;
        try
        {
            try
            {
                await _slots.WaitAsync(_stopping).ConfigureAwait(false);
                holdsSlot = true;
            }
            catch (OperationCanceledException)
            {
                // Stopping before this prefetched job started: give it back untouched.
                running.Finishing = true;
                await RecordAsync(running, JobOutcome.Released).ConfigureAwait(false);
                return;
            }

            InboxTelemetry.JobsStarted.Add(1, _queueTag);
            var due = job.RunAt > job.CreatedAt ? job.RunAt : job.CreatedAt;
            InboxTelemetry.StartDelay.Record(Math.Max(0, (_time.GetUtcNow() - due).TotalSeconds), _queueTag);
            var started = _time.GetTimestamp();
            Exception? error;
            bool abandoned;
            using (var activity = InboxTelemetry.ActivitySource.StartActivity("inbox.job " + Queue, ActivityKind.Consumer))
            {
                activity?.SetTag("inbox.job.id", job.Lease.JobId);
                activity?.SetTag("inbox.job.attempt", job.Attempt);
                running.StartTimeout(_options.Timeout);
                (error, abandoned) = await InvokeHandlerAsync(running).ConfigureAwait(false);
                if (error is not null) activity?.SetStatus(ActivityStatusCode.Error, error.GetType().Name);
            }

            InboxTelemetry.JobDuration.Record(_time.GetElapsedTime(started).TotalSeconds, _queueTag);
            running.Finishing = true;

            // The handler is done: its slot goes to the next job now, while the outcome is written (outcomes of
            // many jobs share one commit). The lease stays held, and heartbeats cover it, until the outcome is stored.
            _slots.Release();
            if (holdsClaim) _held.Release();
            holdsSlot = holdsClaim = false;

            if (abandoned) Log.HandlerAbandoned(_logger, job.Lease.JobId, Queue, CancellationGrace);
            var outcome = Decide(running, error);
            if (outcome is null)
            {
                InboxTelemetry.LeasesLost.Add(1, _queueTag);
                Log.LeaseLost(_logger, job.Lease.JobId, Queue);
                return;
            }

            await RecordAsync(running, outcome.Value).ConfigureAwait(false);
        }
        finally
        {
            if (holdsSlot) _slots.Release();
            if (holdsClaim) _held.Release();
            _running.Remove(job.Lease.JobId);
            _inFlight.TryRemove(job.Lease.JobId, out _);
            running.Dispose();
        }
    }

    private async Task<(Exception? Error, bool Abandoned)> InvokeHandlerAsync(RunningJob running)
    {
        var job = running.Job;
        var context = new JobContext(job.Lease.JobId, job.Queue, job.Key, job.Payload, job.Attempt, job.MaxAttempts, job.DedupeKey, job.CreatedAt);
        var scope = _scopes.CreateAsyncScope();
        Task handlerTask;
        try
        {
            var handler = (IJobHandler)scope.ServiceProvider.GetRequiredService(_registration.HandlerType);
            handlerTask = handler.HandleAsync(context, running.Token);
        }
        catch (Exception ex)
        {
            await scope.DisposeAsync().ConfigureAwait(false);
            return (ex, false);
        }

        if (!handlerTask.IsCompleted)
        {
            var canceled = running.CanceledTask;
            var first = await Task.WhenAny(handlerTask, canceled).ConfigureAwait(false);
            if (first != handlerTask)
            {
                // The token fired: give the handler a grace to stop cooperatively, then abandon it.
                using var graceCts = new CancellationTokenSource();
                var grace = Task.Delay(CancellationGrace, _time, graceCts.Token);
                if (await Task.WhenAny(handlerTask, grace).ConfigureAwait(false) != handlerTask)
                {
                    _ = handlerTask.ContinueWith(
                        static (t, s) => { _ = t.Exception; return ((AsyncServiceScope)s!).DisposeAsync().AsTask(); },
                        scope,
                        CancellationToken.None,
                        TaskContinuationOptions.ExecuteSynchronously,
                        TaskScheduler.Default);
                    return (new TimeoutException("The handler did not stop after its cancellation token fired."), true);
                }

                await graceCts.CancelAsync().ConfigureAwait(false);
            }
        }

        try
        {
            await handlerTask.ConfigureAwait(false);
            return (null, false);
        }
        catch (Exception ex)
        {
            return (ex, false);
        }
        finally
        {
            await scope.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>What to record, or null when the lease is lost and nothing may be written.</summary>
    private JobOutcome? Decide(RunningJob running, Exception? error)
    {
        var job = running.Job;
        var reason = running.Reason;
        if (reason == StopReason.LeaseLost) return null;
        if (error is null) return _options.RemoveOnComplete ? JobOutcome.Removed : JobOutcome.Completed;
        if (error is JobSnoozedException snooze && reason == StopReason.None && !running.TimedOut) return new JobOutcome(JobOutcomeKind.Released, null, snooze.Until);

        switch (reason)
        {
            case StopReason.Shutdown:
                return JobOutcome.Released;
            case StopReason.CancelRequested:
                Log.JobCanceled(_logger, job.Lease.JobId, Queue);
                return new JobOutcome(JobOutcomeKind.Canceled, "Canceled while running.");
            case StopReason.None when running.TimedOut:
                Log.JobTimedOut(_logger, job.Lease.JobId, Queue, _options.Timeout);
                error = new TimeoutException($"The handler timed out after {_options.Timeout}.", error);
                break;
        }

        var message = Describe(error);
        if (IsFatal(error))
        {
            Log.JobFailed(_logger, job.Lease.JobId, Queue, job.Attempt, job.MaxAttempts, "fatal error", error);
            return new JobOutcome(JobOutcomeKind.Failed, message);
        }

        if (job.Attempt >= job.MaxAttempts)
        {
            Log.JobFailed(_logger, job.Lease.JobId, Queue, job.Attempt, job.MaxAttempts, "out of attempts", error);
            return new JobOutcome(JobOutcomeKind.Failed, message);
        }

        var backoff = _options.Backoff.DelayFor(job.Attempt, Random.Shared.NextDouble());
        if (error is JobRetryLaterException later && later.Delay > backoff) backoff = later.Delay;
        var retryAt = _time.GetUtcNow() + backoff;
        Log.JobRetrying(_logger, job.Lease.JobId, Queue, job.Attempt, job.MaxAttempts, retryAt, error);
        return new JobOutcome(JobOutcomeKind.Retry, message, retryAt);
    }

    private bool IsFatal(Exception error)
    {
        if (error is FatalJobException) return true;
        var type = error.GetType();
        foreach (var fatal in _options.FatalExceptions)
        {
            if (fatal.IsAssignableFrom(type)) return true;
        }

        return false;
    }

    private static string Describe(Exception error)
    {
        // Type and message only: stack traces are for logs, and messages never carry payloads here.
        var text = error.GetType().FullName + ": " + error.Message;
        return text.Length <= 4000 ? text : text[..4000];
    }

    private async Task RecordAsync(RunningJob running, JobOutcome outcome)
    {
        var job = running.Job;
        bool recorded;
        try
        {
            recorded = await _store.FinishAsync(job.Lease, outcome, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            Log.OutcomeNotRecorded(_logger, outcome.Kind, job.Lease.JobId, Queue, ex);
            return;
        }

        if (!recorded)
        {
            InboxTelemetry.LeasesLost.Add(1, _queueTag);
            Log.LeaseLost(_logger, job.Lease.JobId, Queue);
            return;
        }

        switch (outcome.Kind)
        {
            case JobOutcomeKind.Completed or JobOutcomeKind.Removed: InboxTelemetry.JobsCompleted.Add(1, _queueTag); break;
            case JobOutcomeKind.Retry: InboxTelemetry.JobsRetried.Add(1, _queueTag); break;
            case JobOutcomeKind.Failed: InboxTelemetry.JobsFailed.Add(1, _queueTag); break;
            case JobOutcomeKind.Canceled: InboxTelemetry.JobsCanceled.Add(1, _queueTag); break;
        }

        // A keyed job that left the key lets the next job of that key become claimable.
        if (job.Key is not null && outcome.Kind != JobOutcomeKind.Retry) _signal.Set();
        if (outcome.Kind is JobOutcomeKind.Retry or JobOutcomeKind.Released) WakeAt(outcome.RetryAt);
    }

    /// <summary>Wakes the worker when a retry is due, so an idle worker does not wait for its next poll to run it.</summary>
    private void WakeAt(DateTimeOffset? due)
    {
        if (due is null) return;
        var delay = due.Value - _time.GetUtcNow();
        if (delay <= TimeSpan.Zero || delay > MaxRetryWakeDelay) return; // longer delays are left to polling
        ITimer? timer = null;
        timer = _time.CreateTimer(_ =>
        {
            _signal.Set();
            timer?.Dispose();
        }, null, delay, Timeout.InfiniteTimeSpan);
    }

    private async Task RunHeartbeatsAsync(CancellationToken stop)
    {
        var interval = _options.EffectiveHeartbeatInterval;
        // A periodic timer keeps a steady cadence however long one renewal takes.
        using var timer = new PeriodicTimer(interval, _time);
        while (!stop.IsCancellationRequested)
        {
            try
            {
                if (!await timer.WaitForNextTickAsync(stop).ConfigureAwait(false)) return;
            }
            catch (OperationCanceledException)
            {
                return;
            }

            var running = _inFlight.Values.Where(r => !r.Finishing).ToList();
            if (running.Count == 0) continue;
            IReadOnlyList<LeaseRenewal> renewals;
            try
            {
                renewals = await _store.ExtendLeasesAsync(running.Select(r => r.Job.Lease).ToList(), _options.LeaseDuration, stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                Log.StorageError(_logger, "extending leases", Queue, interval, ex);
                continue;
            }

            for (var i = 0; i < running.Count; i++)
            {
                if (running[i].Finishing) continue;
                if (renewals[i] == LeaseRenewal.Lost) running[i].Cancel(StopReason.LeaseLost);
                else if (renewals[i] == LeaseRenewal.CancelRequested) running[i].Cancel(StopReason.CancelRequested);
            }
        }
    }

    /// <summary>Shutdown: let running handlers finish within the grace period, then cancel them and release their leases.</summary>
    private async Task DrainAsync()
    {
        var pending = _inFlight.Values.Select(r => r.Completion).Where(t => t is not null).Cast<Task>().ToList();
        if (pending.Count == 0) return;
        using (var graceCts = new CancellationTokenSource())
        {
            var grace = Task.Delay(_global.ShutdownGracePeriod, _time, graceCts.Token);
            if (await Task.WhenAny(Task.WhenAll(pending), grace).ConfigureAwait(false) != grace)
            {
                await graceCts.CancelAsync().ConfigureAwait(false);
                return;
            }
        }

        var left = _inFlight.Values.ToList();
        Log.JobsReleased(_logger, left.Count, Queue);
        foreach (var running in left) running.Cancel(StopReason.Shutdown);
        await _hardStop.CancelAsync().ConfigureAwait(false);
        var stillRunning = left.Select(r => r.Completion).Where(t => t is not null).Cast<Task>().ToList();
        using var abandonCts = new CancellationTokenSource();
        var abandon = Task.Delay(CancellationGrace + TimeSpan.FromSeconds(1), _time, abandonCts.Token);
        if (await Task.WhenAny(Task.WhenAll(stillRunning), abandon).ConfigureAwait(false) != abandon)
        {
            await abandonCts.CancelAsync().ConfigureAwait(false);
        }
    }

    public override void Dispose()
    {
        _hardStop.Dispose();
        _slots.Dispose();
        _held.Dispose();
        base.Dispose();
    }
}

internal enum StopReason
{
    None = 0,
    CancelRequested = 1,
    LeaseLost = 2,
    Shutdown = 3,
}

/// <summary>A job claimed by this worker: its token, why it was stopped, and its task.</summary>
internal sealed class RunningJob : IDisposable
{
    private readonly CancellationTokenSource _cts = new();
    private readonly CancellationTokenRegistration _hardStop;
    private readonly TaskCompletionSource _canceled = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TimeProvider _time;
    private ITimer? _timeout;
    private int _reason;
    private volatile bool _timedOut;

    /// <summary>False for a job handed over by the storage while the claim buffer was full: it holds no place in it.</summary>
    public bool HoldsClaim { get; init; } = true;

    public RunningJob(ClaimedJob job, TimeProvider time, CancellationToken hardStop)
    {
        Job = job;
        _time = time;
        _cts.Token.UnsafeRegister(static s => ((TaskCompletionSource)s!).TrySetResult(), _canceled);
        _hardStop = hardStop.UnsafeRegister(static s => ((RunningJob)s!).Cancel(StopReason.Shutdown), this);
    }

    public ClaimedJob Job { get; }

    public CancellationToken Token => _cts.Token;

    public Task CanceledTask => _canceled.Task;

    public Task? Completion { get; set; }

    public volatile bool Finishing;

    public StopReason Reason => (StopReason)Volatile.Read(ref _reason);

    /// <summary>True when the attempt's timeout fired its token.</summary>
    public bool TimedOut => _timedOut && Reason == StopReason.None;

    /// <summary>Starts the attempt's timeout, from when the handler starts (not from the claim).</summary>
    public void StartTimeout(TimeSpan timeout)
    {
        if (timeout == Timeout.InfiniteTimeSpan) return;
        _timeout = _time.CreateTimer(static s =>
        {
            var job = (RunningJob)s!;
            job._timedOut = true;
            job.CancelToken();
        }, this, timeout, Timeout.InfiniteTimeSpan);
    }

    public void Cancel(StopReason reason)
    {
        Interlocked.CompareExchange(ref _reason, (int)reason, (int)StopReason.None);
        CancelToken();
    }

    private void CancelToken()
    {
        try
        {
            _cts.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // Already finished.
        }
    }

    public void Dispose()
    {
        _timeout?.Dispose();
        _hardStop.Dispose();
        _cts.Dispose();
    }
}
