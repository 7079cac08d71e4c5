using System.Diagnostics;
using System.Globalization;
using Inbox.Reliability.Jobs;

namespace Inbox.Reliability.Benchmarks;

/// <summary>Counts the burn-down's completions; shared by every (scoped) <see cref="NoopHandler"/>.</summary>
public sealed class BurnDownCounter(int target)
{
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _count;

    public int Count => Volatile.Read(ref _count);

    /// <summary>Completes when the handler has returned for <c>target</c> jobs.</summary>
    public Task Done => _done.Task;

    public void Increment()
    {
        if (Interlocked.Increment(ref _count) == target) _done.TrySetResult();
    }
}

/// <summary>The burn-down's handler: does nothing but count.</summary>
public sealed class NoopHandler(BurnDownCounter counter) : IJobHandler
{
    public Task HandleAsync(JobContext job, CancellationToken cancellationToken)
    {
        counter.Increment();
        return Task.CompletedTask;
    }
}

/// <summary>Enqueue-to-start latencies: the payload carries the <see cref="Stopwatch"/> timestamp taken just before the enqueue.</summary>
public sealed class LatencyRecorder(int target)
{
    private readonly double[] _ms = new double[target];
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _count;

    public Task Done => _done.Task;

    public static string Payload() => Stopwatch.GetTimestamp().ToString(CultureInfo.InvariantCulture);

    public void Record(string payload)
    {
        var elapsed = Stopwatch.GetElapsedTime(long.Parse(payload, CultureInfo.InvariantCulture));
        var index = Interlocked.Increment(ref _count) - 1;
        if (index >= _ms.Length) return;
        _ms[index] = elapsed.TotalMilliseconds;
        if (index == _ms.Length - 1) _done.TrySetResult();
    }

    public double[] Samples => _ms[..Math.Min(Volatile.Read(ref _count), _ms.Length)];
}

/// <summary>The latency queue's handler: records how long after its enqueue the job started.</summary>
public sealed class LatencyHandler(LatencyRecorder recorder) : IJobHandler
{
    public Task HandleAsync(JobContext job, CancellationToken cancellationToken)
    {
        recorder.Record(job.Payload);
        return Task.CompletedTask;
    }
}
