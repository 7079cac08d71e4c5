namespace Inbox.Reliability.Providers;

/// <summary>The provider names of the adapters in this package: <see cref="Events.IWebhookProvider.Name"/>, the provider segment of webhook URLs and <see cref="Events.InboxEvent.Provider"/>.</summary>
public static class WebhookProviderNames
{
    /// <summary>Meta WhatsApp Cloud API.</summary>
    public const string Meta = "meta";

    /// <summary>Z-API.</summary>
    public const string ZApi = "zapi";

    /// <summary>Evolution API (v2, Baileys channel).</summary>
    public const string Evolution = "evolution";

    /// <summary>WAHA (WhatsApp HTTP API).</summary>
    public const string Waha = "waha";

    /// <summary>W-API (w-api.app).</summary>
    public const string WApi = "wapi";
}
