using Inbox.Reliability.Providers.Media;

namespace Inbox.Reliability.Providers;

/// <summary>Meta WhatsApp Cloud API settings. Set through <c>AddMetaCloudApi(o => ...)</c>.</summary>
/// <remarks>
/// Per instance, the app secret is, in order: <see cref="Events.WebhookRequest.Secret"/> (resolved by the caller),
/// <see cref="InstanceAppSecrets"/>, then <see cref="AppSecret"/>; the verify token likewise
/// (<see cref="Events.WebhookChallengeRequest.VerifyToken"/>, <see cref="InstanceVerifyTokens"/>, <see cref="VerifyToken"/>).
/// </remarks>
public sealed class MetaCloudApiOptions : IMediaHttpOptions
{
    /// <summary>
    /// The Meta app's secret (App settings &gt; Basic), which signs every webhook in <c>X-Hub-Signature-256</c>.
    /// Required unless every instance has one in <see cref="InstanceAppSecrets"/> or <see cref="AllowUnsignedWebhooks"/> is on.
    /// </summary>
    public string? AppSecret { get; set; }

    /// <summary>App secrets per instance, for hosts that serve several Meta apps (instance segment of the webhook URL, case-sensitive).</summary>
    public IDictionary<string, string> InstanceAppSecrets { get; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>The token you typed in the app's webhook settings; answers Meta's <c>hub.challenge</c> handshake. Null: handshakes are rejected.</summary>
    public string? VerifyToken { get; set; }

    /// <summary>Verify tokens per instance.</summary>
    public IDictionary<string, string> InstanceVerifyTokens { get; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>
    /// Accept webhooks of instances with no app secret configured, unverified (reported as
    /// <see cref="Events.WebhookAuthStatus.NotConfigured"/>). Off by default; for local testing only, since anyone who
    /// knows the URL could then post fake messages.
    /// </summary>
    public bool AllowUnsignedWebhooks { get; set; }

    /// <summary>
    /// The access token that downloads media (a system user token with <c>whatsapp_business_messaging</c>): sent as
    /// <c>Authorization: Bearer</c> to <c>GET /{media-id}</c> and to the media URL it returns. Used by instances without
    /// their own in <see cref="InstanceAccessTokens"/>. Null: media downloads fail (not retried) until one is set.
    /// </summary>
    public string? AccessToken { get; set; }

    /// <summary>Access tokens per instance, for hosts that serve several WhatsApp Business accounts.</summary>
    public IDictionary<string, string> InstanceAccessTokens { get; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>The Graph API base, version included. Default <c>https://graph.facebook.com/v21.0</c>.</summary>
    public Uri GraphApiBaseUrl { get; set; } = new("https://graph.facebook.com/v21.0");

    /// <summary>How long one media request may wait for the response headers. Default 60 seconds.</summary>
    public TimeSpan MediaRequestTimeout { get; set; } = MediaHttpDefaults.RequestTimeout;

    /// <summary>How long a media download may wait for the next bytes of the body before it gives up (retryable). Default 60 seconds.</summary>
    public TimeSpan MediaReadIdleTimeout { get; set; } = MediaHttpDefaults.ReadIdleTimeout;

    internal IEnumerable<string> Validate()
    {
        const string method = "AddMetaCloudApi";
        if (AppSecret is null && InstanceAppSecrets.Count == 0 && !AllowUnsignedWebhooks)
            yield return $"{method}: set AppSecret (the Meta app's secret, under App settings > Basic) so webhook signatures (X-Hub-Signature-256) can be verified, or InstanceAppSecrets per instance; AllowUnsignedWebhooks = true turns verification off for local testing.";
        if (AppSecret is not null && string.IsNullOrWhiteSpace(AppSecret)) yield return $"{method}: AppSecret is empty; set the Meta app's secret.";
        if (VerifyToken is not null && string.IsNullOrWhiteSpace(VerifyToken)) yield return $"{method}: VerifyToken is empty; set the token typed in the app's webhook settings, or leave it null.";
        foreach (var error in ValidateEntries(method, nameof(InstanceAppSecrets), InstanceAppSecrets)) yield return error;
        foreach (var error in ValidateEntries(method, nameof(InstanceVerifyTokens), InstanceVerifyTokens)) yield return error;
        if (AccessToken is not null && string.IsNullOrWhiteSpace(AccessToken)) yield return $"{method}: AccessToken is empty; set the token that downloads media, or leave it null.";
        foreach (var error in ValidateEntries(method, nameof(InstanceAccessTokens), InstanceAccessTokens)) yield return error;
        foreach (var error in MediaHttpDefaults.ValidateUrl(method, nameof(GraphApiBaseUrl), GraphApiBaseUrl, required: true)) yield return error;
        foreach (var error in MediaHttpDefaults.Validate(method, this)) yield return error;
    }

    internal static IEnumerable<string> ValidateEntries(string method, string name, IDictionary<string, string> entries)
    {
        foreach (var (instance, secret) in entries)
        {
            if (string.IsNullOrWhiteSpace(instance)) yield return $"{method}: {name} has an empty instance name; use the instance segment of the webhook URL.";
            else if (string.IsNullOrWhiteSpace(secret)) yield return $"{method}: {name}[\"{instance}\"] is empty; set a value or remove the entry.";
        }
    }
}
