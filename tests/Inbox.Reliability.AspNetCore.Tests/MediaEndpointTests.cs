using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using Inbox.Reliability.Conformance;
using Inbox.Reliability.Media;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace Inbox.Reliability.AspNetCore.Tests;

/// <summary>MapInboxMedia over real HTTP: signature and expiry checks, 403/404, ranges, headers, the persisted signing key.</summary>
public sealed class MediaEndpointTests
{
    private static byte[] Bytes(int count, int seed)
    {
        var bytes = new byte[count];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    private static string Sha256(byte[] bytes) => Convert.ToHexString(SHA256.HashData(bytes)).ToLowerInvariant();

    /// <summary>The link's path and query, to send to the host's own client.</summary>
    private static string Relative(Uri url) => url.PathAndQuery;

    [Fact]
    public async Task A_valid_link_streams_the_file_with_its_headers()
    {
        await using var host = await MediaHost.StartAsync();
        var bytes = Bytes(70_000, seed: 1);
        await host.Store.PutAsync("inst/2026/01/02/7.jpg", new MemoryStream(bytes), "image/jpeg");
        var url = await host.Store.GetReadUrlAsync("inst/2026/01/02/7.jpg", TimeSpan.FromMinutes(10));
        Assert.StartsWith(new Uri(host.BaseAddress, "/media/inst/2026/01/02/7.jpg?exp=").ToString(), url.ToString(), StringComparison.Ordinal);

        using var response = await host.Client.GetAsync(Relative(url));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(bytes, await response.Content.ReadAsByteArrayAsync());
        Assert.Equal("image/jpeg", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(bytes.Length, response.Content.Headers.ContentLength);
        Assert.Equal($"\"{Sha256(bytes)}\"", response.Headers.ETag?.Tag);
        Assert.Equal("bytes", Assert.Single(response.Headers.AcceptRanges));
        Assert.Equal("nosniff", Assert.Single(response.Headers.GetValues("X-Content-Type-Options")));
        Assert.Equal("sandbox", Assert.Single(response.Headers.GetValues("Content-Security-Policy")));
        Assert.True(response.Headers.CacheControl?.Private);
        Assert.InRange(response.Headers.CacheControl!.MaxAge!.Value.TotalSeconds, 500, 601);

        using var head = await host.Client.SendAsync(new HttpRequestMessage(HttpMethod.Head, Relative(url)));
        Assert.Equal(HttpStatusCode.OK, head.StatusCode);
        Assert.Equal(bytes.Length, head.Content.Headers.ContentLength);
        Assert.Empty(await head.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task An_expired_link_is_refused_with_403_by_the_hosts_clock()
    {
        var time = new ManualTimeProvider();
        await using var host = await MediaHost.StartAsync(time: time);
        await host.Store.PutAsync("a/1.png", new MemoryStream([1, 2, 3]), "image/png");
        var url = await host.Store.GetReadUrlAsync("a/1.png", TimeSpan.FromMinutes(5));

        time.Advance(TimeSpan.FromMinutes(5) - TimeSpan.FromSeconds(1));
        using (var stillValid = await host.Client.GetAsync(Relative(url)))
        {
            Assert.Equal(HttpStatusCode.OK, stillValid.StatusCode);
            Assert.Equal([1, 2, 3], await stillValid.Content.ReadAsByteArrayAsync());
        }

        time.Advance(TimeSpan.FromSeconds(1));
        using var expired = await host.Client.GetAsync(Relative(url));
        Assert.Equal(HttpStatusCode.Forbidden, expired.StatusCode);
        Assert.Equal("The link has expired.", await expired.Content.ReadAsStringAsync());
        Assert.Equal("no-store", expired.Headers.CacheControl?.ToString());
    }

    [Fact]
    public async Task Tampered_links_are_refused_with_403()
    {
        await using var host = await MediaHost.StartAsync();
        await host.Store.PutAsync("a/1.png", new MemoryStream([1]), "image/png");
        await host.Store.PutAsync("a/2.png", new MemoryStream([2]), "image/png");
        var url = await host.Store.GetReadUrlAsync("a/1.png", TimeSpan.FromMinutes(5));
        var query = System.Web.HttpUtility.ParseQueryString(url.Query);
        var exp = query["exp"]!;
        var sig = query["sig"]!;
        var flipped = (sig[0] == 'A' ? 'B' : 'A') + sig[1..];

        string[] tampered =
        [
            $"/media/a/1.png?exp={exp}&sig={flipped}",                     // signature changed
            $"/media/a/1.png?exp={long.Parse(exp) + 3600}&sig={sig}",      // expiry extended
            $"/media/a/2.png?exp={exp}&sig={sig}",                         // another key
            $"/media/a/1.png?exp={exp}",                                   // no signature
            $"/media/a/1.png?sig={sig}",                                   // no expiry
            "/media/a/1.png",                                              // nothing
            $"/media/a/1.png?exp={exp}&sig={sig}&sig={sig}",               // two signatures
            $"/media/a/1.png?exp=-{exp}&sig={sig}",                        // a sign
            $"/media/a/1.png?exp={exp}&sig={sig[..^2]}",                   // truncated
            $"/media/a/1.png?exp={exp}&sig=%00{sig}",                      // junk
            $"/media/a/1.PNG?exp={exp}&sig={sig}",                         // keys are case-sensitive
        ];
        foreach (var path in tampered)
        {
            using var response = await host.Client.GetAsync(path);
            Assert.True(response.StatusCode == HttpStatusCode.Forbidden, $"{path} answered {(int)response.StatusCode}");
            Assert.Equal("The link is not valid.", await response.Content.ReadAsStringAsync());
        }

        using var genuine = await host.Client.GetAsync(Relative(url));
        Assert.Equal(HttpStatusCode.OK, genuine.StatusCode);
    }

    [Fact]
    public async Task Paths_outside_the_store_are_refused_before_the_file_system()
    {
        await using var host = await MediaHost.StartAsync();
        await File.WriteAllTextAsync(Path.Combine(host.Folder, "secret.txt"), "not media");
        var url = await host.Store.GetReadUrlAsync("a/1.png", TimeSpan.FromMinutes(5));
        await using var raw = await RawHttp.ConnectAsync(host.BaseAddress.Port);
        foreach (var path in new[] { "/media/../secret.txt", "/media/%2e%2e/secret.txt", "/media/a/..%2f..%2fsecret.txt", "/media/~link-signing-key", "/media/a/1.png~meta" })
        {
            using var response = await host.Client.GetAsync(path + url.Query);
            Assert.True(response.StatusCode is HttpStatusCode.Forbidden or HttpStatusCode.NotFound, $"{path} answered {(int)response.StatusCode}");
            Assert.DoesNotContain("not media", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        // Sent as is (HttpClient would normalize the dots away).
        await raw.SendAsync($"GET /media/../secret.txt{url.Query} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        var (status, _) = await raw.ReadHeadAsync(TimeSpan.FromSeconds(10));
        Assert.True(status is 403 or 404 or 400, $"raw traversal answered {status}");
    }

    [Fact]
    public async Task A_valid_link_to_a_missing_object_answers_404()
    {
        await using var host = await MediaHost.StartAsync();
        var never = await host.Store.GetReadUrlAsync("a/never.png", TimeSpan.FromMinutes(5));
        using (var response = await host.Client.GetAsync(Relative(never)))
        {
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        }

        await host.Store.PutAsync("a/deleted.png", new MemoryStream([1]), null);
        var deleted = await host.Store.GetReadUrlAsync("a/deleted.png", TimeSpan.FromMinutes(5));
        Assert.True(await host.Store.DeleteAsync("a/deleted.png"));
        using (var response = await host.Client.GetAsync(Relative(deleted)))
        {
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        }
    }

    [Fact]
    public async Task Range_requests_get_206_with_the_slice()
    {
        await using var host = await MediaHost.StartAsync();
        var bytes = Bytes(10_000, seed: 2);
        await host.Store.PutAsync("v/clip.mp4", new MemoryStream(bytes), "video/mp4");
        var url = Relative(await host.Store.GetReadUrlAsync("v/clip.mp4", TimeSpan.FromMinutes(5)));

        using (var request = new HttpRequestMessage(HttpMethod.Get, url))
        {
            request.Headers.Range = new RangeHeaderValue(1000, 1999);
            using var response = await host.Client.SendAsync(request);
            Assert.Equal(HttpStatusCode.PartialContent, response.StatusCode);
            Assert.Equal("bytes 1000-1999/10000", response.Content.Headers.ContentRange?.ToString());
            Assert.Equal(1000, response.Content.Headers.ContentLength);
            Assert.Equal(bytes[1000..2000], await response.Content.ReadAsByteArrayAsync());
        }

        using (var request = new HttpRequestMessage(HttpMethod.Get, url))
        {
            request.Headers.Range = new RangeHeaderValue(null, 100);
            using var response = await host.Client.SendAsync(request);
            Assert.Equal(HttpStatusCode.PartialContent, response.StatusCode);
            Assert.Equal(bytes[^100..], await response.Content.ReadAsByteArrayAsync());
        }

        using (var request = new HttpRequestMessage(HttpMethod.Get, url))
        {
            request.Headers.Range = new RangeHeaderValue(20_000, 30_000);
            using var response = await host.Client.SendAsync(request);
            Assert.Equal(HttpStatusCode.RequestedRangeNotSatisfiable, response.StatusCode);
        }

        using (var request = new HttpRequestMessage(HttpMethod.Get, url))
        {
            request.Headers.IfNoneMatch.Add(new EntityTagHeaderValue($"\"{Sha256(bytes)}\""));
            using var response = await host.Client.SendAsync(request);
            Assert.Equal(HttpStatusCode.NotModified, response.StatusCode);
        }
    }

    [Fact]
    public async Task The_generated_signing_key_is_kept_so_links_survive_a_restart()
    {
        var root = Path.Combine(Path.GetTempPath(), "inbox-media-tests", Guid.NewGuid().ToString("n"), "media");
        try
        {
            string link;
            await using (var first = await MediaHost.StartAsync(root))
            {
                await first.Store.PutAsync("k/1.ogg", new MemoryStream([4, 5, 6]), "audio/ogg");
                link = Relative(await first.Store.GetReadUrlAsync("k/1.ogg", TimeSpan.FromHours(1)));
            }

            var keyFile = Path.Combine(root, "~link-signing-key");
            Assert.True(File.Exists(keyFile));
            if (!OperatingSystem.IsWindows()) Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(keyFile));
            Assert.True((await File.ReadAllTextAsync(keyFile)).Trim().Length >= FileSystemMediaStoreOptions.MinLinkSigningKeyLength);

            await using (var second = await MediaHost.StartAsync(root))
            {
                using var response = await second.Client.GetAsync(link);
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                Assert.Equal([4, 5, 6], await response.Content.ReadAsByteArrayAsync());
            }

            // Another key (configured) does not accept the old links.
            await using (var third = await MediaHost.StartAsync(root, configure: o => o.LinkSigningKey = new string('k', 40)))
            {
                using var response = await third.Client.GetAsync(link);
                Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
            }
        }
        finally
        {
            if (Directory.Exists(Path.GetDirectoryName(root))) Directory.Delete(Path.GetDirectoryName(root)!, recursive: true);
        }
    }

    [Fact]
    public async Task A_configured_signing_key_is_shared_by_hosts_of_the_same_folder()
    {
        var root = Path.Combine(Path.GetTempPath(), "inbox-media-tests", Guid.NewGuid().ToString("n"), "media");
        var secret = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        try
        {
            await using var a = await MediaHost.StartAsync(root, configure: o => o.LinkSigningKey = secret);
            await using var b = await MediaHost.StartAsync(root, configure: o => o.LinkSigningKey = secret);
            await a.Store.PutAsync("s/1.bin", new MemoryStream([9]), null);
            using var response = await b.Client.GetAsync(Relative(await a.Store.GetReadUrlAsync("s/1.bin", TimeSpan.FromMinutes(1))));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("application/octet-stream", response.Content.Headers.ContentType?.MediaType);
            Assert.False(File.Exists(Path.Combine(root, "~link-signing-key")));
        }
        finally
        {
            if (Directory.Exists(Path.GetDirectoryName(root))) Directory.Delete(Path.GetDirectoryName(root)!, recursive: true);
        }
    }

    [Fact]
    public async Task MapInboxMedia_without_the_file_system_store_fails_with_the_fix()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Services.AddInboxReliability().UseSqlite("Data Source=unused.db");
        await using var app = builder.Build();
        var error = Assert.Throws<InvalidOperationException>(() => app.MapInboxMedia());
        Assert.Contains("UseFileSystemMediaStore", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Bad_media_options_and_two_media_stores_fail_startup()
    {
        var folder = Path.Combine(Path.GetTempPath(), "inbox-media-tests", Guid.NewGuid().ToString("n"));
        Directory.CreateDirectory(folder);
        try
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.Services.AddInboxReliability()
                .UseSqlite($"Data Source={Path.Combine(folder, "inbox.db")}")
                .UseFileSystemMediaStore(Path.Combine(folder, "a"), o => o.LinkBaseUrl = "/media")
                .UseFileSystemMediaStore(Path.Combine(folder, "b"));
            await using var app = builder.Build();
            var error = await Assert.ThrowsAsync<InboxConfigurationException>(() => app.StartAsync());
            Assert.Contains(error.Errors, e => e.StartsWith("UseFileSystemMediaStore: LinkBaseUrl must be an absolute http or https URL", StringComparison.Ordinal));
            Assert.Contains("Inbox.Reliability has 2 media stores configured (UseFileSystemMediaStore(), UseFileSystemMediaStore()); keep exactly one.", error.Errors);
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task A_media_store_registered_by_the_host_wins()
    {
        var services = new ServiceCollection();
        var own = new OwnStore();
        services.AddSingleton<IMediaStore>(own);
        services.AddInboxReliability().UseFileSystemMediaStore("data/media");
        await using var provider = services.BuildServiceProvider();
        Assert.Same(own, provider.GetRequiredService<IMediaStore>());
    }

    private sealed class OwnStore : IMediaStore
    {
        public Task<MediaObject> PutAsync(string key, Stream content, string? contentType, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public Task<MediaObject?> GetAsync(string key, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public Task<Stream> OpenReadAsync(string key, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public Task<bool> DeleteAsync(string key, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public Task<Uri> GetReadUrlAsync(string key, TimeSpan expiresIn, CancellationToken cancellationToken = default) => throw new NotSupportedException();
    }

    [Fact]
    public async Task Read_urls_need_LinkBaseUrl()
    {
        var services = new ServiceCollection();
        var root = Path.Combine(Path.GetTempPath(), "inbox-media-tests", Guid.NewGuid().ToString("n"));
        services.AddInboxReliability().UseFileSystemMediaStore(root);
        await using var provider = services.BuildServiceProvider();
        var store = provider.GetRequiredService<IMediaStore>();
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => store.GetReadUrlAsync("a/1.bin", TimeSpan.FromMinutes(1)));
        Assert.Contains("LinkBaseUrl", error.Message, StringComparison.Ordinal);
        Assert.Contains("MapInboxMedia", error.Message, StringComparison.Ordinal);
    }
}
