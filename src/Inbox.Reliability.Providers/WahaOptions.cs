using Inbox.Reliability.Providers.Media;

namespace Inbox.Reliability.Providers;

/// <summary>WAHA settings. Set through <c>AddWaha(o => ...)</c>.</summary>
/// <remarks>
/// With an HMAC key set in WAHA's webhook config (<c>hmac.key</c>) WAHA signs each webhook: <c>X-Webhook-Hmac</c> is the
/// hex HMAC-SHA512 of the raw body. Per instance (WAHA session), the key is, in order:
/// <see cref="Events.WebhookRequest.Secret"/>, <see cref="InstanceHmacKeys"/>, then <see cref="HmacKey"/>. With none,
/// webhooks are accepted unverified and the result says so.
/// <para>Media is downloaded from the webhook's <c>media.url</c> with <c>X-Api-Key</c> (<see cref="InstanceApiKeys"/>,
/// then <see cref="ApiKey"/>). WAHA often reports its own internal address there (<c>http://localhost:3000/api/files/…</c>):
/// set <see cref="BaseUrl"/> to the address this host reaches WAHA at, and the URL's origin is replaced by it. That also
/// keeps the API key from ever being sent anywhere but your WAHA, whatever a webhook says.</para>
/// </remarks>
public sealed class WahaOptions : IMediaHttpOptions
{
    /// <summary>The HMAC key configured in WAHA's webhook settings. Null: signatures are not checked.</summary>
    public string? HmacKey { get; set; }

    /// <summary>HMAC keys per instance (instance segment of the webhook URL, case-sensitive).</summary>
    public IDictionary<string, string> InstanceHmacKeys { get; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>
    /// Where this host reaches WAHA, for example <c>https://waha.example.com</c> (a path prefix is kept). When set, the
    /// scheme, host and port of each <c>media.url</c> are replaced by it (the path and query are kept), so downloads
    /// work when WAHA reports an internal hostname, and <c>X-Api-Key</c> only goes to this address. Null: the URL is
    /// used as WAHA gives it.
    /// </summary>
    public Uri? BaseUrl { get; set; }

    /// <summary>WAHA's API key (<c>WAHA_API_KEY</c>), sent as <c>X-Api-Key</c> when downloading media. Null: sent without one.</summary>
    public string? ApiKey { get; set; }

    /// <summary>API keys per instance (instance segment of the webhook URL, case-sensitive), for several WAHA servers.</summary>
    public IDictionary<string, string> InstanceApiKeys { get; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>How long one media request may wait for the response headers. Default 60 seconds.</summary>
    public TimeSpan MediaRequestTimeout { get; set; } = MediaHttpDefaults.RequestTimeout;

    /// <summary>How long a media download may wait for the next bytes of the body before it gives up (retryable). Default 60 seconds.</summary>
    public TimeSpan MediaReadIdleTimeout { get; set; } = MediaHttpDefaults.ReadIdleTimeout;

    internal IEnumerable<string> Validate()
    {
        const string method = "AddWaha";
        if (HmacKey is not null && string.IsNullOrWhiteSpace(HmacKey)) yield return $"{method}: HmacKey is empty; set WAHA's webhook hmac.key, or leave it null to accept webhooks without checking.";
        foreach (var error in MetaCloudApiOptions.ValidateEntries(method, nameof(InstanceHmacKeys), InstanceHmacKeys)) yield return error;
        if (ApiKey is not null && string.IsNullOrWhiteSpace(ApiKey)) yield return $"{method}: ApiKey is empty; set WAHA's API key, or leave it null when WAHA runs without one.";
        foreach (var error in MetaCloudApiOptions.ValidateEntries(method, nameof(InstanceApiKeys), InstanceApiKeys)) yield return error;
        foreach (var error in MediaHttpDefaults.ValidateUrl(method, nameof(BaseUrl), BaseUrl, required: false)) yield return error;
        foreach (var error in MediaHttpDefaults.Validate(method, this)) yield return error;
    }
}
