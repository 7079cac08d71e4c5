using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Inbox.Reliability.Capture;
using Inbox.Reliability.Conformance;
using Inbox.Reliability.Events;
using Inbox.Reliability.Sqlite;
using Inbox.Reliability.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Inbox.Reliability.AspNetCore.Tests;

/// <summary>How a test host is set up.</summary>
public sealed class WebhookHostSettings
{
    public int MaxBodyBytes { get; set; } = 256 * 1024;

    public TimeSpan RetryAfter { get; set; } = TimeSpan.FromSeconds(7);

    public TimeSpan? SqliteBusyTimeout { get; set; }

    /// <summary>Kestrel's server-wide body limit; null = unlimited, so the endpoint's own limit is the only guard.</summary>
    public long? KestrelMaxRequestBodySize { get; set; }

    /// <summary>Registrations made before the library's (which use TryAdd, so these win).</summary>
    public Action<IServiceCollection>? Services { get; set; }

    /// <summary>Conventions added to the mapped endpoints.</summary>
    public Action<IEndpointConventionBuilder>? Conventions { get; set; }
}

/// <summary>
/// A real ASP.NET Core app on Kestrel (127.0.0.1, dynamic port) with a fresh SQLite file, every provider registered
/// with a secret, a recording event handler, captured logs, and an HttpClient pointed at it.
/// </summary>
public sealed class WebhookHost : IAsyncDisposable
{
    public const string MetaAppSecret = "meta-app-secret-7c1";
    public const string MetaVerifyToken = "meta-verify-token-3f9";
    public const string WahaHmacKey = "waha-hmac-key-88a";
    public const string ZApiSecret = "zapi-secret-51d";
    public const string EvolutionSecret = "evolution-secret-0b2";
    public const string WApiSecret = "wapi-secret-e40";

    public static readonly string[] Secrets = [MetaAppSecret, MetaVerifyToken, WahaHmacKey, ZApiSecret, EvolutionSecret, WApiSecret];

    private readonly WebApplication _app;

    private WebhookHost(WebApplication app, string folder, string connectionString, EventRecorder recorder, LogSink logs, WebhookHostSettings settings)
    {
        _app = app;
        Folder = folder;
        ConnectionString = connectionString;
        Recorder = recorder;
        Logs = logs;
        Settings = settings;
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        BaseAddress = new Uri(address);
        Client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
    }

    public string Folder { get; }

    public string ConnectionString { get; }

    public Uri BaseAddress { get; }

    public int Port => BaseAddress.Port;

    public HttpClient Client { get; }

    public EventRecorder Recorder { get; }

    public LogSink Logs { get; }

    public WebhookHostSettings Settings { get; }

    public IServiceProvider Services => _app.Services;

    public IInboxStore Store => _app.Services.GetRequiredService<IInboxStore>();

