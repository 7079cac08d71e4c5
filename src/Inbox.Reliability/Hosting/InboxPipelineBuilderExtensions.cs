using Inbox.Reliability.Capture;
using Inbox.Reliability.Dispatch;
using Inbox.Reliability.Ingest;
using Inbox.Reliability.Jobs;
using Inbox.Reliability.Media;
using Inbox.Reliability.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Inbox.Reliability;

/// <summary>The webhook pipeline (capture, ingest, dispatch) on <see cref="IInboxReliabilityBuilder"/>.</summary>
public static class InboxPipelineBuilderExtensions
{
    /// <summary>
    /// Adds the webhook pipeline: <see cref="IInboxCapture"/>, the ingest queue (raw webhooks to events, per instance in
    /// arrival order) and the dispatch queue (events to <see cref="IInboxEventHandler"/>s, per chat in order). Provider
    /// registrations (<c>AddZApi</c>, <c>AddMetaCloudApi</c>...) call it; calling it again only applies <paramref name="configure"/>.
    /// </summary>
    public static IInboxReliabilityBuilder AddWebhookPipeline(this IInboxReliabilityBuilder builder, Action<InboxPipelineOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var options = builder.Services.AddOptions<InboxPipelineOptions>();
        if (configure is not null) options.Configure(configure);

        // One marker holds the queues' options, so later calls (and UseMediaStore) can re-apply every configure.
        var marker = (PipelineMarker?)builder.Services.FirstOrDefault(d => d.ServiceType == typeof(PipelineMarker))?.ImplementationInstance;
        if (marker is null)
        {
            marker = new PipelineMarker();
            builder.Services.AddSingleton(marker);
            builder.Services.AddSingleton<IInboxConfigurationValidator, PipelineValidator>();
            builder.Services.TryAddSingleton<IInboxCapture>(sp => new InboxCapture(
                sp.GetService<IInboxStore>() ?? throw PipelineValidator.NoInboxStore(sp),
                sp.GetServices<Events.IWebhookProvider>(),
                sp.GetRequiredService<IOptions<InboxPipelineOptions>>(),
                sp.GetRequiredService<TimeProvider>(),
                sp.GetRequiredService<QueueSignals>(),
                sp.GetRequiredService<ILogger<InboxCapture>>()));
            builder.Services.TryAddSingleton<IngestGates>();
            builder.AddJobHandler<IngestHandler>(InboxQueues.Ingest, o => marker.Ingest = o);
            builder.AddJobHandler<DispatchHandler>(InboxQueues.Dispatch, o => marker.Dispatch = o);
        }

        if (configure is not null) marker.Configures.Add(configure);
        marker.Apply(builder.Services);
        return builder;
    }

    /// <summary>
    /// For storage packages: the pipeline settings that suit the storage, applied before the host's own
    /// <c>AddWebhookPipeline(o => ...)</c> (which wins), whichever is called first.
    /// </summary>
    internal static void UsePipelineStorageDefaults(this IInboxReliabilityBuilder builder, PipelineStorageDefaults defaults)
    {
        builder.Services.RemoveAll<PipelineStorageDefaults>();
        builder.Services.AddSingleton(defaults);
        var marker = (PipelineMarker?)builder.Services.FirstOrDefault(d => d.ServiceType == typeof(PipelineMarker))?.ImplementationInstance;
        marker?.Apply(builder.Services);
    }

    /// <summary>
    /// Turns media downloads on (called by <see cref="MediaStoreBuilderExtensions.UseMediaStore"/>): each inbound message
    /// with media gets a download job (queue <c>inbox.media</c>) that streams the file from its provider into the store,
    /// and dispatch holds the chat behind it for up to <c>Media.DispatchWait</c>.
    /// </summary>
    internal static IInboxReliabilityBuilder AddMediaDownloads(this IInboxReliabilityBuilder builder)
    {
        builder.AddWebhookPipeline();
        var marker = (PipelineMarker)builder.Services.First(d => d.ServiceType == typeof(PipelineMarker)).ImplementationInstance!;
        if (marker.Media is null) builder.AddJobHandler<MediaDownloadHandler>(InboxQueues.Media, o => marker.Media = o);
        marker.Apply(builder.Services);
        return builder;
    }

