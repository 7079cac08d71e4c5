using Inbox.Reliability.Providers.Media;

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
        foreach (var error in ValidateMedia(method)) yield return error;
    }

    /// <summary>The provider's own checks of its media download settings.</summary>
    private protected virtual IEnumerable<string> ValidateMedia(string method) => [];
}

/// <summary>Z-API settings. Set through <c>AddZApi(o => ...)</c>.</summary>
/// <remarks>
/// Z-API does not sign webhooks: add <c>?secret=…</c> to each webhook URL you register with <c>update-webhook-*</c> and set the same secret here.
/// Media needs no credentials: the webhook's <c>imageUrl</c>, <c>audioUrl</c>... are plain HTTPS links to Z-API's storage, kept 30 days
/// (<c>Client-Token</c> protects calls to Z-API's API, not these links).
/// </remarks>
public sealed class ZApiOptions : SharedSecretWebhookOptions, IMediaHttpOptions
{
    /// <summary>How long one media request may wait for the response headers. Default 60 seconds.</summary>
    public TimeSpan MediaRequestTimeout { get; set; } = MediaHttpDefaults.RequestTimeout;

    /// <summary>How long a media download may wait for the next bytes of the body before it gives up (retryable). Default 60 seconds.</summary>
    public TimeSpan MediaReadIdleTimeout { get; set; } = MediaHttpDefaults.ReadIdleTimeout;

    private protected override IEnumerable<string> ValidateMedia(string method) => MediaHttpDefaults.Validate(method, this);
}

/// <summary>Evolution API settings. Set through <c>AddEvolutionApi(o => ...)</c>.</summary>
/// <remarks>
/// Evolution does not sign webhooks: put the secret in the webhook URL's query string, or set a custom webhook header
/// for the instance (for example <c>X-Webhook-Secret</c>) and name it in <see cref="SharedSecretWebhookOptions.SecretHeaderName"/>.
/// <para>Media: the message's <c>mediaUrl</c> (Evolution's S3 copy) when there is one; otherwise
/// <c>POST {BaseUrl}/chat/getBase64FromMediaMessage/{instance}</c> with header <c>apikey</c> (<see cref="InstanceApiKeys"/>,
/// then <see cref="ApiKey"/>), where <c>{instance}</c> is the webhook's <c>instance</c> (Evolution's instance name).
/// The base64 the webhook may inline is never kept, so <see cref="BaseUrl"/> and a key are needed unless S3 is on.</para>
/// </remarks>
public sealed class EvolutionApiOptions : SharedSecretWebhookOptions, IMediaHttpOptions
{
    /// <summary>Evolution's address, for example <c>https://evo.example.com</c> (a path prefix is kept). Null: media without a <c>mediaUrl</c> cannot be downloaded.</summary>
    public Uri? BaseUrl { get; set; }

    /// <summary>The API key sent as <c>apikey</c> to Evolution's media endpoint: the global <c>AUTHENTICATION_API_KEY</c> or the instance's token.</summary>
    public string? ApiKey { get; set; }

    /// <summary>API keys per instance (instance segment of the webhook URL, case-sensitive).</summary>
    public IDictionary<string, string> InstanceApiKeys { get; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>How long one media request may wait for the response headers (Evolution answers once it has the whole file). Default 60 seconds.</summary>
    public TimeSpan MediaRequestTimeout { get; set; } = MediaHttpDefaults.RequestTimeout;

    /// <summary>How long a media download may wait for the next bytes of the body before it gives up (retryable). Default 60 seconds.</summary>
    public TimeSpan MediaReadIdleTimeout { get; set; } = MediaHttpDefaults.ReadIdleTimeout;

    private protected override IEnumerable<string> ValidateMedia(string method)
    {
        if (ApiKey is not null && string.IsNullOrWhiteSpace(ApiKey)) yield return $"{method}: ApiKey is empty; set Evolution's API key, or leave it null.";
        foreach (var error in MetaCloudApiOptions.ValidateEntries(method, nameof(InstanceApiKeys), InstanceApiKeys)) yield return error;
        foreach (var error in MediaHttpDefaults.ValidateUrl(method, nameof(BaseUrl), BaseUrl, required: false)) yield return error;
        foreach (var error in MediaHttpDefaults.Validate(method, this)) yield return error;
    }
}

/// <summary>W-API settings. Set through <c>AddWApi(o => ...)</c>.</summary>
/// <remarks>
/// W-API's webhook authentication is not documented: add <c>?secret=…</c> to each webhook URL you register and set the same secret here.
/// <para>Media (from a third party's summary of W-API's API, unverified): <c>POST {BaseUrl}/message/download-media?instanceId=…</c>
/// with <c>Authorization: Bearer</c> (<see cref="InstanceApiTokens"/>, then <see cref="ApiToken"/>) and
/// <c>{"phone","messageId"}</c> answers a temporary link to the file, which is then downloaded without the token.</para>
/// </remarks>
public sealed class WApiOptions : SharedSecretWebhookOptions, IMediaHttpOptions
{
    /// <summary>W-API's API base. Default <c>https://api.w-api.app/v1</c>.</summary>
    public Uri BaseUrl { get; set; } = new("https://api.w-api.app/v1");

    /// <summary>The instance's token, sent as <c>Authorization: Bearer</c> to the download endpoint. Null: media downloads fail (not retried) until one is set.</summary>
    public string? ApiToken { get; set; }

    /// <summary>Tokens per instance (instance segment of the webhook URL, case-sensitive).</summary>
    public IDictionary<string, string> InstanceApiTokens { get; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>How long one media request may wait for the response headers. Default 60 seconds.</summary>
    public TimeSpan MediaRequestTimeout { get; set; } = MediaHttpDefaults.RequestTimeout;

    /// <summary>How long a media download may wait for the next bytes of the body before it gives up (retryable). Default 60 seconds.</summary>
    public TimeSpan MediaReadIdleTimeout { get; set; } = MediaHttpDefaults.ReadIdleTimeout;

    private protected override IEnumerable<string> ValidateMedia(string method)
    {
        if (ApiToken is not null && string.IsNullOrWhiteSpace(ApiToken)) yield return $"{method}: ApiToken is empty; set the instance's W-API token, or leave it null.";
        foreach (var error in MetaCloudApiOptions.ValidateEntries(method, nameof(InstanceApiTokens), InstanceApiTokens)) yield return error;
        foreach (var error in MediaHttpDefaults.ValidateUrl(method, nameof(BaseUrl), BaseUrl, required: true)) yield return error;
        foreach (var error in MediaHttpDefaults.Validate(method, this)) yield return error;
    }
}
