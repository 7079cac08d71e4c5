using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Inbox.Reliability.Events;
using Inbox.Reliability.Media;
using Inbox.Reliability.Providers.Media;
using Inbox.Reliability.Testing;
using static Inbox.Reliability.Providers.Tests.MediaTestSupport;

namespace Inbox.Reliability.Providers.Tests;

public class MetaMediaDownloaderTests(FakeMediaFixture f) : IClassFixture<FakeMediaFixture>
{
    private FakeMediaProvider Fake => f.Fake;

    [Fact]
    public async Task Downloads_through_the_media_id_with_the_bearer_and_streams_the_bytes_with_mime_sha_and_size()
    {
        var bytes = RandomNumberGenerator.GetBytes(300_000);
        var media = Fake.AddMedia(bytes, "image/jpeg");
        var request = Request(TestSupport.MetaAdapter(), Fake.MetaWebhook(media), "loja");
        Assert.Equal(media.Id, request.Media.MediaId);

        await using var download = await MetaDownloader(f).OpenAsync(request, CancellationToken.None);

        Assert.Equal("image/jpeg", download.ContentType);
        Assert.Equal(bytes.Length, download.Length);
        Assert.Equal(Convert.ToBase64String(SHA256.HashData(bytes)), download.Sha256Base64);
        Assert.Equal(bytes, await ReadAllAsync(download));
        Assert.Equal(1, media.InfoRequests);
        Assert.Equal(1, media.DownloadRequests);
        var graph = Assert.Single(Fake.RequestsTo("/v21.0/" + media.Id));
        Assert.Equal("Bearer " + FakeMediaProvider.MetaAccessToken, graph.Header("Authorization"));
        var file = Assert.Single(Fake.RequestsTo("/whatsapp_business/attachments"), r => r.Query.Contains("mid=" + media.Id + "&", StringComparison.Ordinal));
        Assert.Equal("Bearer " + FakeMediaProvider.MetaAccessToken, file.Header("Authorization"));
    }

    [Fact]
    public async Task A_url_in_the_webhook_is_used_without_asking_the_graph_api()
    {
        var media = Fake.AddMedia(20_000, "audio/ogg");
        var request = Request(TestSupport.MetaAdapter(), Fake.MetaWebhook(media, includeUrl: true));
        Assert.NotNull(request.Media.Url);

        await using var download = await MetaDownloader(f).OpenAsync(request, CancellationToken.None);

        Assert.Equal((media.Sha256Base64, media.Size), await HashAsync(download));
        Assert.Equal(media.Sha256Base64, download.Sha256Base64); // the webhook's sha256
        Assert.Equal(0, media.InfoRequests);
    }

    [Fact]
    public async Task An_expired_url_is_refetched_from_the_media_id_once_and_the_download_succeeds()
    {
        var media = Fake.AddMedia(50_000, "image/jpeg", new FakeMediaBehavior { ExpiredUrls = 1 });
        var request = Request(TestSupport.MetaAdapter(), Fake.MetaWebhook(media, includeUrl: true));

        await using var download = await MetaDownloader(f).OpenAsync(request, CancellationToken.None);

        Assert.Equal((media.Sha256Base64, media.Size), await HashAsync(download));
        Assert.Equal(1, media.InfoRequests);      // the refetch
        Assert.Equal(2, media.DownloadRequests);  // the expired URL, then the fresh one
    }

    [Fact]
    public async Task A_url_fetched_from_the_media_id_that_has_expired_is_refetched_once_too()
    {
        var media = Fake.AddMedia(50_000, "image/jpeg", new FakeMediaBehavior { ExpiredUrls = 1 });
        var request = Request(TestSupport.MetaAdapter(), Fake.MetaWebhook(media));

        await using var download = await MetaDownloader(f).OpenAsync(request, CancellationToken.None);

        Assert.Equal((media.Sha256Base64, media.Size), await HashAsync(download));
        Assert.Equal(2, media.InfoRequests);
        Assert.Equal(2, media.DownloadRequests);
    }

