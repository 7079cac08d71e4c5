using Microsoft.Extensions.Configuration;

namespace Inbox.Reliability.SampleHost.Webhooks;

/// <summary>
/// The webhook settings of the sample, from the "Inbox" section of appsettings.json (or environment variables such as
/// <c>Inbox__ZApi__WebhookSecret</c>). The values shipped in appsettings.json are DEMO secrets: replace them.
/// </summary>
public sealed class WebhookSettings
{
    /// <summary>The provider names, in display order (the adapters' names and the first URL segment after the prefix).</summary>
    public static IReadOnlyList<string> Providers { get; } = ["meta", "zapi", "evolution", "waha", "wapi"];

    /// <summary>The path prefix the endpoint is mapped under.</summary>
    public const string Prefix = "/webhooks";

    /// <summary>The instance name the sample uses in its URLs (any name works: it is the last URL segment).</summary>
    public string Instance { get; init; } = "demo";

    /// <summary>Meta: the app secret that signs every webhook (X-Hub-Signature-256).</summary>
    public string? MetaAppSecret { get; init; }

    /// <summary>Meta: the verify token of the GET handshake.</summary>
    public string? MetaVerifyToken { get; init; }

    /// <summary>Z-API: the secret in the webhook URL (<c>?secret=</c>).</summary>
    public string? ZApiWebhookSecret { get; init; }

    /// <summary>Evolution API: the secret in the webhook URL (<c>?secret=</c>).</summary>
    public string? EvolutionWebhookSecret { get; init; }

    /// <summary>WAHA: the HMAC key (X-Webhook-Hmac, SHA-512).</summary>
    public string? WahaHmacKey { get; init; }

    /// <summary>W-API: the secret in the webhook URL (<c>?secret=</c>).</summary>
    public string? WApiWebhookSecret { get; init; }

    /// <summary>Meta: the access token that downloads media (Graph API bearer). Null: Meta media fail at once.</summary>
    public string? MetaAccessToken { get; init; }

    /// <summary>WAHA: where this host reaches WAHA (replaces the origin of each <c>media.url</c>). Null: the URL as WAHA gives it.</summary>
    public Uri? WahaBaseUrl { get; init; }

    /// <summary>WAHA: the API key (<c>X-Api-Key</c>) for media downloads. Null: sent without one.</summary>
    public string? WahaApiKey { get; init; }

    /// <summary>Evolution API: its address, for media without a <c>mediaUrl</c>. Null: those media fail.</summary>
    public Uri? EvolutionBaseUrl { get; init; }

    /// <summary>Evolution API: the <c>apikey</c> for its media endpoint.</summary>
    public string? EvolutionApiKey { get; init; }

    /// <summary>W-API: the instance token that downloads media. Null: W-API media fail at once.</summary>
    public string? WApiApiToken { get; init; }

    /// <summary>The public address of the media links when clients reach this host elsewhere than where it listens (a proxy).</summary>
    public string? MediaLinkBaseUrl { get; init; }

    /// <summary>Reads the "Inbox" section.</summary>
    public static WebhookSettings Read(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var inbox = configuration.GetSection("Inbox");
        return new WebhookSettings
        {
            Instance = inbox["Instance"] is { Length: > 0 } instance ? instance : "demo",
            MetaAppSecret = inbox["Meta:AppSecret"],
            MetaVerifyToken = inbox["Meta:VerifyToken"],
            ZApiWebhookSecret = inbox["ZApi:WebhookSecret"],
            EvolutionWebhookSecret = inbox["Evolution:WebhookSecret"],
            WahaHmacKey = inbox["Waha:HmacKey"],
            WApiWebhookSecret = inbox["WApi:WebhookSecret"],
            MetaAccessToken = Optional(inbox["Meta:AccessToken"]),
            WahaBaseUrl = OptionalUrl(inbox, "Waha:BaseUrl"),
            WahaApiKey = Optional(inbox["Waha:ApiKey"]),
            EvolutionBaseUrl = OptionalUrl(inbox, "Evolution:BaseUrl"),
            EvolutionApiKey = Optional(inbox["Evolution:ApiKey"]),
            WApiApiToken = Optional(inbox["WApi:ApiToken"]),
            MediaLinkBaseUrl = Optional(inbox["Media:LinkBaseUrl"]),
        };
    }

    /// <summary>The media credentials are empty in appsettings.json: an empty value means "not set".</summary>
    private static string? Optional(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();

    private static Uri? OptionalUrl(IConfiguration inbox, string key)
    {
        if (Optional(inbox[key]) is not { } value) return null;
        return Uri.TryCreate(value, UriKind.Absolute, out var url)
            ? url
            : throw new InvalidOperationException($"Inbox:{key} must be an absolute URL such as https://waha.example.com (was \"{value}\").");
    }

    /// <summary>The secret a provider puts in the URL's query (Z-API, Evolution, W-API), or null for the signing ones.</summary>
    public string? QuerySecret(string provider) => provider switch
    {
        "zapi" => ZApiWebhookSecret,
        "evolution" => EvolutionWebhookSecret,
        "wapi" => WApiWebhookSecret,
        _ => null,
    };

    /// <summary>Writes the URLs to configure at each provider, without the secrets' values.</summary>
    public void PrintUrls(IEnumerable<string> addresses)
    {
        ArgumentNullException.ThrowIfNull(addresses);
        foreach (var address in addresses)
        {
            var root = address.TrimEnd('/') + Prefix;
            Console.WriteLine($"Webhook endpoint on {address} (secrets: the \"Inbox\" section of appsettings.json; demo values, replace them):");
            foreach (var provider in Providers)
            {
                var auth = provider switch
                {
                    "meta" => "signed: X-Hub-Signature-256 with Inbox:Meta:AppSecret; GET handshake with Inbox:Meta:VerifyToken",
                    "waha" => "signed: X-Webhook-Hmac (SHA-512) with Inbox:Waha:HmacKey",
                    "zapi" => "?secret=<Inbox:ZApi:WebhookSecret>",
                    "evolution" => "?secret=<Inbox:Evolution:WebhookSecret>",
                    _ => "?secret=<Inbox:WApi:WebhookSecret>",
                };
                Console.WriteLine($"  POST {$"{root}/{provider}/{Instance}",-50} {auth}");
            }
        }
    }

    /// <summary>Writes where media go and which media credentials are missing (whether they are set, never their values).</summary>
    public void PrintMedia(string folder, string linkBaseUrl)
    {
        Console.WriteLine($"Media: downloaded into {Path.GetFullPath(folder)}, handed to the handler with signed links {linkBaseUrl.TrimEnd('/')}/{{key}}?exp=…&sig=…");
        var missing = new List<string>();
        if (MetaAccessToken is null) missing.Add("Meta (Inbox:Meta:AccessToken)");
        if (WApiApiToken is null) missing.Add("W-API (Inbox:WApi:ApiToken)");
        if (missing.Count > 0) Console.WriteLine($"  no token set for {string.Join(" and ", missing)}: {(missing.Count == 1 ? "its" : "their")} media fail at once (the others are fetched from the URLs in their webhooks)");
    }
}
