using System.Collections.Concurrent;
using Inbox.Reliability.Storage;

namespace Inbox.Reliability.Jobs;

/// <summary>In-process wake-up: an enqueue or a finished keyed job in this process wakes the queue's idle worker at once.</summary>
internal sealed class QueueSignals
{
    private readonly ConcurrentDictionary<string, QueueSignal> _signals = new(StringComparer.Ordinal);

    public QueueSignal For(string queue) => _signals.GetOrAdd(queue, static _ => new QueueSignal());

    public void Set(string queue)
    {
        if (_signals.TryGetValue(queue, out var signal)) signal.Set();
    }

    public void SetAll()
    {
        foreach (var signal in _signals.Values) signal.Set();
    }

    private readonly ConcurrentDictionary<string, IJobTaker> _takers = new(StringComparer.Ordinal);

    /// <summary>Registers the worker of <paramref name="queue"/> running in this process (from its start until it stops).</summary>
    public void AddTaker(string queue, IJobTaker taker) => _takers[queue] = taker;

    public void RemoveTaker(string queue, IJobTaker taker) => _takers.TryRemove(KeyValuePair.Create(queue, taker));

    /// <summary>The worker of <paramref name="queue"/> running in this process, or null.</summary>
    public IJobTaker? TakerOf(string queue) => _takers.GetValueOrDefault(queue);
}

/// <summary>
/// A queue's worker in this process, taking jobs that a storage leased to it while writing them (a storage may enqueue a
/// job that can start at once already leased to this process's worker, and hand it over after its commit, instead of
/// waking the worker to claim it).
/// </summary>
internal interface IJobTaker
{
    /// <summary>The lease owner to write (the process's worker name).</summary>
    string Owner { get; }

    /// <summary>The lease to give the jobs.</summary>
    TimeSpan LeaseDuration { get; }

    /// <summary>
    /// How many jobs it can start now (free places in its claim buffer). A storage leases it no more than that: the rest
    /// wait for a claim, by this process or another, so a busy process does not hold work other processes could do.
    /// </summary>
    int Capacity { get; }

    /// <summary>
    /// Starts the jobs, leased to <see cref="Owner"/> and committed. False when the worker is stopping: the caller then
    /// releases them (or they return to pending once their leases expire).
    /// </summary>
    bool TryTake(IReadOnlyList<ClaimedJob> jobs);
}

/// <summary>A resettable one-shot signal. Reset before looking for work, then await <see cref="Task"/>: a Set in between is never lost.</summary>
internal sealed class QueueSignal
{
    private TaskCompletionSource _tcs = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task Task => Volatile.Read(ref _tcs).Task;

    public void Set() => Volatile.Read(ref _tcs).TrySetResult();

    public void Reset()
    {
        var current = Volatile.Read(ref _tcs);
        if (current.Task.IsCompleted) Interlocked.CompareExchange(ref _tcs, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously), current);
    }
}

/// <summary>Jobs running in this process, so a cancel reaches the handler at once rather than at the next heartbeat.</summary>
internal sealed class RunningJobs
{
    private readonly ConcurrentDictionary<long, Action> _cancels = new();

    public void Add(long id, Action cancel) => _cancels[id] = cancel;

    public void Remove(long id) => _cancels.TryRemove(id, out _);

    public bool TryCancel(long id)
    {
        if (!_cancels.TryGetValue(id, out var cancel)) return false;
        cancel();
        return true;
    }
}

/// <summary>Completed once storage is migrated and validated; workers wait on it before their first claim.</summary>
internal sealed class StartupGate
{
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task WaitAsync(CancellationToken cancellationToken) => _ready.Task.WaitAsync(cancellationToken);

    public void Open() => _ready.TrySetResult();

    public void Fail(Exception exception) => _ready.TrySetException(exception);
}
