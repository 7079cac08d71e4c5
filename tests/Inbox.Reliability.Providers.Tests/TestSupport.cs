using System.Security.Cryptography;
using System.Text;
using Inbox.Reliability.Events;
using Inbox.Reliability.Providers;
using Inbox.Reliability.Providers.Evolution;
using Inbox.Reliability.Providers.Meta;
using Inbox.Reliability.Providers.WApi;
using Inbox.Reliability.Providers.Waha;
using Inbox.Reliability.Providers.ZApi;
using Microsoft.Extensions.Options;

namespace Inbox.Reliability.Providers.Tests;

internal static class TestSupport
{
    /// <summary>The capture time tests pass; events without a payload time get it.</summary>
    public static readonly DateTimeOffset ReceivedAt = new(2026, 1, 2, 3, 4, 5, TimeSpan.Zero);

    public static string FixturePath(string provider, string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", provider, name + ".json");

    public static byte[] Fixture(string provider, string name) => File.ReadAllBytes(FixturePath(provider, name));

    public static IEnumerable<(string Provider, string Name)> AllFixtures() =>
        Directory.GetDirectories(Path.Combine(AppContext.BaseDirectory, "Fixtures"))
            .SelectMany(d => Directory.GetFiles(d, "*.json").Select(f => (Path.GetFileName(d), Path.GetFileNameWithoutExtension(f))))
            .OrderBy(x => x.Item1, StringComparer.Ordinal).ThenBy(x => x.Item2, StringComparer.Ordinal);

    public static WebhookRequest Request(string provider, byte[] body, string instance = "inst-1", IReadOnlyDictionary<string, string>? headers = null,
        IReadOnlyDictionary<string, string>? query = null, string? secret = null) =>
        new(provider, instance, body, ReceivedAt)
        {
            Headers = headers ?? new Dictionary<string, string>(),
            Query = query ?? new Dictionary<string, string>(),
            Secret = secret,
        };

    public static WebhookRequest Request(string provider, string json, string instance = "inst-1") => Request(provider, Encoding.UTF8.GetBytes(json), instance);

    public static MetaCloudApiWebhookProvider MetaAdapter(Action<MetaCloudApiOptions>? configure = null)
    {
        var options = new MetaCloudApiOptions { AppSecret = "meta-app-secret" };
        configure?.Invoke(options);
        return new MetaCloudApiWebhookProvider(Options.Create(options));
    }

    public static ZApiWebhookProvider ZApiAdapter(Action<ZApiOptions>? configure = null)
    {
        var options = new ZApiOptions();
        configure?.Invoke(options);
        return new ZApiWebhookProvider(Options.Create(options));
    }

    public static EvolutionApiWebhookProvider EvolutionAdapter(Action<EvolutionApiOptions>? configure = null)
    {
        var options = new EvolutionApiOptions();
        configure?.Invoke(options);
        return new EvolutionApiWebhookProvider(Options.Create(options));
    }

    public static WahaWebhookProvider WahaAdapter(Action<WahaOptions>? configure = null)
    {
        var options = new WahaOptions();
        configure?.Invoke(options);
        return new WahaWebhookProvider(Options.Create(options));
    }

    public static WApiWebhookProvider WApiAdapter(Action<WApiOptions>? configure = null)
    {
        var options = new WApiOptions();
        configure?.Invoke(options);
        return new WApiWebhookProvider(Options.Create(options));
    }

    /// <summary>The adapter for a fixture folder name.</summary>
    public static IWebhookProvider ForFolder(string folder) => folder switch
    {
        "meta-cloud" => MetaAdapter(),
        "z-api" => ZApiAdapter(),
        "evolution" => EvolutionAdapter(),
        "waha" => WahaAdapter(),
        "w-api" => WApiAdapter(),
        _ => throw new ArgumentOutOfRangeException(nameof(folder), folder, null),
    };

    public static IReadOnlyList<InboxEvent> ParseFixture(string folder, string name, string instance = "inst-1")
    {
        var provider = ForFolder(folder);
        return provider.Parse(Request(provider.Name, Fixture(folder, name), instance));
    }

    public static InboxEvent Single(IReadOnlyList<InboxEvent> events)
    {
        Assert.Single(events);
        return events[0];
    }

    public static DateTimeOffset Utc(long unixSeconds) => DateTimeOffset.FromUnixTimeSeconds(unixSeconds);

    public static string HexHmacSha256(string key, byte[] body) => Convert.ToHexString(HMACSHA256.HashData(Encoding.UTF8.GetBytes(key), body)).ToLowerInvariant();

    public static string HexHmacSha512(string key, byte[] body) => Convert.ToHexString(HMACSHA512.HashData(Encoding.UTF8.GetBytes(key), body)).ToLowerInvariant();

    /// <summary>The invariants every parsed event must hold, whatever the input.</summary>
    public static void AssertWellFormed(InboxEvent e)
    {
        Assert.False(string.IsNullOrEmpty(e.DedupeKey));
        Assert.False(string.IsNullOrEmpty(e.ExternalId));
        Assert.False(string.IsNullOrEmpty(e.Provider));
        Assert.False(string.IsNullOrEmpty(e.Instance));
        Assert.Equal(TimeSpan.Zero, e.OccurredAt.Offset);
        Assert.StartsWith(e.Provider + "|" + e.Instance + "|", e.DedupeKey, StringComparison.Ordinal);
        if (e.Kind is InboxEventKind.Message or InboxEventKind.Status) Assert.False(string.IsNullOrEmpty(e.ChatId));
        if (e.Kind == InboxEventKind.Status) Assert.NotNull(e.Status);
        if (e.Status == InboxMessageStatus.Failed) Assert.NotNull(e.StatusError);
        if (e.Kind == InboxEventKind.Connection) Assert.NotNull(e.Connection);
        if (e.Raw is not null) Assert.True(e.Raw.Length <= InboxEvent.MaxRawLength);
    }
}
