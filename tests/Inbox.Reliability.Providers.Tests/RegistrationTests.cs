using Inbox.Reliability.Events;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Inbox.Reliability.Providers.Tests;

public class RegistrationTests
{
    private static ServiceProvider Build(Action<IInboxReliabilityBuilder> configure)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        configure(services.AddInboxReliability());
        return services.BuildServiceProvider();
    }

    [Fact]
    public void Each_adapter_is_registered_once_under_its_name()
    {
        using var provider = Build(b => b
            .AddMetaCloudApi(o => o.AppSecret = "app-secret")
            .AddMetaCloudApi(o => o.VerifyToken = "verify")
            .AddZApi()
            .AddZApi()
            .AddEvolutionApi()
            .AddWaha()
            .AddWApi());
        var adapters = provider.GetServices<IWebhookProvider>().ToList();
        Assert.Equal(["meta", "zapi", "evolution", "waha", "wapi"], adapters.Select(a => a.Name));
        Assert.Equal(
            [WebhookProviderNames.Meta, WebhookProviderNames.ZApi, WebhookProviderNames.Evolution, WebhookProviderNames.Waha, WebhookProviderNames.WApi],
            adapters.Select(a => a.Name));

        // Both configure calls applied: the verify token of the second call answers the handshake.
        var meta = Assert.IsAssignableFrom<IWebhookChallengeHandler>(adapters[0]);
        var query = new Dictionary<string, string> { ["hub.mode"] = "subscribe", ["hub.verify_token"] = "verify", ["hub.challenge"] = "7" };
        Assert.Equal(WebhookChallengeStatus.Accepted, meta.AnswerChallenge(new WebhookChallengeRequest("meta", "inst-1", query)).Status);
        Assert.Equal(6, provider.GetServices<IInboxConfigurationValidator>().Count()); // five providers and the webhook pipeline
    }

    [Fact]
    public void Valid_options_report_no_problem()
    {
        using var provider = Build(b => b
            .AddMetaCloudApi(o => o.AppSecret = "app-secret")
            .AddZApi(o => o.WebhookSecret = "zapi-secret")
            .AddEvolutionApi(o => o.InstanceSecrets["loja"] = "evo-secret")
            .AddWaha(o => o.HmacKey = "waha-key")
            .AddWApi());
        Assert.Empty(provider.GetServices<IInboxConfigurationValidator>().SelectMany(v => v.Validate()));
    }

    [Fact]
    public async Task Invalid_options_fail_startup_with_every_problem_saying_what_to_set()
    {
        using var provider = Build(b => b
            .AddMetaCloudApi()
            .AddZApi(o => o.WebhookSecret = " ")
            .AddEvolutionApi(o => { o.WebhookSecret = "evo-secret"; o.SecretQueryName = null; o.SecretHeaderName = ""; })
            .AddWaha(o => o.InstanceHmacKeys["loja"] = "")
            .AddWApi(o => o.InstanceSecrets[""] = "x"));

        // InboxStartup (the first hosted service) validates the whole configuration at once.
        var startup = provider.GetServices<IHostedService>().First();
        var ex = await Assert.ThrowsAsync<InboxConfigurationException>(() => startup.StartAsync(CancellationToken.None));
        Assert.Contains(ex.Errors, e => e.StartsWith("AddMetaCloudApi: set AppSecret", StringComparison.Ordinal));
        Assert.Contains(ex.Errors, e => e.StartsWith("AddZApi: WebhookSecret is empty", StringComparison.Ordinal));
        Assert.Contains(ex.Errors, e => e.StartsWith("AddEvolutionApi: a webhook secret is set but SecretQueryName and SecretHeaderName are both empty", StringComparison.Ordinal));
        Assert.Contains(ex.Errors, e => e.StartsWith("AddWaha: InstanceHmacKeys[\"loja\"] is empty", StringComparison.Ordinal));
        Assert.Contains(ex.Errors, e => e.StartsWith("AddWApi: InstanceSecrets has an empty instance name", StringComparison.Ordinal));
        Assert.DoesNotContain("evo-secret", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Meta_allows_unsigned_webhooks_only_when_asked()
    {
        using var provider = Build(b => b.AddMetaCloudApi(o => o.AllowUnsignedWebhooks = true));
        Assert.Empty(provider.GetServices<IInboxConfigurationValidator>().SelectMany(v => v.Validate()));
    }
}