    [Fact]
    public async Task A_url_still_missing_after_one_refetch_fails_for_good_without_the_token_or_the_signed_query()
    {
        var media = Fake.AddMedia(1_000, "image/jpeg", new FakeMediaBehavior { ExpiredUrls = 10 });
        var request = Request(TestSupport.MetaAdapter(), Fake.MetaWebhook(media, includeUrl: true));

        var failure = await OpenFailsAsync(MetaDownloader(f), request);

        Assert.False(failure.Retryable);
        Assert.Equal(404, failure.StatusCode);
        Assert.Equal(1, media.InfoRequests);
        Assert.Equal(2, media.DownloadRequests);
        Assert.Contains("/whatsapp_business/attachments/", failure.Message, StringComparison.Ordinal);
        AssertClean(failure);
    }

    [Fact]
    public async Task The_graph_api_sha256_and_file_size_are_passed_back_so_a_wrong_hash_is_caught_by_the_check()
    {
        var wrong = Convert.ToBase64String(new byte[32]);
        var media = Fake.AddMedia(10_000, "application/pdf", new FakeMediaBehavior { MetaSha256 = wrong });
        var request = Request(TestSupport.MetaAdapter(), Fake.MetaWebhook(media));

        await using var download = await MetaDownloader(f).OpenAsync(request, CancellationToken.None);

        Assert.Equal(wrong, download.Sha256Base64);
        var (sha, length) = await HashAsync(download);
        Assert.NotEqual(download.Sha256Base64, sha);
        Assert.Equal(media.Size, length);
    }

