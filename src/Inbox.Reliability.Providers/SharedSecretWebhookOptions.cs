namespace Inbox.Reliability.Providers;

/// <summary>
/// Authenticity for providers that do not sign their webhooks (Z-API, Evolution API, W-API): a secret that the
/// provider repeats on every webhook, in the URL's query string (<c>…/webhooks/zapi/{instance}?secret=…</c>) or in a
/// header you configure at the provider. Compared in constant time.
/// </summary>
/// <remarks>
/// The secret for an instance is, in order: the one the caller resolved (<see cref="Events.WebhookRequest.Secret"/>),
/// <see cref="InstanceSecrets"/>, then <see cref="WebhookSecret"/>. When none is set, webhooks are accepted unverified
/// and the result says so (<see cref="Events.WebhookAuthStatus.NotConfigured"/>).
/// </remarks>
public abstract class SharedSecretWebhookOptions
{
    private protected SharedSecretWebhookOptions()
    {
    }

    /// <summary>The secret for every instance without its own in <see cref="InstanceSecrets"/>. Null: not checked.</summary>
    public string? WebhookSecret { get; set; }

    /// <summary>Secrets per instance (the instance segment of the webhook URL, case-sensitive).</summary>
    public IDictionary<string, string> InstanceSecrets { get; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>The query string parameter that carries the secret. Default <c>secret</c>; null to accept it only in the header.</summary>
    public string? SecretQueryName { get; set; } = "secret";

    /// <summary>
    /// The header that carries the secret. Default <c>X-Webhook-Secret</c>; null to accept it only in the query string.
    /// With <c>Authorization</c>, a <c>Bearer </c> prefix is accepted before the secret.
    /// </summary>
    public string? SecretHeaderName { get; set; } = "X-Webhook-Secret";

    internal IEnumerable<string> Validate(string method)
    {
        if (WebhookSecret is not null && string.IsNullOrWhiteSpace(WebhookSecret))
            yield return $"{method}: WebhookSecret is empty; set the secret the provider sends, or leave it null to accept webhooks without checking.";
        foreach (var (instance, secret) in InstanceSecrets)
        {
            if (string.IsNullOrWhiteSpace(instance)) yield return $"{method}: InstanceSecrets has an empty instance name; use the instance segment of the webhook URL.";
            else if (string.IsNullOrWhiteSpace(secret)) yield return $"{method}: InstanceSecrets[\"{instance}\"] is empty; set the secret the provider sends for it, or remove the entry.";
        }

        if ((WebhookSecret is not null || InstanceSecrets.Count > 0) && string.IsNullOrWhiteSpace(SecretQueryName) && string.IsNullOrWhiteSpace(SecretHeaderName))
            yield return $"{method}: a webhook secret is set but SecretQueryName and SecretHeaderName are both empty; set where the provider sends it (for example SecretQueryName = \"secret\").";
    }
}

/// <summary>Z-API settings. Set through <c>AddZApi(o => ...)</c>.</summary>
/// <remarks>Z-API does not sign webhooks: add <c>?secret=…</c> to each webhook URL you register with <c>update-webhook-*</c> and set the same secret here.</remarks>
public sealed class ZApiOptions : SharedSecretWebhookOptions;

/// <summary>Evolution API settings. Set through <c>AddEvolutionApi(o => ...)</c>.</summary>
/// <remarks>
/// Evolution does not sign webhooks: put the secret in the webhook URL's query string, or set a custom webhook header
/// for the instance (for example <c>X-Webhook-Secret</c>) and name it in <see cref="SharedSecretWebhookOptions.SecretHeaderName"/>.
/// </remarks>
public sealed class EvolutionApiOptions : SharedSecretWebhookOptions;

/// <summary>W-API settings. Set through <c>AddWApi(o => ...)</c>.</summary>
/// <remarks>W-API's webhook authentication is not documented: add <c>?secret=…</c> to each webhook URL you register and set the same secret here.</remarks>
public sealed class WApiOptions : SharedSecretWebhookOptions;
