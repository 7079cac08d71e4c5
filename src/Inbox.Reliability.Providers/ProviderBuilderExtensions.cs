using Inbox.Reliability.Events;
using Inbox.Reliability.Providers;
using Inbox.Reliability.Providers.Evolution;
using Inbox.Reliability.Providers.Meta;
using Inbox.Reliability.Providers.WApi;
using Inbox.Reliability.Providers.Waha;
using Inbox.Reliability.Providers.ZApi;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Inbox.Reliability;

/// <summary>
/// WhatsApp provider adapters on <see cref="IInboxReliabilityBuilder"/>. Each registers an <see cref="IWebhookProvider"/>
/// singleton (once, however often it is called; every call's <c>configure</c> is applied) and checks its options at
/// startup with the rest of the configuration. Options can also be bound with
/// <c>services.Configure&lt;ZApiOptions&gt;(configuration.GetSection(…))</c>.
/// </summary>
public static class ProviderBuilderExtensions
{
    /// <summary>Adds the Meta WhatsApp Cloud API adapter (provider name <c>meta</c>): signature check, <c>hub.challenge</c> handshake, batches.</summary>
    public static IInboxReliabilityBuilder AddMetaCloudApi(this IInboxReliabilityBuilder builder, Action<MetaCloudApiOptions>? configure = null) =>
        Add<MetaCloudApiOptions, MetaCloudApiWebhookProvider, MetaCloudApiOptionsValidator>(builder, configure);

    /// <summary>Adds the Z-API adapter (provider name <c>zapi</c>).</summary>
    public static IInboxReliabilityBuilder AddZApi(this IInboxReliabilityBuilder builder, Action<ZApiOptions>? configure = null) =>
        Add<ZApiOptions, ZApiWebhookProvider, ZApiOptionsValidator>(builder, configure);

    /// <summary>Adds the Evolution API adapter (provider name <c>evolution</c>).</summary>
    public static IInboxReliabilityBuilder AddEvolutionApi(this IInboxReliabilityBuilder builder, Action<EvolutionApiOptions>? configure = null) =>
        Add<EvolutionApiOptions, EvolutionApiWebhookProvider, EvolutionApiOptionsValidator>(builder, configure);

    /// <summary>Adds the WAHA adapter (provider name <c>waha</c>).</summary>
    public static IInboxReliabilityBuilder AddWaha(this IInboxReliabilityBuilder builder, Action<WahaOptions>? configure = null) =>
        Add<WahaOptions, WahaWebhookProvider, WahaOptionsValidator>(builder, configure);

    /// <summary>Adds the W-API adapter (provider name <c>wapi</c>).</summary>
    public static IInboxReliabilityBuilder AddWApi(this IInboxReliabilityBuilder builder, Action<WApiOptions>? configure = null) =>
        Add<WApiOptions, WApiWebhookProvider, WApiOptionsValidator>(builder, configure);

    private static IInboxReliabilityBuilder Add<TOptions, TProvider, TValidator>(IInboxReliabilityBuilder builder, Action<TOptions>? configure)
        where TOptions : class
        where TProvider : class, IWebhookProvider
        where TValidator : class, IInboxConfigurationValidator
    {
        ArgumentNullException.ThrowIfNull(builder);
        var options = builder.Services.AddOptions<TOptions>();
        if (configure is not null) options.Configure(configure);
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IWebhookProvider, TProvider>());
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IInboxConfigurationValidator, TValidator>());
        return builder.AddWebhookPipeline(); // capture, ingest and dispatch come with the first provider
    }

    private sealed class MetaCloudApiOptionsValidator(IOptions<MetaCloudApiOptions> options) : IInboxConfigurationValidator
    {
        public IEnumerable<string> Validate() => options.Value.Validate();
    }

    private sealed class ZApiOptionsValidator(IOptions<ZApiOptions> options) : IInboxConfigurationValidator
    {
        public IEnumerable<string> Validate() => options.Value.Validate("AddZApi");
    }

    private sealed class EvolutionApiOptionsValidator(IOptions<EvolutionApiOptions> options) : IInboxConfigurationValidator
    {
        public IEnumerable<string> Validate() => options.Value.Validate("AddEvolutionApi");
    }

    private sealed class WahaOptionsValidator(IOptions<WahaOptions> options) : IInboxConfigurationValidator
    {
        public IEnumerable<string> Validate() => options.Value.Validate();
    }

    private sealed class WApiOptionsValidator(IOptions<WApiOptions> options) : IInboxConfigurationValidator
    {
        public IEnumerable<string> Validate() => options.Value.Validate("AddWApi");
    }
}
