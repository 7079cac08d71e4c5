namespace Inbox.Reliability.Providers;

/// <summary>Meta WhatsApp Cloud API settings. Set through <c>AddMetaCloudApi(o => ...)</c>.</summary>
/// <remarks>
/// Per instance, the app secret is, in order: <see cref="Events.WebhookRequest.Secret"/> (resolved by the caller),
/// <see cref="InstanceAppSecrets"/>, then <see cref="AppSecret"/>; the verify token likewise
/// (<see cref="Events.WebhookChallengeRequest.VerifyToken"/>, <see cref="InstanceVerifyTokens"/>, <see cref="VerifyToken"/>).
/// </remarks>
public sealed class MetaCloudApiOptions
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

    internal IEnumerable<string> Validate()
    {
        const string method = "AddMetaCloudApi";
        if (AppSecret is null && InstanceAppSecrets.Count == 0 && !AllowUnsignedWebhooks)
            yield return $"{method}: set AppSecret (the Meta app's secret, under App settings > Basic) so webhook signatures (X-Hub-Signature-256) can be verified, or InstanceAppSecrets per instance; AllowUnsignedWebhooks = true turns verification off for local testing.";
        if (AppSecret is not null && string.IsNullOrWhiteSpace(AppSecret)) yield return $"{method}: AppSecret is empty; set the Meta app's secret.";
        if (VerifyToken is not null && string.IsNullOrWhiteSpace(VerifyToken)) yield return $"{method}: VerifyToken is empty; set the token typed in the app's webhook settings, or leave it null.";
        foreach (var error in ValidateEntries(method, nameof(InstanceAppSecrets), InstanceAppSecrets)) yield return error;
        foreach (var error in ValidateEntries(method, nameof(InstanceVerifyTokens), InstanceVerifyTokens)) yield return error;
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
