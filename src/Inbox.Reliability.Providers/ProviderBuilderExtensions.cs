using Inbox.Reliability.Events;
using Inbox.Reliability.Media;
using Inbox.Reliability.Providers;
using Inbox.Reliability.Providers.Evolution;
using Inbox.Reliability.Providers.Media;
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
/// singleton and the provider's <see cref="IMediaDownloader"/> (once, however often it is called; every call's
/// <c>configure</c> is applied) and checks its options at startup with the rest of the configuration. The media
/// downloaders share one HTTP client, disposed with the container. Options can also be bound with
/// <c>services.Configure&lt;ZApiOptions&gt;(configuration.GetSection(…))</c>.
/// </summary>
public static class ProviderBuilderExtensions
{
    /// <summary>
    /// Adds the Meta WhatsApp Cloud API adapter (provider name <c>meta</c>): signature check, <c>hub.challenge</c> handshake,
    /// batches; media downloads with <see cref="MetaCloudApiOptions.AccessToken"/>.
    /// </summary>
    public static IInboxReliabilityBuilder AddMetaCloudApi(this IInboxReliabilityBuilder builder, Action<MetaCloudApiOptions>? configure = null) =>
        Add<MetaCloudApiOptions, MetaCloudApiWebhookProvider, MetaCloudApiOptionsValidator, MetaMediaDownloader>(builder, configure);

    /// <summary>Adds the Z-API adapter (provider name <c>zapi</c>); media downloads from the webhook's storage URLs.</summary>
    public static IInboxReliabilityBuilder AddZApi(this IInboxReliabilityBuilder builder, Action<ZApiOptions>? configure = null) =>
        Add<ZApiOptions, ZApiWebhookProvider, ZApiOptionsValidator, ZApiMediaDownloader>(builder, configure);

    /// <summary>
    /// Adds the Evolution API adapter (provider name <c>evolution</c>); media downloads from <c>mediaUrl</c> or Evolution's
    /// <c>getBase64FromMediaMessage</c> (<see cref="EvolutionApiOptions.BaseUrl"/>, <see cref="EvolutionApiOptions.ApiKey"/>).
    /// </summary>
    public static IInboxReliabilityBuilder AddEvolutionApi(this IInboxReliabilityBuilder builder, Action<EvolutionApiOptions>? configure = null) =>
        Add<EvolutionApiOptions, EvolutionApiWebhookProvider, EvolutionApiOptionsValidator, EvolutionMediaDownloader>(builder, configure);

    /// <summary>Adds the WAHA adapter (provider name <c>waha</c>); media downloads from <c>media.url</c> with <see cref="WahaOptions.ApiKey"/>.</summary>
    public static IInboxReliabilityBuilder AddWaha(this IInboxReliabilityBuilder builder, Action<WahaOptions>? configure = null) =>
        Add<WahaOptions, WahaWebhookProvider, WahaOptionsValidator, WahaMediaDownloader>(builder, configure);

    /// <summary>Adds the W-API adapter (provider name <c>wapi</c>); media downloads through W-API's download endpoint with <see cref="WApiOptions.ApiToken"/>.</summary>
    public static IInboxReliabilityBuilder AddWApi(this IInboxReliabilityBuilder builder, Action<WApiOptions>? configure = null) =>
        Add<WApiOptions, WApiWebhookProvider, WApiOptionsValidator, WApiMediaDownloader>(builder, configure);

    private static IInboxReliabilityBuilder Add<TOptions, TProvider, TValidator, TDownloader>(IInboxReliabilityBuilder builder, Action<TOptions>? configure)
        where TOptions : class
        where TProvider : class, IWebhookProvider
        where TValidator : class, IInboxConfigurationValidator
        where TDownloader : class, IMediaDownloader
    {
        ArgumentNullException.ThrowIfNull(builder);
        var options = builder.Services.AddOptions<TOptions>();
        if (configure is not null) options.Configure(configure);
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IWebhookProvider, TProvider>());
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IInboxConfigurationValidator, TValidator>());
        builder.Services.TryAddSingleton<MediaHttpClient>();
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IMediaDownloader, TDownloader>());
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