    /// <summary>Adds a handler of inbound events (several may be added; each gets every event, in registration order).</summary>
    public static IInboxReliabilityBuilder AddEventHandler<THandler>(this IInboxReliabilityBuilder builder)
        where THandler : class, IInboxEventHandler
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.AddWebhookPipeline();
        builder.Services.TryAddEnumerable(ServiceDescriptor.Scoped<IInboxEventHandler, THandler>());
        return builder;
    }

    /// <summary>
    /// Forwards every inbound event to a URL as a signed POST (Standard Webhooks headers), in per-chat order, retried with
    /// backoff until the URL answers 2xx. Runs beside any <see cref="IInboxEventHandler"/>s.
    /// </summary>
    public static IInboxReliabilityBuilder AddHttpForwarder(this IInboxReliabilityBuilder builder, Action<HttpForwarderOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        builder.Services.AddOptions<HttpForwarderOptions>().Configure(configure);
        builder.Services.TryAddSingleton<HttpForwarderClient>();
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IInboxConfigurationValidator, HttpForwarderValidator>());
        return builder.AddEventHandler<HttpForwarder>();
    }

    private sealed class HttpForwarderValidator(IOptions<HttpForwarderOptions> options) : IInboxConfigurationValidator
    {
        public IEnumerable<string> Validate() => options.Value.Validate();
    }

    private sealed class PipelineMarker
    {
        public List<Action<InboxPipelineOptions>> Configures { get; } = new();

        public JobHandlerOptions? Ingest { get; set; }

        public JobHandlerOptions? Dispatch { get; set; }

        public JobHandlerOptions? Media { get; set; }

        /// <summary>
        /// The queues' settings follow the pipeline options as configured so far: the storage's defaults, then every call's
        /// configure.
        /// </summary>
        public void Apply(IServiceCollection services)
        {
            var current = new InboxPipelineOptions();
            var defaults = (PipelineStorageDefaults?)services.LastOrDefault(d => d.ServiceType == typeof(PipelineStorageDefaults))?.ImplementationInstance;
            if (defaults?.DispatchConcurrency is { } dispatchConcurrency) current.DispatchConcurrency = dispatchConcurrency;
            foreach (var apply in Configures) apply(current);
            Ingest!.Concurrency = current.IngestConcurrency;
            Dispatch!.Concurrency = current.DispatchConcurrency;
            Dispatch.MaxAttempts = current.DispatchMaxAttempts;
            Ingest.LeaseDuration = Dispatch.LeaseDuration = current.LeaseDuration;
            if (Media is null) return;
            Media.Concurrency = current.Media.Concurrency;
            Media.MaxAttempts = current.Media.MaxAttempts;
            Media.Timeout = current.Media.AttemptTimeout;
            Media.LeaseDuration = current.LeaseDuration;
            Media.Prefetch = current.Media.Concurrency;
            Media.Backoff.Base = current.Media.Backoff.Base;
            Media.Backoff.Factor = current.Media.Backoff.Factor;
            Media.Backoff.Cap = current.Media.Backoff.Cap;
            Media.Backoff.Jitter = current.Media.Backoff.Jitter;
        }
    }

    private sealed class PipelineValidator(IServiceProvider services, IOptions<InboxPipelineOptions> options) : IInboxConfigurationValidator
    {
        internal static InvalidOperationException NoInboxStore(IServiceProvider services) => new(
            $"The storage configured ({services.GetService<InboxStorageRegistration>()?.Method ?? "none"}) does not support the webhook pipeline; use UseSqlite(...) or another storage that does.");

        public IEnumerable<string> Validate()
        {
            foreach (var error in options.Value.Validate()) yield return error;
            if (services.GetService<InboxStorageRegistration>() is not null && services.GetService<IInboxStore>() is null) yield return NoInboxStore(services).Message;
            if (!services.GetServices<Events.IWebhookProvider>().Any())
                yield return "AddWebhookPipeline: no webhook provider is registered; add one, for example .AddZApi(o => o.WebhookSecret = \"...\") or .AddMetaCloudApi(o => o.AppSecret = \"...\").";
        }
    }
}

/// <summary>Pipeline settings a storage package prefers (see <c>UsePipelineStorageDefaults</c>); null keeps the general default.</summary>
internal sealed class PipelineStorageDefaults
{
    public int? DispatchConcurrency { get; init; }
}