    [Fact]
    public async Task A_body_longer_than_the_announced_file_size_fails_not_retryable_as_soon_as_it_passes_it()
    {
        var media = Fake.AddMedia(200_000, "video/mp4", new FakeMediaBehavior { AnnouncedSize = 150_000 });
        var request = Request(TestSupport.MetaAdapter(), Fake.MetaWebhook(media));

        var failure = await ReadFailsAsync(MetaDownloader(f), request);

        Assert.False(failure.Retryable);
        Assert.Contains("150000", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_redirect_to_another_host_is_followed_without_the_bearer()
    {
        var media = Fake.AddMedia(30_000, "image/jpeg", new FakeMediaBehavior { RedirectToOtherOrigin = true });
        var request = Request(TestSupport.MetaAdapter(), Fake.MetaWebhook(media));

        await using var download = await MetaDownloader(f).OpenAsync(request, CancellationToken.None);

        Assert.Equal((media.Sha256Base64, media.Size), await HashAsync(download));
        var files = Fake.RequestsTo("/whatsapp_business/attachments").Where(r => r.Query.Contains("mid=" + media.Id + "&", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, files.Count);
        Assert.Equal(Fake.BaseUrl, files[0].Origin);
        Assert.NotNull(files[0].Header("Authorization"));
        Assert.Equal(Fake.OtherOriginUrl, files[1].Origin);
        Assert.Null(files[1].Header("Authorization"));
    }

    [Fact]
    public async Task Without_an_access_token_it_fails_for_good_without_a_request()
    {
        var media = Fake.AddMedia(1_000);
        var request = Request(TestSupport.MetaAdapter(), Fake.MetaWebhook(media), "loja-sem-token");

        var failure = await OpenFailsAsync(MetaDownloader(f, o => { o.AccessToken = null; o.InstanceAccessTokens["outra"] = "x"; }), request);

        Assert.False(failure.Retryable);
        Assert.Contains("AccessToken", failure.Message, StringComparison.Ordinal);
        Assert.Equal(0, media.InfoRequests);
        Assert.Empty(Fake.RequestsTo("/v21.0/" + media.Id));
    }

    [Fact]
    public async Task A_rejected_token_fails_for_good_and_the_instance_token_wins_over_the_shared_one()
    {
        var media = Fake.AddMedia(1_000);
        var request = Request(TestSupport.MetaAdapter(), Fake.MetaWebhook(media), "loja");
        const string wrongToken = "EAAG-wrong-token-must-not-leak";

        var failure = await OpenFailsAsync(MetaDownloader(f, o => o.InstanceAccessTokens["loja"] = wrongToken), request);

        Assert.False(failure.Retryable);
        Assert.Equal(401, failure.StatusCode);
        Assert.Equal("Bearer " + wrongToken, Assert.Single(Fake.RequestsTo("/v21.0/" + media.Id)).Header("Authorization"));
        Assert.DoesNotContain(wrongToken, failure.Message, StringComparison.Ordinal);
        AssertClean(failure);
    }

    [Fact]
    public async Task A_large_media_streams_from_the_url_to_the_reader()
    {
        var media = Fake.AddMedia(24L * 1024 * 1024, "video/mp4");
        var request = Request(TestSupport.MetaAdapter(), Fake.MetaWebhook(media));

        await using var download = await MetaDownloader(f).OpenAsync(request, CancellationToken.None);

        Assert.Equal(media.Size, download.Length);
        Assert.Equal((media.Sha256Base64, media.Size), await HashAsync(download));
    }
}

/// <summary>Each failure class, on Z-API's plain URLs (the same HTTP client serves every provider).</summary>
public class MediaFailureClassificationTests(FakeMediaFixture f) : IClassFixture<FakeMediaFixture>
{
    private FakeMediaProvider Fake => f.Fake;

    private MediaDownloadRequest ZApiRequest(FakeMedia media) => Request(TestSupport.ZApiAdapter(), Fake.ZApiWebhook(media));

    [Fact]
    public async Task Server_errors_are_retryable_with_their_retry_after_and_a_later_attempt_succeeds()
    {
        var media = Fake.AddMedia(10_000, "image/jpeg", new FakeMediaBehavior { ServerErrors = 2, RetryAfter = "3" });
        var downloader = ZApiDownloader(f);

        var first = await OpenFailsAsync(downloader, ZApiRequest(media));
        var second = await OpenFailsAsync(downloader, ZApiRequest(media));
        await using var third = await downloader.OpenAsync(ZApiRequest(media), CancellationToken.None);

        Assert.All(new[] { first, second }, e =>
        {
            Assert.True(e.Retryable);
            Assert.Equal(503, e.StatusCode);
            Assert.Equal(TimeSpan.FromSeconds(3), e.RetryAfter);
        });
        Assert.Equal((media.Sha256Base64, media.Size), await HashAsync(third));
        Assert.Equal(3, media.DownloadRequests);
    }

    [Fact]
    public async Task Too_many_requests_is_retryable_with_retry_after_in_seconds()
    {
        var media = Fake.AddMedia(1_000, "image/jpeg", new FakeMediaBehavior { TooManyRequests = 1, RetryAfter = "7" });

        var failure = await OpenFailsAsync(ZApiDownloader(f), ZApiRequest(media));

        Assert.True(failure.Retryable);
        Assert.Equal(429, failure.StatusCode);
        Assert.Equal(TimeSpan.FromSeconds(7), failure.RetryAfter);
    }

    [Fact]
    public async Task Too_many_requests_is_retryable_with_retry_after_as_an_http_date()
    {
        var now = new DateTimeOffset(2026, 3, 4, 5, 6, 7, TimeSpan.Zero);
        var date = now.AddSeconds(120).ToString("r", CultureInfo.InvariantCulture);
        var media = Fake.AddMedia(1_000, "image/jpeg", new FakeMediaBehavior { TooManyRequests = 1, RetryAfter = date });
        using var http = new MediaHttpClient(new FixedClock(now));
        var downloader = new ZApiMediaDownloader(http, Microsoft.Extensions.Options.Options.Create(new ZApiOptions()));

        var failure = await OpenFailsAsync(downloader, ZApiRequest(media));

        Assert.True(failure.Retryable);
        Assert.Equal(TimeSpan.FromSeconds(120), failure.RetryAfter);
    }

    [Theory]
    [InlineData(410)]
    [InlineData(404)]
    [InlineData(403)]
    [InlineData(401)]
    public async Task Gone_missing_and_forbidden_are_not_retryable(int status)
    {
        var media = Fake.AddMedia(1_000, "image/jpeg", new FakeMediaBehavior { Status = status });

        var failure = await OpenFailsAsync(ZApiDownloader(f), ZApiRequest(media));

        Assert.False(failure.Retryable);
        Assert.Equal(status, failure.StatusCode);
        Assert.Null(failure.RetryAfter);
        AssertClean(failure);
    }

    [Fact]
    public async Task Headers_that_never_come_time_out_retryable_within_the_request_timeout()
    {
        var media = Fake.AddMedia(1_000, "image/jpeg", new FakeMediaBehavior { StallHeaders = true });
        var clock = Stopwatch.StartNew();

        var failure = await OpenFailsAsync(ZApiDownloader(f, o => o.MediaRequestTimeout = ShortTimeout), ZApiRequest(media));

        Assert.True(failure.Retryable);
        Assert.Null(failure.StatusCode);
        Assert.Contains("MediaRequestTimeout", failure.Message, StringComparison.Ordinal);
        Assert.InRange(clock.Elapsed, ShortTimeout * 0.9, TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Open_returns_at_the_headers_and_a_body_that_stalls_times_out_retryable()
    {
        var media = Fake.AddMedia(1_000_000, "video/mp4", new FakeMediaBehavior { StallBodyAfter = 100_000 });
        var idle = TimeSpan.FromSeconds(1); // room for a loaded machine between the chunks sent before the stall
        var downloader = ZApiDownloader(f, o => o.MediaReadIdleTimeout = idle);

        // The body stalls after 100 kB: Open returning proves nothing is buffered before the caller reads.
        await using var download = await downloader.OpenAsync(ZApiRequest(media), CancellationToken.None);
        var clock = Stopwatch.StartNew();
        var failure = await Assert.ThrowsAsync<MediaDownloadException>(() => HashAsync(download));

        Assert.Equal(media.Size, download.Length);
        Assert.True(failure.Retryable);
        Assert.Contains("MediaReadIdleTimeout", failure.Message, StringComparison.Ordinal);
        Assert.Contains("100000 bytes", failure.Message, StringComparison.Ordinal);
        Assert.InRange(clock.Elapsed, idle * 0.9, TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task A_connection_reset_mid_body_is_retryable()
    {
        var media = Fake.AddMedia(500_000, "video/mp4", new FakeMediaBehavior { ResetAfter = 200_000 });

        var failure = await ReadFailsAsync(ZApiDownloader(f), ZApiRequest(media));

        Assert.True(failure.Retryable);
        Assert.Contains("connection was lost", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_refused_connection_is_retryable()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        var request = Request(WebhookProviderNames.ZApi, new MediaReference { Url = $"http://127.0.0.1:{port}/instances/x/file.jpeg?token=abc" });

        var failure = await OpenFailsAsync(ZApiDownloader(f), request);

        Assert.True(failure.Retryable);
        Assert.Null(failure.StatusCode);
        Assert.DoesNotContain("token=abc", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_caller_cancellation_is_not_turned_into_a_timeout()
    {
        var media = Fake.AddMedia(1_000, "image/jpeg", new FakeMediaBehavior { StallHeaders = true });
        using var cancel = new CancellationTokenSource();
        var open = ZApiDownloader(f).OpenAsync(ZApiRequest(media), cancel.Token);
        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => open);
    }
}

public class ZApiWahaWApiMediaDownloaderTests(FakeMediaFixture f) : IClassFixture<FakeMediaFixture>
{
    private FakeMediaProvider Fake => f.Fake;

    [Fact]
    public async Task ZApi_downloads_the_plain_url_with_no_credentials()
    {
        var bytes = RandomNumberGenerator.GetBytes(70_000);
        var media = Fake.AddMedia(bytes, "image/jpeg");
        var request = Request(TestSupport.ZApiAdapter(), Fake.ZApiWebhook(media));

        await using var download = await ZApiDownloader(f).OpenAsync(request, CancellationToken.None);

        Assert.Equal("image/jpeg", download.ContentType);
        Assert.Equal(bytes.Length, download.Length);
        Assert.Null(download.Sha256Base64); // Z-API gives none
        Assert.Equal(bytes, await ReadAllAsync(download));
        var sent = Assert.Single(Fake.RequestsTo("/zapi/instances/"), r => r.Path.Contains(media.MessageId, StringComparison.Ordinal));
        Assert.Null(sent.Header("Authorization"));
        Assert.Null(sent.Header("Client-Token"));
    }

    [Fact]
    public async Task ZApi_without_a_url_fails_for_good()
    {
        var failure = await OpenFailsAsync(ZApiDownloader(f), Request(WebhookProviderNames.ZApi, new MediaReference { MimeType = "image/jpeg" }));

        Assert.False(failure.Retryable);
    }

    [Fact]
    public async Task Waha_downloads_with_the_api_key_from_the_reported_internal_host_rebased_on_BaseUrl()
    {
        var bytes = RandomNumberGenerator.GetBytes(40_000);
        var media = Fake.AddMedia(bytes, "audio/ogg");
        var request = Request(TestSupport.WahaAdapter(), Fake.WahaWebhook(media, reportedOrigin: new Uri("http://waha-internal:3000")));
        Assert.StartsWith("http://waha-internal:3000/api/files/", request.Media.Url, StringComparison.Ordinal);

        await using var download = await WahaDownloader(f, o => o.BaseUrl = Fake.BaseUrl).OpenAsync(request, CancellationToken.None);

        Assert.Equal("audio/ogg", download.ContentType);
        Assert.Equal(bytes, await ReadAllAsync(download));
        var sent = Assert.Single(Fake.RequestsTo("/api/files/"), r => r.Path.Contains(media.MessageId, StringComparison.Ordinal));
        Assert.Equal(FakeMediaProvider.WahaApiKey, sent.Header("X-Api-Key"));
    }

    [Fact]
    public async Task Waha_without_its_api_key_fails_for_good_saying_what_to_set()
    {
        var media = Fake.AddMedia(1_000, "image/jpeg");
        var request = Request(TestSupport.WahaAdapter(), Fake.WahaWebhook(media));

        var failure = await OpenFailsAsync(WahaDownloader(f, o => o.ApiKey = null), request);

        Assert.False(failure.Retryable);
        Assert.Equal(401, failure.StatusCode);
        Assert.Contains("ApiKey", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Waha_with_a_wrong_api_key_fails_for_good_without_the_key_in_the_message()
    {
        const string wrongKey = "wrong-waha-key-must-not-leak";
        var media = Fake.AddMedia(1_000, "image/jpeg");
        var request = Request(TestSupport.WahaAdapter(), Fake.WahaWebhook(media), "loja");

        var failure = await OpenFailsAsync(WahaDownloader(f, o => o.InstanceApiKeys["loja"] = wrongKey), request);

        Assert.False(failure.Retryable);
        Assert.Equal(wrongKey, Assert.Single(Fake.RequestsTo("/api/files/"), r => r.Path.Contains(media.MessageId, StringComparison.Ordinal)).Header("X-Api-Key"));
        Assert.DoesNotContain(wrongKey, failure.Message, StringComparison.Ordinal);
        AssertClean(failure);
    }

    [Fact]
    public async Task Waha_media_it_did_not_download_fails_for_good_without_a_request()
    {
        var reference = new MediaReference { MediaId = "false_1@c.us_X", Properties = new Dictionary<string, string> { ["notDownloaded"] = "true" } };

        var failure = await OpenFailsAsync(WahaDownloader(f), Request(WebhookProviderNames.Waha, reference));

        Assert.False(failure.Retryable);
        Assert.Contains("WHATSAPP_DOWNLOAD_MEDIA", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WApi_asks_for_a_file_link_with_the_bearer_and_downloads_it_without()
    {
        var bytes = RandomNumberGenerator.GetBytes(25_000);
        var media = Fake.AddMedia(bytes, "application/pdf");
        var request = Request(TestSupport.WApiAdapter(), Fake.WApiWebhook(media));

        await using var download = await WApiDownloader(f).OpenAsync(request, CancellationToken.None);

        Assert.Equal("application/pdf", download.ContentType);
        Assert.Equal(bytes, await ReadAllAsync(download));
        Assert.Equal(1, media.InfoRequests);
        var ask = Assert.Single(Fake.RequestsTo("/wapi/v1/message/download-media"), r => r.Query.Contains("FAKE01-INST01-000001", StringComparison.Ordinal));
        Assert.Equal("Bearer " + FakeMediaProvider.WApiToken, ask.Header("Authorization"));
        var file = Assert.Single(Fake.RequestsTo("/wapi/files/"), r => r.Path.Contains(media.MessageId, StringComparison.Ordinal));
        Assert.Null(file.Header("Authorization"));
    }

    [Fact]
    public async Task WApi_without_a_token_fails_for_good()
    {
        var media = Fake.AddMedia(1_000, "image/jpeg");

        var failure = await OpenFailsAsync(WApiDownloader(f, o => o.ApiToken = null), Request(TestSupport.WApiAdapter(), Fake.WApiWebhook(media)));

        Assert.False(failure.Retryable);
        Assert.Contains("ApiToken", failure.Message, StringComparison.Ordinal);
        Assert.Equal(0, media.InfoRequests);
    }

    [Fact]
    public async Task WApi_answering_without_a_link_fails_for_good_saying_the_endpoint_is_undocumented()
    {
        var reference = new MediaReference { MediaId = "3EB0UNKNOWN", MimeType = "image/jpeg" };

        var failure = await OpenFailsAsync(WApiDownloader(f), Request(WebhookProviderNames.WApi, reference, providerInstanceId: "FAKE01"));

        Assert.False(failure.Retryable);
        Assert.Contains("not officially documented", failure.Message, StringComparison.Ordinal);
        Assert.Contains("Mensagem não encontrada", failure.Message, StringComparison.Ordinal);
    }
}

public class EvolutionMediaDownloaderTests(FakeMediaFixture f) : IClassFixture<FakeMediaFixture>
{
    private FakeMediaProvider Fake => f.Fake;

    [Fact]
    public async Task Without_a_media_url_it_asks_evolution_and_decodes_a_multi_megabyte_base64_while_it_streams()
    {
        var media = Fake.AddMedia(12L * 1024 * 1024 + 1, "video/mp4");
        var request = Request(TestSupport.EvolutionAdapter(), Fake.EvolutionWebhook(media, instance: "loja-grande"), "loja");
        Assert.Null(request.Media.Url);
        Assert.Equal(media.Sha256Base64, request.Media.Sha256);

        await using var download = await EvolutionDownloader(f).OpenAsync(request, CancellationToken.None);

        Assert.Equal("video/mp4", download.ContentType);
        Assert.Equal(media.Size, download.Length);
        Assert.Equal(media.Sha256Base64, download.Sha256Base64);
        Assert.Equal((media.Sha256Base64, media.Size), await HashAsync(download));
        var ask = Assert.Single(Fake.RequestsTo("/chat/getBase64FromMediaMessage/loja-grande"));
        Assert.Equal("POST", ask.Method);
        Assert.Equal(FakeMediaProvider.EvolutionApiKey, ask.Header("apikey"));
        Assert.Equal(1, media.DownloadRequests);
    }

    [Fact]
    public async Task Small_files_decode_to_the_exact_bytes()
    {
        foreach (var size in new[] { 0, 1, 2, 3, 4, 5, 47, 48 * 1024, (48 * 1024) + 1 })
        {
            var bytes = RandomNumberGenerator.GetBytes(size);
            var media = Fake.AddMedia(bytes, "image/jpeg");
            var request = Request(TestSupport.EvolutionAdapter(), Fake.EvolutionWebhook(media));

            await using var download = await EvolutionDownloader(f).OpenAsync(request, CancellationToken.None);

            Assert.Equal(bytes, await ReadAllAsync(download));
        }
    }

    [Fact]
    public async Task A_media_url_is_downloaded_without_the_api_key()
    {
        var bytes = RandomNumberGenerator.GetBytes(30_000);
        var media = Fake.AddMedia(bytes, "image/jpeg");
        var request = Request(TestSupport.EvolutionAdapter(), Fake.EvolutionWebhook(media, withMediaUrl: true));
        Assert.NotNull(request.Media.Url);

        await using var download = await EvolutionDownloader(f).OpenAsync(request, CancellationToken.None);

        Assert.Equal(bytes, await ReadAllAsync(download));
        var sent = Assert.Single(Fake.RequestsTo("/s3/evolution/"), r => r.Path.Contains(media.MessageId, StringComparison.Ordinal));
        Assert.Null(sent.Header("apikey"));
        Assert.Equal(1, media.DownloadRequests); // Evolution was not asked
    }

    [Fact]
    public async Task A_media_url_that_is_gone_falls_back_to_asking_evolution()
    {
        var media = Fake.AddMedia(5_000, "image/jpeg");
        var request = Request(TestSupport.EvolutionAdapter(), Fake.EvolutionWebhook(media));
        var gone = request with { Media = request.Media with { Url = new Uri(Fake.BaseUrl, "/s3/evolution/loja-centro/3EB0GONE.jpeg").AbsoluteUri } };

        await using var download = await EvolutionDownloader(f).OpenAsync(gone, CancellationToken.None);

        Assert.Equal((media.Sha256Base64, media.Size), await HashAsync(download));
        Assert.Equal(1, media.DownloadRequests); // the base64 answer
    }

    [Fact]
    public async Task Without_a_media_url_or_base_url_it_fails_for_good_saying_what_to_set()
    {
        var media = Fake.AddMedia(1_000, "image/jpeg");
        var request = Request(TestSupport.EvolutionAdapter(), Fake.EvolutionWebhook(media));

        var failure = await OpenFailsAsync(EvolutionDownloader(f, o => o.BaseUrl = null), request);

        Assert.False(failure.Retryable);
        Assert.Contains("BaseUrl", failure.Message, StringComparison.Ordinal);
        Assert.Equal(0, media.DownloadRequests);
    }

    [Fact]
    public async Task A_wrong_api_key_fails_for_good_without_the_key_in_the_message()
    {
        const string wrongKey = "wrong-evolution-key-must-not-leak";
        var media = Fake.AddMedia(1_000, "image/jpeg");
        var request = Request(TestSupport.EvolutionAdapter(), Fake.EvolutionWebhook(media), "loja");

        var failure = await OpenFailsAsync(EvolutionDownloader(f, o => o.InstanceApiKeys["loja"] = wrongKey), request);

        Assert.False(failure.Retryable);
        Assert.Equal(401, failure.StatusCode);
        Assert.DoesNotContain(wrongKey, failure.Message, StringComparison.Ordinal);
        AssertClean(failure);
    }

    [Fact]
    public async Task Server_errors_are_retryable_and_a_reset_inside_the_base64_is_retryable()
    {
        var failing = Fake.AddMedia(1_000, "image/jpeg", new FakeMediaBehavior { ServerErrors = 1, ServerErrorStatus = 500 });
        var reset = Fake.AddMedia(2_000_000, "image/jpeg", new FakeMediaBehavior { ResetAfter = 500_000 });

        var error = await OpenFailsAsync(EvolutionDownloader(f), Request(TestSupport.EvolutionAdapter(), Fake.EvolutionWebhook(failing)));
        var cut = await ReadFailsAsync(EvolutionDownloader(f), Request(TestSupport.EvolutionAdapter(), Fake.EvolutionWebhook(reset)));

        Assert.True(error.Retryable);
        Assert.Equal(500, error.StatusCode);
        Assert.True(cut.Retryable);
    }

    [Fact]
    public async Task A_message_evolution_does_not_have_fails_for_good()
    {
        var reference = new MediaReference { MediaId = "3EB0NOTSTORED", MimeType = "image/jpeg" };

        var failure = await OpenFailsAsync(EvolutionDownloader(f), Request(WebhookProviderNames.Evolution, reference, providerInstanceId: "loja-centro"));

        Assert.False(failure.Retryable);
        Assert.Equal(400, failure.StatusCode);
    }
}
