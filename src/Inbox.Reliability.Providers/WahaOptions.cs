namespace Inbox.Reliability.Providers;

/// <summary>WAHA settings. Set through <c>AddWaha(o => ...)</c>.</summary>
/// <remarks>
/// With an HMAC key set in WAHA's webhook config (<c>hmac.key</c>) WAHA signs each webhook: <c>X-Webhook-Hmac</c> is the
/// hex HMAC-SHA512 of the raw body. Per instance (WAHA session), the key is, in order:
/// <see cref="Events.WebhookRequest.Secret"/>, <see cref="InstanceHmacKeys"/>, then <see cref="HmacKey"/>. With none,
/// webhooks are accepted unverified and the result says so.
/// </remarks>
public sealed class WahaOptions
{
    /// <summary>The HMAC key configured in WAHA's webhook settings. Null: signatures are not checked.</summary>
    public string? HmacKey { get; set; }

    /// <summary>HMAC keys per instance (instance segment of the webhook URL, case-sensitive).</summary>
    public IDictionary<string, string> InstanceHmacKeys { get; } = new Dictionary<string, string>(StringComparer.Ordinal);

    internal IEnumerable<string> Validate()
    {
        const string method = "AddWaha";
        if (HmacKey is not null && string.IsNullOrWhiteSpace(HmacKey)) yield return $"{method}: HmacKey is empty; set WAHA's webhook hmac.key, or leave it null to accept webhooks without checking.";
        foreach (var error in MetaCloudApiOptions.ValidateEntries(method, nameof(InstanceHmacKeys), InstanceHmacKeys)) yield return error;
    }
}
