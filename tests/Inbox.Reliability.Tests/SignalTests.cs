using Inbox.Reliability.Jobs;
using Inbox.Reliability.Storage;

namespace Inbox.Reliability.Tests;

public sealed class SignalTests
{
    [Fact]
    public void A_set_between_reset_and_wait_is_not_lost()
    {
        var signal = new QueueSignal();
        signal.Reset();
        signal.Set();
        Assert.True(signal.Task.IsCompleted);
        signal.Reset();
        Assert.False(signal.Task.IsCompleted);
    }

    [Fact]
    public void Signals_are_per_queue()
    {
        var signals = new QueueSignals();
        var a = signals.For("a");
        var b = signals.For("b");
        signals.Set("a");
        Assert.True(a.Task.IsCompleted);
        Assert.False(b.Task.IsCompleted);
        signals.SetAll();
        Assert.True(b.Task.IsCompleted);
    }

    [Fact]
    public void The_idempotency_key_is_the_dedupe_key_or_derived_from_the_id()
    {
        var now = DateTimeOffset.UnixEpoch;
        Assert.Equal("msg-1", new JobContext(7, "q", null, "{}", 2, 3, "msg-1", now).IdempotencyKey);
        Assert.Equal("job-7", new JobContext(7, "q", null, "{}", 2, 3, null, now).IdempotencyKey);
    }

    [Fact]
    public void Stats_fold_rows_per_queue_in_queue_order()
    {
        var stats = StatsBuilder.Build([("b", 0, 2), ("a", 2, 5), ("a", 3, 1), ("b", 1, 1), ("a", 4, 3)]);
        Assert.Equal(["a", "b"], stats.Select(s => s.Queue));
        Assert.Equal((0L, 5L, 1L, 3L), (stats[0].Pending, stats[0].Completed, stats[0].Failed, stats[0].Canceled));
        Assert.Equal((2L, 1L), (stats[1].Pending, stats[1].Processing));
    }
}
