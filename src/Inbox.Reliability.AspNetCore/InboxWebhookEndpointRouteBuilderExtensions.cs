using System.Diagnostics.CodeAnalysis;
using Inbox.Reliability.AspNetCore.Webhooks;
using Inbox.Reliability.Capture;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Maps the Inbox.Reliability webhook endpoints on an ASP.NET Core app.</summary>
public static class InboxWebhookEndpointRouteBuilderExtensions
{
    /// <summary>
    /// Maps the endpoints WhatsApp providers post their webhooks to, under <paramref name="prefix"/>:
    /// <list type="bullet">
    /// <item><description>
    /// <c>POST {prefix}/{provider}/{instance}</c> (for example <c>/webhooks/meta/phone-1</c>): reads the body up to
    /// <see cref="InboxPipelineOptions.MaxBodyBytes"/> and hands it, with the headers and query string, to
    /// <see cref="IInboxCapture"/>. Answers 200 only once the raw webhook is durable (<c>{"status":"stored","id":…}</c>,
    /// or <c>"duplicate"</c> for a provider's retry); 401 for a bad signature or secret, 413 for a body over the limit,
    /// 400 for an empty body or a bad instance name, 404 for an unknown provider, 503 with <c>Retry-After</c> while
    /// storage is unavailable (<c>{"error":…}</c>, never the body or a secret).
    /// </description></item>
    /// <item><description>
    /// <c>GET {prefix}/{provider}/{instance}</c>: a provider's verification handshake (Meta's <c>hub.challenge</c>):
    /// 200 <c>text/plain</c> with the challenge when the verify token matches, 403 when it does not, 400 when the
    /// request is not a handshake, 405 for a provider without a handshake, 404 for an unknown provider.
    /// </description></item>
    /// </list>
    /// Register the pipeline first: <c>services.AddInboxReliability().UseSqlite(…).AddMetaCloudApi(…)</c>.
    /// </summary>
    /// <param name="endpoints">The app or a route group.</param>
    /// <param name="prefix">The path the endpoints live under, for example <c>/webhooks</c>.</param>
    /// <returns>A builder for both endpoints, to add authorization, rate limiting, host filtering and so on.</returns>
    /// <exception cref="InvalidOperationException">The webhook pipeline is not registered in the services.</exception>
    public static IEndpointConventionBuilder MapInboxWebhooks(this IEndpointRouteBuilder endpoints, [StringSyntax("Route")] string prefix = "/webhooks")
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(prefix);
        var services = endpoints.ServiceProvider;
        if (services.GetService<IServiceProviderIsService>() is { } isService && !isService.IsService(typeof(IInboxCapture)))
        {
            throw new InvalidOperationException(
                "MapInboxWebhooks: the webhook pipeline is not registered. Add it with services.AddInboxReliability().UseSqlite(\"Data Source=data/inbox.db\") " +
                "and at least one provider, for example .AddMetaCloudApi(o => o.AppSecret = \"...\") or .AddZApi(o => o.WebhookSecret = \"...\").");
        }

        var endpoint = new WebhookEndpoint(services);
        var group = endpoints.MapGroup(prefix);
        RequestDelegate capture = endpoint.HandlePostAsync, handshake = endpoint.HandleGetAsync;
        group.MapPost(WebhookEndpoint.Pattern, capture).WithDisplayName("Inbox webhook capture");
        group.MapGet(WebhookEndpoint.Pattern, handshake).WithDisplayName("Inbox webhook verification handshake");
        return group;
    }
}
