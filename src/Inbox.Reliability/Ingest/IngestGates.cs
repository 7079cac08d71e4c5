using System.Collections.Concurrent;

namespace Inbox.Reliability.Ingest;

/// <summary>One lock per provider and instance in this process: one ingest job at a time reads and stores an instance's webhooks.</summary>
internal sealed class IngestGates
{
    private readonly ConcurrentDictionary<(string Provider, string Instance), SemaphoreSlim> _gates = new();
    private int _held;

    /// <summary>True while an ingest job of this process holds a gate (counted by <see cref="Entered"/> and <see cref="Leaving"/>).</summary>
    public bool AnyHeld => Volatile.Read(ref _held) > 0;

    public void Entered() => Interlocked.Increment(ref _held);

    public void Leaving() => Interlocked.Decrement(ref _held);

    /// <summary>The lock of an instance (created on first use; instances are few and long-lived).</summary>
    public SemaphoreSlim For(string provider, string instance) =>
        _gates.GetOrAdd((provider.ToLowerInvariant(), instance), static _ => new SemaphoreSlim(1, 1));
}