    public static async Task<WebhookHost> StartAsync(Action<WebhookHostSettings>? configure = null)
    {
        var settings = new WebhookHostSettings();
        configure?.Invoke(settings);
        var folder = Path.Combine(Path.GetTempPath(), "inbox-aspnetcore-tests", Guid.NewGuid().ToString("n"));
        Directory.CreateDirectory(folder);
        var connectionString = $"Data Source={Path.Combine(folder, "inbox.db")}";
        var recorder = new EventRecorder();
        var logs = new LogSink();

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = folder, EnvironmentName = "Testing" });
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = settings.KestrelMaxRequestBodySize);
        builder.Logging.ClearProviders();
        builder.Logging.SetMinimumLevel(LogLevel.Debug);
        builder.Logging.AddProvider(logs);
        builder.Services.AddSingleton(recorder);
        settings.Services?.Invoke(builder.Services);
        builder.Services.AddInboxReliability(o => o.ShutdownGracePeriod = TimeSpan.FromSeconds(1))
            .UseSqlite(connectionString, o =>
            {
                if (settings.SqliteBusyTimeout is { } busy) o.BusyTimeout = busy;
            })
            .AddMetaCloudApi(o =>
            {
                o.AppSecret = MetaAppSecret;
                o.VerifyToken = MetaVerifyToken;
            })
            .AddWaha(o => o.HmacKey = WahaHmacKey)
            .AddZApi(o => o.WebhookSecret = ZApiSecret)
            .AddEvolutionApi(o => o.WebhookSecret = EvolutionSecret)
            .AddWApi(o => o.WebhookSecret = WApiSecret)
            .AddEventHandler<RecordingEventHandler>()
            .AddWebhookPipeline(o =>
            {
                o.MaxBodyBytes = settings.MaxBodyBytes;
                o.RetryAfter = settings.RetryAfter;
            });

        var app = builder.Build();
        var endpoints = app.MapInboxWebhooks("/webhooks");
        settings.Conventions?.Invoke(endpoints);
        await app.StartAsync();
        return new WebhookHost(app, folder, connectionString, recorder, logs, settings);
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
        SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (IOException)
        {
            // A handle may still be closing; the temp folder is cleaned by the OS eventually.
        }
    }

    /// <summary>The provider adapter registered under <paramref name="provider"/>.</summary>
    public IWebhookProvider Adapter(string provider) => Services.GetServices<IWebhookProvider>().Single(p => p.Name == provider);

    /// <summary>A request with valid authenticity for the provider: Meta and WAHA signed, the others with the secret in the query.</summary>
    public static HttpRequestMessage SignedPost(string provider, string instance, byte[] body, string? contentType = "application/json", bool chunked = false)
    {
        var query = provider switch
        {
            "zapi" => "?secret=" + ZApiSecret,
            "evolution" => "?secret=" + EvolutionSecret,
            "wapi" => "?secret=" + WApiSecret,
            _ => "",
        };
        var request = new HttpRequestMessage(HttpMethod.Post, $"/webhooks/{provider}/{instance}{query}") { Content = new ByteArrayContent(body) };
        if (contentType is not null) request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        if (provider == "meta") request.Headers.Add("X-Hub-Signature-256", "sha256=" + HexHmacSha256(MetaAppSecret, body));
        if (provider == "waha")
        {
            request.Headers.Add("X-Webhook-Hmac", HexHmacSha512(WahaHmacKey, body));
            request.Headers.Add("X-Webhook-Hmac-Algorithm", "sha512");
        }

        if (chunked) request.Headers.TransferEncodingChunked = true;
        return request;
    }

    public Task<HttpResponseMessage> PostAsync(string provider, string instance, byte[] body, string? contentType = "application/json", bool chunked = false) =>
        Client.SendAsync(SignedPost(provider, instance, body, contentType, chunked));

    public static string HexHmacSha256(string key, byte[] body) => Convert.ToHexString(HMACSHA256.HashData(Encoding.UTF8.GetBytes(key), body)).ToLowerInvariant();

    public static string HexHmacSha512(string key, byte[] body) => Convert.ToHexString(HMACSHA512.HashData(Encoding.UTF8.GetBytes(key), body)).ToLowerInvariant();

    /// <summary>Every raw webhook row (without bodies).</summary>
    public Task<IReadOnlyList<StoredRawWebhook>> AllRawAsync() => Store.ListRawWebhooksAsync(new RawWebhookQuery { Limit = int.MaxValue });

    public Task WaitForRawStatusAsync(long id, RawWebhookStatus status, TimeSpan? timeout = null) =>
        Eventually.TrueAsync(async () => (await Store.GetRawWebhookAsync(id))?.Status == status, $"raw webhook {id} to be {status}", timeout);

    /// <summary>The events the handler has seen for one provider and instance, in the order it saw them.</summary>
    public IReadOnlyList<Dispatch.InboxEventContext> Seen(string provider, string instance) =>
        Recorder.Seen.Where(s => s.Event.Provider == provider && s.Event.Instance == instance).ToList();
}

/// <summary>A parsed answer of the capture endpoint.</summary>
public sealed record CaptureAnswer(HttpStatusCode Status, string? State, long? Id, string? Error, string? RetryAfter, string Raw, string? ContentType)
{
    public static async Task<CaptureAnswer> ReadAsync(HttpResponseMessage response)
    {
        var raw = await response.Content.ReadAsStringAsync();
        string? state = null, error = null;
        long? id = null;
        if (raw.Length > 0)
        {
            using var json = JsonDocument.Parse(raw);
            var root = json.RootElement;
            if (root.TryGetProperty("status", out var s)) state = s.GetString();
            if (root.TryGetProperty("id", out var i)) id = i.GetInt64();
            if (root.TryGetProperty("error", out var e)) error = e.GetString();
        }

        return new CaptureAnswer(response.StatusCode, state, id, error, response.Headers.RetryAfter?.ToString(), raw, response.Content.Headers.ContentType?.MediaType);
    }
}

/// <summary>Captures every log line the host writes.</summary>
public sealed class LogSink : ILoggerProvider
{
    public ConcurrentQueue<LogLine> Lines { get; } = new();

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    /// <summary>The lines of the library's own categories.</summary>
    public IEnumerable<LogLine> OfInbox => Lines.Where(l => l.Category.StartsWith("Inbox.Reliability", StringComparison.Ordinal));

    public void Dispose()
    {
    }

    private sealed class Logger(LogSink sink, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            sink.Lines.Enqueue(new LogLine(category, logLevel, eventId.Id, formatter(state, exception), exception?.ToString()));
    }
}

public sealed record LogLine(string Category, LogLevel Level, int EventId, string Message, string? Exception);

/// <summary>The fixtures copied next to the tests: folder name, provider name, and the bytes.</summary>
public static class Fixtures
{
    public static string Provider(string folder) => folder switch
    {
        "meta-cloud" => "meta",
        "z-api" => "zapi",
        "w-api" => "wapi",
        _ => folder,
    };

    public static byte[] Read(string folder, string name) => File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "Fixtures", folder, name + ".json"));

    public static IEnumerable<(string Folder, string Name)> All() =>
        Directory.GetDirectories(Path.Combine(AppContext.BaseDirectory, "Fixtures"))
            .SelectMany(d => Directory.GetFiles(d, "*.json").Select(f => (Path.GetFileName(d), Path.GetFileNameWithoutExtension(f))))
            .OrderBy(x => x.Item1, StringComparer.Ordinal).ThenBy(x => x.Item2, StringComparer.Ordinal);

    public static TheoryData<string, string> Theory()
    {
        var data = new TheoryData<string, string>();
        foreach (var (folder, name) in All()) data.Add(folder, name);
        return data;
    }
}
