using Inbox.Reliability.Storage;
using Microsoft.Extensions.DependencyInjection;

namespace Inbox.Reliability.Conformance;

/// <summary>What a storage provider's tests supply to close the conformance suite: a fresh, empty storage per test.</summary>
public interface IStorageUnderTest : IAsyncDisposable
{
    /// <summary>Configures the builder to use a fresh, empty storage (a new file, a new schema...).</summary>
    void Configure(IInboxReliabilityBuilder builder);
}

/// <summary>A store built the way a host builds it, through <c>AddInboxReliability</c>, on a manual clock.</summary>
public sealed class StoreHarness : IAsyncDisposable
{
    private readonly ServiceProvider _services;

    private StoreHarness(ServiceProvider services, ManualTimeProvider time)
    {
        _services = services;
        Time = time;
        Store = services.GetRequiredService<IJobStore>();
        Queue = services.GetRequiredService<Jobs.IJobQueue>();
    }

    public ManualTimeProvider Time { get; }

    public IJobStore Store { get; }

    public Jobs.IJobQueue Queue { get; }

    public static async Task<StoreHarness> CreateAsync(IStorageUnderTest storage, Action<InboxReliabilityOptions>? configure = null)
    {
        var time = new ManualTimeProvider();
        var services = new ServiceCollection();
        services.AddLogging();
        var builder = services.AddInboxReliability(configure).UseTimeProvider(time);
        storage.Configure(builder);
        var provider = services.BuildServiceProvider();
        var harness = new StoreHarness(provider, time);
        await harness.Store.MigrateAsync();
        return harness;
    }

    public ValueTask DisposeAsync() => _services.DisposeAsync();
}
