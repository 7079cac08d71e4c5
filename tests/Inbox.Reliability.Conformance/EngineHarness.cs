using Inbox.Reliability.Jobs;
using Inbox.Reliability.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Inbox.Reliability.Conformance;

/// <summary>The script a test's handler runs.</summary>
public sealed class HandlerScript(Func<JobContext, CancellationToken, Task> run)
{
    public Func<JobContext, CancellationToken, Task> Run { get; } = run;
}

/// <summary>A handler that runs the test's script.</summary>
public sealed class ScriptedHandler(HandlerScript script) : IJobHandler
{
    public Task HandleAsync(JobContext job, CancellationToken cancellationToken) => script.Run(job, cancellationToken);
}

/// <summary>A real generic host running the engine on the storage under test, on a manual clock.</summary>
public sealed class EngineHarness : IAsyncDisposable
{
    public const string QueueName = "work";

    private bool _stopped;

    private EngineHarness(IHost host, ManualTimeProvider time)
    {
        Host = host;
        Time = time;
        Queue = host.Services.GetRequiredService<IJobQueue>();
        Store = host.Services.GetRequiredService<IJobStore>();
    }

    public IHost Host { get; }

    public ManualTimeProvider Time { get; }

    public IJobQueue Queue { get; }

    public IJobStore Store { get; }

    /// <summary>Builds the host; call <see cref="StartAsync"/> to run it.</summary>
    public static EngineHarness Build(
        IStorageUnderTest storage,
        Func<JobContext, CancellationToken, Task> handler,
        Action<JobHandlerOptions>? configure = null,
        Action<InboxReliabilityOptions>? global = null,
        ManualTimeProvider? time = null)
    {
        time ??= new ManualTimeProvider();
        var builder = Microsoft.Extensions.Hosting.Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Services.AddLogging();
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromMinutes(1));
        builder.Services.AddSingleton(new HandlerScript(handler));
        var inbox = builder.Services.AddInboxReliability(o =>
        {
            o.WorkerName = "test-worker";
            global?.Invoke(o);
        }).UseTimeProvider(time);
        storage.Configure(inbox);
        inbox.AddJobHandler<ScriptedHandler>(QueueName, o =>
        {
            o.MinPollInterval = TimeSpan.FromMilliseconds(100);
            o.MaxPollInterval = TimeSpan.FromMilliseconds(100);
            // Tests move the clock in big steps while real work runs; a lease that could expire in between would make
            // them flaky. Tests of leases set their own.
            o.LeaseDuration = TimeSpan.FromMinutes(10);
            configure?.Invoke(o);
        });
        return new EngineHarness(builder.Build(), time);
    }

    public static async Task<EngineHarness> StartAsync(
        IStorageUnderTest storage,
        Func<JobContext, CancellationToken, Task> handler,
        Action<JobHandlerOptions>? configure = null,
        Action<InboxReliabilityOptions>? global = null)
    {
        var harness = Build(storage, handler, configure, global);
        await harness.StartAsync();
        return harness;
    }

    public Task StartAsync() => Host.StartAsync();

    public Task<EnqueueResult> Enqueue(string payload = "{}", string? key = null, string? dedupe = null, int? maxAttempts = null) =>
        Queue.EnqueueAsync(new JobRequest(QueueName, payload) { Key = key, DedupeKey = dedupe, MaxAttempts = maxAttempts });

    public async Task<JobInfo> Job(long id) => (await Queue.GetAsync(id))!;

    /// <summary>Waits until the job reaches the status, advancing the clock by <paramref name="step"/> between checks when given.</summary>
    public Task WaitForStatus(long id, JobStatus status, TimeSpan? step = null) =>
        Eventually.TrueAsync(async () => (await Queue.GetAsync(id))?.Status == status, $"job {id} to be {status}",
            between: step is { } s ? () => Time.Advance(s) : null);

    /// <summary>Stops the host, advancing the clock while it drains so grace periods elapse.</summary>
    public async Task StopAsync(TimeSpan? step = null)
    {
        if (_stopped) return;
        _stopped = true;
        var stop = Host.StopAsync();
        await Eventually.TrueAsync(() => stop.IsCompleted, "the host to stop", between: () => Time.Advance(step ?? TimeSpan.FromMilliseconds(500)));
        await stop;
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        Host.Dispose();
    }
}
