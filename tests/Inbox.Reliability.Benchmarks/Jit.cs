using System.Diagnostics;

namespace Inbox.Reliability.Benchmarks;

/// <summary>The runtime's just-in-time compiler, as the warm-ups see it.</summary>
public static class Jit
{
    /// <summary>Waits until the runtime compiled no method for half a second (at most 10 s): the background compiler caught up.</summary>
    public static async Task SettledAsync()
    {
        using var tick = new PeriodicTimer(TimeSpan.FromMilliseconds(100));
        var deadline = Stopwatch.StartNew();
        var quiet = Stopwatch.StartNew();
        var compiled = System.Runtime.JitInfo.GetCompiledMethodCount();
        while (quiet.Elapsed < TimeSpan.FromMilliseconds(500) && deadline.Elapsed < TimeSpan.FromSeconds(10) && await tick.WaitForNextTickAsync())
        {
            var now = System.Runtime.JitInfo.GetCompiledMethodCount();
            if (now != compiled) quiet.Restart();
            compiled = now;
        }
    }
}
