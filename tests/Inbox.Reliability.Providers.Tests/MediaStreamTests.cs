using System.Security.Cryptography;
using System.Text;
using Inbox.Reliability.Media;
using Inbox.Reliability.Providers.Media;
using Microsoft.Extensions.DependencyInjection;

namespace Inbox.Reliability.Providers.Tests;

public class JsonBase64StreamTests
{
    private static async Task<(byte[] Bytes, Dictionary<string, string> Values)> DecodeAsync(string json, int readSize = 4096)
    {
        var source = new TrickleStream(Encoding.UTF8.GetBytes(json), readSize);
        var (content, values) = await JsonBase64Stream.OpenAsync(source, "test media", "base64", ["mimetype"], CancellationToken.None);
        await using (content)
        {
            using var copy = new MemoryStream();
            var buffer = new byte[readSize];
            int read;
            while ((read = await content.ReadAsync(buffer)) > 0) copy.Write(buffer, 0, read);
            return (copy.ToArray(), values);
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(4096)]
    public async Task Decodes_the_base64_property_whatever_the_read_sizes_and_keeps_the_properties_before_it(int readSize)
    {
        var bytes = RandomNumberGenerator.GetBytes(10_001);
        var json = $$"""{ "mediaType" : "imageMessage", "size": {"fileLength": {"low": 1, "high": 0}, "mimetype": "nested/ignored"}, "mimetype":"image/png", "base64" : "{{Convert.ToBase64String(bytes)}}", "buffer": null}""";

        var (decoded, values) = await DecodeAsync(json, readSize);

        Assert.Equal(bytes, decoded);
        Assert.Equal("image/png", values["mimetype"]);
    }

    [Fact]
    public async Task Accepts_json_escapes_line_breaks_and_a_data_url_prefix()
    {
        var bytes = RandomNumberGenerator.GetBytes(3_000);
        var base64 = Convert.ToBase64String(bytes, Base64FormattingOptions.InsertLineBreaks)
            .Replace("/", "\\/", StringComparison.Ordinal).Replace("+", "\\u002B", StringComparison.Ordinal).Replace("\r\n", "\\r\\n", StringComparison.Ordinal);

        var (decoded, _) = await DecodeAsync($$"""{"base64":"data:image/jpeg;base64,{{base64}}"}""", readSize: 7);

        Assert.Equal(bytes, decoded);
    }

    [Fact]
    public async Task Invalid_base64_is_not_retryable()
    {
        var failure = await Assert.ThrowsAsync<MediaDownloadException>(() => DecodeAsync("""{"base64":"AAAA*AAA"}"""));

        Assert.False(failure.Retryable);
        Assert.DoesNotContain("AAAA", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_answer_cut_inside_the_base64_is_retryable()
    {
        var failure = await Assert.ThrowsAsync<MediaDownloadException>(() => DecodeAsync("""{"mimetype":"image/png","base64":"AAAAAAAAAAAA"""));

        Assert.True(failure.Retryable);
    }

    [Theory]
    [InlineData("""{"mimetype":"image/png","base64":null}""")]
    [InlineData("""{"mimetype":"image/png"}""")]
    [InlineData("""[1,2]""")]
    [InlineData("""<html>proxy error</html>""")]
    public async Task An_answer_without_a_base64_string_is_not_retryable(string json)
    {
        var failure = await Assert.ThrowsAsync<MediaDownloadException>(() => DecodeAsync(json));

        Assert.False(failure.Retryable);
    }

    /// <summary>Hands out at most a few bytes per read, as a slow network does.</summary>
    private sealed class TrickleStream(byte[] data, int chunk) : MemoryStream(data)
    {
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            base.ReadAsync(buffer[..Math.Min(buffer.Length, chunk)], cancellationToken);
    }
}

public class MediaHttpClientTests
{
    [Theory]
    [InlineData("http://waha:3000/api/files/loja/a.jpeg", "https://waha.example.com", "https://waha.example.com/api/files/loja/a.jpeg")]
    [InlineData("http://localhost:3000/api/files/loja/a%40c.us.jpeg?x=1", "https://proxy.example.com/waha/", "https://proxy.example.com/waha/api/files/loja/a%40c.us.jpeg?x=1")]
    public void Waha_urls_are_rebased_on_the_configured_origin_keeping_path_and_query(string reported, string baseUrl, string expected) =>
        Assert.Equal(expected, WahaMediaDownloader.Rebase(new Uri(reported), new Uri(baseUrl)).AbsoluteUri);

    [Fact]
    public void Urls_in_messages_lose_their_query_and_user_info()
    {
        var described = MediaHttpClient.Describe(new Uri("https://user:pass@lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1&hash=SECRET"));

        Assert.Equal("https://lookaside.fbsbx.com/whatsapp_business/attachments/", described);
    }

    [Fact]
    public void Path_segments_are_appended_escaped_to_a_base_with_a_path() =>
        Assert.Equal("https://graph.facebook.com/v21.0/12%2F3", MediaHttpClient.Combine(new Uri("https://graph.facebook.com/v21.0/"), "12/3").AbsoluteUri);

    [Fact]
    public async Task A_redirect_from_https_to_http_is_not_followed()
    {
        using var http = new MediaHttpClient(new RedirectingHandler("http://cdn.example.com/file"), TimeProvider.System);
        var request = new MediaRequest(HttpMethod.Get, new Uri("https://media.example.com/file?sig=SECRET"), "test media", new ZApiOptions());

        var failure = await Assert.ThrowsAsync<MediaDownloadException>(() => http.SendAsync(request, CancellationToken.None));

        Assert.False(failure.Retryable);
        Assert.DoesNotContain("SECRET", failure.Message, StringComparison.Ordinal);
    }

    private sealed class RedirectingHandler(string location) : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            Task.FromResult(new HttpResponseMessage(System.Net.HttpStatusCode.Found) { RequestMessage = request, Headers = { Location = new Uri(location) } });
    }
}

public class MediaRegistrationTests
{
    [Fact]
    public void Each_provider_registers_its_downloader_once_sharing_one_client_disposed_with_the_container()
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddInboxReliability()
            .AddMetaCloudApi(o => o.AppSecret = "app-secret").AddMetaCloudApi()
            .AddZApi().AddZApi()
            .AddEvolutionApi()
            .AddWaha()
            .AddWApi();
        MediaHttpClient client;
        using (var provider = services.BuildServiceProvider())
        {
            var downloaders = provider.GetServices<IMediaDownloader>().ToList();
            Assert.Equal([WebhookProviderNames.Meta, WebhookProviderNames.ZApi, WebhookProviderNames.Evolution, WebhookProviderNames.Waha, WebhookProviderNames.WApi],
                downloaders.Select(d => d.Provider));
            client = provider.GetRequiredService<MediaHttpClient>();
            Assert.Same(client, provider.GetRequiredService<MediaHttpClient>());
        }

        var request = new MediaRequest(HttpMethod.Get, new Uri("http://127.0.0.1:1/x"), "test media", new ZApiOptions());
        Assert.ThrowsAny<ObjectDisposedException>(() => client.SendAsync(request, CancellationToken.None).GetAwaiter().GetResult());
    }

    [Fact]
    public void Media_settings_are_checked_at_startup_with_every_problem_listed()
    {
        var services = new ServiceCollection();
        services.AddInboxReliability()
            .AddMetaCloudApi(o => { o.AppSecret = "s"; o.AccessToken = " "; o.GraphApiBaseUrl = new Uri("/relative", UriKind.Relative); o.MediaRequestTimeout = TimeSpan.Zero; })
            .AddZApi(o => o.MediaReadIdleTimeout = TimeSpan.FromSeconds(-1))
            .AddEvolutionApi(o => { o.BaseUrl = new Uri("ftp://evo.example.com"); o.InstanceApiKeys["loja"] = ""; })
            .AddWaha(o => { o.ApiKey = ""; o.BaseUrl = new Uri("https://waha.example.com/?token=x"); })
            .AddWApi(o => o.ApiToken = "");
        using var provider = services.BuildServiceProvider();

        var problems = provider.GetServices<IInboxConfigurationValidator>().SelectMany(v => v.Validate()).ToList();

        Assert.Contains(problems, p => p.Contains("AddMetaCloudApi: AccessToken is empty", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("AddMetaCloudApi: GraphApiBaseUrl must be an absolute", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("AddMetaCloudApi: MediaRequestTimeout must be positive", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("AddZApi: MediaReadIdleTimeout must be positive", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("AddEvolutionApi: BaseUrl must be an absolute", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("AddEvolutionApi: InstanceApiKeys[\"loja\"] is empty", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("AddWaha: ApiKey is empty", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("AddWaha: BaseUrl must not have a query string", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("AddWApi: ApiToken is empty", StringComparison.Ordinal));
    }
}
