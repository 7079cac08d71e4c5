using Inbox.Reliability.Conformance;
using Inbox.Reliability.Media;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Inbox.Reliability.AspNetCore.Tests;

/// <summary>
/// A real ASP.NET Core app on Kestrel (127.0.0.1, dynamic port) with the file-system media store in a fresh folder (or a
/// given one) and <c>MapInboxMedia("/media")</c>; <see cref="FileSystemMediaStoreOptions.LinkBaseUrl"/> points at it.
/// </summary>
public sealed class MediaHost : IMediaStoreUnderTest
{
    private readonly WebApplication _app;

    private MediaHost(WebApplication app, string folder, string root)
    {
        _app = app;
        Folder = folder;
        Root = root;
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        BaseAddress = new Uri(address);
        Client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
    }

    /// <summary>The host's temporary folder (its SQLite file).</summary>
    public string Folder { get; }

    /// <summary>The media store's root folder.</summary>
    public string Root { get; }

    public Uri BaseAddress { get; }

    public HttpClient Client { get; }

    public IServiceProvider Services => _app.Services;

    public IMediaStore Store => _app.Services.GetRequiredService<IMediaStore>();

    /// <summary>No multipart threshold here: a few megabytes go through the same streaming path as any size.</summary>
    public int LargeObjectSize => 3 * 1024 * 1024;

    /// <param name="root">The media root; a fresh temporary folder (deleted on dispose) when null.</param>
    /// <param name="time">The clock of the host (link expiry); the system clock when null.</param>
    /// <param name="configure">More store settings.</param>
    public static async Task<MediaHost> StartAsync(string? root = null, TimeProvider? time = null, Action<FileSystemMediaStoreOptions>? configure = null)
    {
        var folder = Path.Combine(Path.GetTempPath(), "inbox-media-tests", Guid.NewGuid().ToString("n"));
        Directory.CreateDirectory(folder);
        root ??= Path.Combine(folder, "media");

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = folder, EnvironmentName = "Testing" });
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        FileSystemMediaStoreOptions? options = null;
        // A media store turns the webhook pipeline's media downloads on, and the pipeline wants a provider.
        var inbox = builder.Services.AddInboxReliability(o => o.ShutdownGracePeriod = TimeSpan.FromSeconds(1))
            .UseSqlite($"Data Source={Path.Combine(folder, "inbox.db")}")
            .AddZApi(o => o.WebhookSecret = "media-tests")
            .UseFileSystemMediaStore(root, o =>
            {
                configure?.Invoke(o);
                options = o;
            });
        if (time is not null) inbox.UseTimeProvider(time);

        var app = builder.Build();
        try
        {
            app.MapInboxMedia("/media");
            await app.StartAsync();
        }
        catch
        {
            await app.DisposeAsync();
            SqliteConnection.ClearAllPools();
            Directory.Delete(folder, recursive: true);
            throw;
        }

        // Kestrel picks the port at start; the store reads the options when it is first resolved, which is after this.
        var host = new MediaHost(app, folder, root);
        options!.LinkBaseUrl ??= new Uri(host.BaseAddress, "/media").ToString();
        return host;
    }

    public Task<IReadOnlyList<string>> ListBackingEntriesAsync()
    {
        IReadOnlyList<string> entries = Directory.Exists(Root)
            ? Directory.GetFiles(Root, "*", SearchOption.AllDirectories)
                .Select(f => Path.GetRelativePath(Root, f).Replace(Path.DirectorySeparatorChar, '/'))
                .Where(f => f != "~link-signing-key")
                .Order(StringComparer.Ordinal)
                .ToList()
            : [];
        return Task.FromResult(entries);
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
        SqliteConnection.ClearAllPools();
        try
        {
            // A root given by the test is the test's to delete; a fresh one lives in this folder.
            Directory.Delete(Folder, recursive: true);
        }
        catch (IOException)
        {
            // A handle may still be closing; the temp folder is cleaned by the OS eventually.
        }
    }
}

/// <summary>The media store contract on the file system, read URLs served by <c>MapInboxMedia</c> on Kestrel.</summary>
public sealed class FileSystemMediaStoreConformance : MediaStoreConformanceTests
{
    protected override async Task<IMediaStoreUnderTest> CreateStoreAsync() => await MediaHost.StartAsync();
}
