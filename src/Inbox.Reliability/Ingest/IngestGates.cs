using System.Collections.Concurrent;

namespace Inbox.Reliability.Ingest;

/// <summary>One lock per provider and instance in this process: one ingest job at a time reads and stores an instance's webhooks.</summary>
internal sealed class IngestGates
{
    private readonly ConcurrentDictionary<(string Provider, string Instance), SemaphoreSlim> _gates = new();

    /// <summary>The lock of an instance (created on first use; instances are few and long-lived).</summary>
    public SemaphoreSlim For(string provider, string instance) =>
        _gates.GetOrAdd((provider.ToLowerInvariant(), instance), static _ => new SemaphoreSlim(1, 1));
}
