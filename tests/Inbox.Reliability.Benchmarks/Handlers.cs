using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using Inbox.Reliability.Diagnostics;
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

/// <summary>
/// Counts the completions of one queue that storage has recorded, from the library's <c>inbox.jobs.completed</c> metric
/// (added once a job's outcome is committed), as a host's metrics pipeline would see them: the burn-down ends when the
/// last one is stored, and nothing polls the database meanwhile.
/// </summary>
public sealed class RecordedCompletions : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly string _queue;
    private readonly long _target;
    private long _count;

    public RecordedCompletions(string queue, long target)
    {
        _queue = queue;
        _target = target;
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == InboxTelemetry.Name && instrument.Name == "inbox.jobs.completed") listener.EnableMeasurementEvents(instrument);
        };
        _listener.SetMeasurementEventCallback<long>(OnMeasurement);
        _listener.Start();
    }

    /// <summary>Completes when storage has recorded the target number of completions of the queue.</summary>
    public Task Done => _done.Task;

    public long Count => Interlocked.Read(ref _count);

    private void OnMeasurement(Instrument instrument, long value, ReadOnlySpan<KeyValuePair<string, object?>> tags, object? state)
    {
        foreach (var tag in tags)
        {
            if (tag.Key != "queue" || !_queue.Equals(tag.Value as string, StringComparison.Ordinal)) continue;
            if (Interlocked.Add(ref _count, value) >= _target) _done.TrySetResult();
            return;
        }
    }

    public void Dispose() => _listener.Dispose();
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
