using System.Diagnostics;

namespace Inbox.Reliability.Conformance;

/// <summary>Waits on conditions with a timeout, never a fixed sleep for work.</summary>
public static class Eventually
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Checks <paramref name="condition"/> every few milliseconds until it holds; fails naming <paramref name="what"/> after the timeout.
    /// <paramref name="between"/> runs between checks (for example to advance a manual clock).
    /// </summary>
    public static async Task TrueAsync(Func<Task<bool>> condition, string what, TimeSpan? timeout = null, Action? between = null)
    {
        var limit = Stopwatch.StartNew();
        var max = timeout ?? DefaultTimeout;
        using var poll = new PeriodicTimer(TimeSpan.FromMilliseconds(5));
        while (true)
        {
            if (await condition()) return;
            if (limit.Elapsed > max) throw new TimeoutException($"Timed out after {max} waiting for: {what}");
            between?.Invoke();
            await poll.WaitForNextTickAsync();
        }
    }

    public static Task TrueAsync(Func<bool> condition, string what, TimeSpan? timeout = null, Action? between = null) =>
        TrueAsync(() => Task.FromResult(condition()), what, timeout, between);

    /// <summary>Awaits a task, failing after the timeout.</summary>
    public static async Task<T> Within<T>(Task<T> task, string what, TimeSpan? timeout = null)
    {
        try
        {
            return await task.WaitAsync(timeout ?? DefaultTimeout);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"Timed out waiting for: {what}");
        }
    }
}
