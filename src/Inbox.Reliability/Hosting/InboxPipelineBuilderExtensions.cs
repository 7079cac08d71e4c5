using Inbox.Reliability.Capture;
using Inbox.Reliability.Dispatch;
using Inbox.Reliability.Ingest;
using Inbox.Reliability.Jobs;
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

        // The queues' settings follow the pipeline options as configured so far (every call's configure applied).
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
            builder.AddJobHandler<IngestHandler>(InboxQueues.Ingest, o => marker.Ingest = o);
            builder.AddJobHandler<DispatchHandler>(InboxQueues.Dispatch, o => marker.Dispatch = o);
        }

        if (configure is not null) marker.Configures.Add(configure);
        var current = new InboxPipelineOptions();
        foreach (var apply in marker.Configures) apply(current);
        marker.Ingest!.Concurrency = current.IngestConcurrency;
        marker.Dispatch!.Concurrency = current.DispatchConcurrency;
        marker.Dispatch.MaxAttempts = current.DispatchMaxAttempts;
        marker.Ingest.LeaseDuration = marker.Dispatch.LeaseDuration = current.LeaseDuration;
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
