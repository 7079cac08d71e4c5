using System.Security.Cryptography;
using Inbox.Reliability.Events;
using Inbox.Reliability.Media;
using Inbox.Reliability.Providers.Media;
using Inbox.Reliability.Testing;
using Microsoft.Extensions.Options;

namespace Inbox.Reliability.Providers.Tests;

/// <summary>One fake provider server and one media HTTP client for a test class; each test registers its own media.</summary>
public sealed class FakeMediaFixture : IAsyncLifetime
{
    public FakeMediaProvider Fake { get; private set; } = null!;

    internal MediaHttpClient Http { get; } = new(TimeProvider.System);

    public async Task InitializeAsync() => Fake = await FakeMediaProvider.StartAsync();

    public async Task DisposeAsync()
    {
        Http.Dispose();
        await Fake.DisposeAsync();
    }
}

internal static class MediaTestSupport
{
    /// <summary>Short enough that a stall ends a test in well under a second, long enough for a loaded machine to answer.</summary>
    public static readonly TimeSpan ShortTimeout = TimeSpan.FromMilliseconds(400);

    /// <summary>Parses a webhook with the provider's real adapter and returns the download request for its one media.</summary>
    public static MediaDownloadRequest Request(IWebhookProvider adapter, string json, string instance = "inst-1")
    {
        var e = TestSupport.Single(adapter.Parse(TestSupport.Request(adapter.Name, json, instance)));
        Assert.NotNull(e.Media);
        return new MediaDownloadRequest(instance, e, e.Media, 1);
    }

    /// <summary>A request for a hand-made reference (what an adapter would give).</summary>
    public static MediaDownloadRequest Request(string provider, MediaReference media, string instance = "inst-1", string? chatId = "5511999990001",
        string? providerInstanceId = null)
    {
        var e = new InboxEvent
        {
            Kind = InboxEventKind.Message,
            Provider = provider,
            Instance = instance,
            ExternalId = "3EB0HANDMADE0001",
            DedupeKey = $"{provider}|{instance}|3EB0HANDMADE0001",
            ChatId = chatId,
            ProviderInstanceId = providerInstanceId,
            OccurredAt = TestSupport.ReceivedAt,
            MessageType = InboxMessageType.Image,
            Media = media,
        };
        return new MediaDownloadRequest(instance, e, media, 1);
    }

    public static MetaMediaDownloader MetaDownloader(FakeMediaFixture f, Action<MetaCloudApiOptions>? configure = null)
    {
        var options = new MetaCloudApiOptions { AccessToken = FakeMediaProvider.MetaAccessToken, GraphApiBaseUrl = f.Fake.GraphApiBaseUrl };
        configure?.Invoke(options);
        return new MetaMediaDownloader(f.Http, Options.Create(options));
    }

    public static ZApiMediaDownloader ZApiDownloader(FakeMediaFixture f, Action<ZApiOptions>? configure = null)
    {
        var options = new ZApiOptions();
        configure?.Invoke(options);
        return new ZApiMediaDownloader(f.Http, Options.Create(options));
    }

    public static WahaMediaDownloader WahaDownloader(FakeMediaFixture f, Action<WahaOptions>? configure = null)
    {
        var options = new WahaOptions { ApiKey = FakeMediaProvider.WahaApiKey };
        configure?.Invoke(options);
        return new WahaMediaDownloader(f.Http, Options.Create(options));
    }

    public static EvolutionMediaDownloader EvolutionDownloader(FakeMediaFixture f, Action<EvolutionApiOptions>? configure = null)
    {
        var options = new EvolutionApiOptions { BaseUrl = f.Fake.BaseUrl, ApiKey = FakeMediaProvider.EvolutionApiKey };
        configure?.Invoke(options);
        return new EvolutionMediaDownloader(f.Http, Options.Create(options));
    }

    public static WApiMediaDownloader WApiDownloader(FakeMediaFixture f, Action<WApiOptions>? configure = null)
    {
        var options = new WApiOptions { BaseUrl = f.Fake.WApiBaseUrl, ApiToken = FakeMediaProvider.WApiToken };
        configure?.Invoke(options);
        return new WApiMediaDownloader(f.Http, Options.Create(options));
    }

    /// <summary>Reads a download to its end: the bytes' SHA-256 (base64) and count, without keeping them.</summary>
    public static async Task<(string Sha256, long Length)> HashAsync(MediaDownload download)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[81920];
        long length = 0;
        int read;
        while ((read = await download.Content.ReadAsync(buffer)) > 0)
        {
            hash.AppendData(buffer, 0, read);
            length += read;
        }

        return (Convert.ToBase64String(hash.GetHashAndReset()), length);
    }

    public static async Task<byte[]> ReadAllAsync(MediaDownload download)
    {
        using var copy = new MemoryStream();
        await download.Content.CopyToAsync(copy);
        return copy.ToArray();
    }

    /// <summary>Opens the media, expecting a classified failure.</summary>
    public static Task<MediaDownloadException> OpenFailsAsync(IMediaDownloader downloader, MediaDownloadRequest request) =>
        Assert.ThrowsAsync<MediaDownloadException>(async () =>
        {
            await using var download = await downloader.OpenAsync(request, CancellationToken.None);
        });

    /// <summary>Opens the media, then expects reading it to fail, classified.</summary>
    public static async Task<MediaDownloadException> ReadFailsAsync(IMediaDownloader downloader, MediaDownloadRequest request)
    {
        await using var download = await downloader.OpenAsync(request, CancellationToken.None);
        return await Assert.ThrowsAsync<MediaDownloadException>(() => HashAsync(download));
    }

    /// <summary>No credential, no signed query and no body in the message of a failure or of its causes.</summary>
    public static void AssertClean(Exception failure)
    {
        for (var e = failure; e is not null; e = e.InnerException)
        {
            foreach (var secret in FakeMediaProvider.Secrets) Assert.DoesNotContain(secret, e.Message, StringComparison.Ordinal);
            Assert.DoesNotContain("hash=", e.Message, StringComparison.Ordinal);
            Assert.DoesNotContain("?", e.Message, StringComparison.Ordinal);
        }
    }
}

/// <summary>A clock fixed at one instant; timers still run on real time.</summary>
internal sealed class FixedClock(DateTimeOffset now) : TimeProvider
{
    public override DateTimeOffset GetUtcNow() => now;
}
