using System.Buffers.Text;
using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;

namespace Inbox.Reliability.Testing;

/// <summary>
/// A fake of the WhatsApp providers' media APIs, served by Kestrel on 127.0.0.1 (a free port), for tests:
/// <list type="bullet">
/// <item>Meta: <c>GET /v21.0/{media-id}</c> (bearer checked) answers <c>{url, mime_type, sha256, file_size, id}</c>; the URL
/// (<c>/whatsapp_business/attachments/?mid=…&amp;ext=…&amp;hash=…</c>, bearer checked) serves the bytes. Every URL handed out
/// is a new one; <see cref="FakeMediaBehavior.ExpiredUrls"/> makes the first ones answer 404, as an expired URL does.</item>
/// <item>Z-API: <c>GET /zapi/instances/{instance}/{file}</c>, no credentials.</item>
/// <item>WAHA: <c>GET /api/files/{session}/{file}</c> with <c>X-Api-Key</c> checked.</item>
/// <item>Evolution: <c>POST /chat/getBase64FromMediaMessage/{instance}</c> with <c>apikey</c> checked and
/// <c>{"message":{"key":{"id"}}}</c> answers <c>201 {mediaType, fileName, size, mimetype, base64, buffer}</c>, the base64
/// written while it is encoded; the S3 copy (<c>mediaUrl</c>) is <c>GET /s3/evolution/{instance}/{file}</c>.</item>
/// <item>W-API: <c>POST /wapi/v1/message/download-media?instanceId=…</c> with the bearer and <c>{phone, messageId}</c> answers
/// <c>{"fileLink"}</c>; the link (<c>GET /wapi/files/{file}</c>) needs no credentials.</item>
/// </list>
/// Media are registered with <see cref="AddMedia(byte[], string, FakeMediaBehavior?)"/> or, for large sizes, with
/// <see cref="AddMedia(long, string, FakeMediaBehavior?)"/> (bytes generated while they are sent, never held). Scripted
/// failures (<see cref="FakeMediaBehavior"/>) apply to the request that returns the file's bytes. Requests are counted per
/// media and logged with their headers. The webhook builders (<see cref="MetaWebhook"/>...) give payloads shaped like
/// each provider's that point at this server.
/// </summary>
public sealed class FakeMediaProvider : IAsyncDisposable
{
    /// <summary>The bearer the fake Graph API accepts.</summary>
    public const string MetaAccessToken = "EAAG-fake-meta-access-token-0001";

    /// <summary>The <c>X-Api-Key</c> the fake WAHA accepts.</summary>
    public const string WahaApiKey = "fake-waha-api-key-0001";

    /// <summary>The <c>apikey</c> the fake Evolution accepts.</summary>
    public const string EvolutionApiKey = "fake-evolution-api-key-0001";

    /// <summary>The bearer the fake W-API accepts.</summary>
    public const string WApiToken = "fake-wapi-token-0001";

    /// <summary>Every credential above, for asserting none leaks.</summary>
    public static readonly IReadOnlyList<string> Secrets = [MetaAccessToken, WahaApiKey, EvolutionApiKey, WApiToken];

    private const int ChunkBytes = 64 * 1024;
    private readonly ConcurrentDictionary<string, FakeMedia> _byId = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, FakeMedia> _byMessageId = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, (FakeMedia Media, int Generation)> _metaUrls = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<FakeRequest> _log = new();
    private readonly CancellationTokenSource _stopping = new();
    private WebApplication? _app;
    private int _next;

    private FakeMediaProvider()
    {
    }

    /// <summary>The server's address, <c>http://127.0.0.1:{port}</c>.</summary>
    public Uri BaseUrl { get; private set; } = null!;

    /// <summary>The same server on a second port: another origin, for redirects that must not carry credentials.</summary>
    public Uri OtherOriginUrl { get; private set; } = null!;

    /// <summary>The fake Graph API base (<c>MetaCloudApiOptions.GraphApiBaseUrl</c>).</summary>
    public Uri GraphApiBaseUrl => new(BaseUrl, "/v21.0");

    /// <summary>The fake W-API base (<c>WApiOptions.BaseUrl</c>).</summary>
    public Uri WApiBaseUrl => new(BaseUrl, "/wapi/v1");

    /// <summary>Every request received so far, in arrival order.</summary>
    public IReadOnlyList<FakeRequest> Requests => _log.ToArray();

    /// <summary>Starts the server.</summary>
    public static async Task<FakeMediaProvider> StartAsync()
    {
        var fake = new FakeMediaProvider();
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore().ConfigureKestrel(kestrel =>
        {
            kestrel.Listen(IPAddress.Loopback, 0);
            kestrel.Listen(IPAddress.Loopback, 0);
        });
        var app = builder.Build();
        app.Run(fake.HandleAsync);
        await app.StartAsync();
        fake._app = app;
        var addresses = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses
            .Select(a => new Uri(a)).OrderBy(a => a.Port).ToArray();
        fake.BaseUrl = addresses[0];
        fake.OtherOriginUrl = addresses[1];
        return fake;
    }

    /// <summary>Registers a media with these bytes.</summary>
    public FakeMedia AddMedia(byte[] content, string mimeType = "image/jpeg", FakeMediaBehavior? behavior = null)
    {
        ArgumentNullException.ThrowIfNull(content);
        return Register(new FakeMedia(NextNumber(), content, content.Length, mimeType, behavior ?? FakeMediaBehavior.Ok));
    }

    /// <summary>Registers a media of <paramref name="size"/> bytes, generated (deterministically) while they are sent.</summary>
    public FakeMedia AddMedia(long size, string mimeType = "application/octet-stream", FakeMediaBehavior? behavior = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(size);
        return Register(new FakeMedia(NextNumber(), null, size, mimeType, behavior ?? FakeMediaBehavior.Ok));
    }

    /// <summary>The requests received for one path prefix (e.g. <c>/api/files/</c>).</summary>
    public IReadOnlyList<FakeRequest> RequestsTo(string pathPrefix) => Requests.Where(r => r.Path.StartsWith(pathPrefix, StringComparison.Ordinal)).ToArray();

    private int NextNumber() => Interlocked.Increment(ref _next);

    private FakeMedia Register(FakeMedia media)
    {
        _byId[media.Id] = media;
        _byMessageId[media.MessageId] = media;
        return media;
    }

    // ---------------------------------------------------------------- webhooks

    /// <summary>A Meta <c>messages</c> webhook with this media (its id, mime type and SHA-256; the URL only when asked, as Meta rolls it out).</summary>
    public string MetaWebhook(FakeMedia media, bool includeUrl = false, string phoneNumberId = "109000000000001")
    {
        ArgumentNullException.ThrowIfNull(media);
        var type = media.Kind switch { "image" => "image", "audio" => "audio", "video" => "video", _ => "document" };
        var content = new Dictionary<string, object?>
        {
            ["mime_type"] = media.MimeType,
            ["sha256"] = media.Sha256Base64,
            ["id"] = media.Id,
        };
        if (type == "document") content["filename"] = media.FileName;
        if (includeUrl) content["url"] = IssueMetaUrl(media).AbsoluteUri;
        var message = new Dictionary<string, object?>
        {
            ["from"] = "5511999990001",
            ["id"] = "wamid." + media.MessageId,
            ["timestamp"] = "1767290060",
            ["type"] = type,
            [type] = content,
        };
        return JsonSerializer.Serialize(new
        {
            @object = "whatsapp_business_account",
            entry = new[]
            {
                new
                {
                    id = "100000000000001",
                    changes = new[]
                    {
                        new
                        {
                            value = new
                            {
                                messaging_product = "whatsapp",
                                metadata = new { display_phone_number = "5511999990000", phone_number_id = phoneNumberId },
                                contacts = new[] { new { profile = new { name = "Ana Souza" }, wa_id = "5511999990001" } },
                                messages = new[] { message },
                            },
                            field = "messages",
                        },
                    },
                },
            },
        });
    }

    /// <summary>A Z-API <c>ReceivedCallback</c> with this media's storage URL.</summary>
    public string ZApiWebhook(FakeMedia media, string instanceId = "3E0FAKEINSTANCE00000000000000001")
    {
        ArgumentNullException.ThrowIfNull(media);
        var url = ZApiUrl(media, instanceId).AbsoluteUri;
        var payload = new Dictionary<string, object?>
        {
            ["type"] = "ReceivedCallback",
            ["instanceId"] = instanceId,
            ["messageId"] = media.MessageId,
            ["phone"] = "5511999990001",
            ["fromMe"] = false,
            ["momment"] = 1767290060000,
            ["status"] = "RECEIVED",
            ["senderName"] = "Ana Souza",
            ["isGroup"] = false,
            ["connectedPhone"] = "5511999990000",
        };
        payload[media.Kind is "image" or "audio" or "video" ? media.Kind : "document"] = media.Kind switch
        {
            "image" => new Dictionary<string, object?> { ["mimeType"] = media.MimeType, ["imageUrl"] = url, ["caption"] = "Foto do produto" },
            "audio" => new Dictionary<string, object?> { ["mimeType"] = media.MimeType, ["audioUrl"] = url, ["ptt"] = true },
            "video" => new Dictionary<string, object?> { ["mimeType"] = media.MimeType, ["videoUrl"] = url },
            _ => new Dictionary<string, object?> { ["mimeType"] = media.MimeType, ["documentUrl"] = url, ["fileName"] = media.FileName },
        };
        return JsonSerializer.Serialize(payload);
    }

    /// <summary>
    /// A WAHA <c>message</c> event with this media's <c>media.url</c>; <paramref name="reportedOrigin"/> replaces the URL's
    /// origin, as a WAHA that reports its internal address does (<c>http://waha:3000</c>).
    /// </summary>
    public string WahaWebhook(FakeMedia media, string session = "loja-centro", Uri? reportedOrigin = null)
    {
        ArgumentNullException.ThrowIfNull(media);
        var id = $"false_5511999990001@c.us_{media.MessageId}";
        var url = new Uri(reportedOrigin ?? BaseUrl, $"/api/files/{session}/{id}.{media.Extension}");
        return JsonSerializer.Serialize(new
        {
            id = "evt_01kdx0fake" + media.Id.PadLeft(16, '0'),
            timestamp = 1767290061456,
            @event = "message",
            session,
            me = new { id = "5511999990000@c.us", pushName = "Loja Centro" },
            payload = new
            {
                id,
                timestamp = 1767290060,
                from = "5511999990001@c.us",
                fromMe = false,
                source = "app",
                to = "5511999990000@c.us",
                body = "",
                hasMedia = true,
                media = new { url = url.AbsoluteUri, mimetype = media.MimeType, filename = media.Kind == "document" ? media.FileName : null, error = (string?)null },
                ack = 2,
                ackName = "DEVICE",
                _data = new { },
            },
            engine = "GOWS",
        });
    }

    /// <summary>
    /// An Evolution <c>messages.upsert</c> with this media (Baileys fields: encrypted CDN URL, <c>fileSha256</c> as an
    /// index-keyed object, <c>fileLength</c> as a long), and its S3 <c>mediaUrl</c> when asked.
    /// </summary>
    public string EvolutionWebhook(FakeMedia media, string instance = "loja-centro", bool withMediaUrl = false)
    {
        ArgumentNullException.ThrowIfNull(media);
        var type = media.Kind switch { "image" => "imageMessage", "audio" => "audioMessage", "video" => "videoMessage", _ => "documentMessage" };
        var sha = Convert.FromBase64String(media.Sha256Base64);
        var content = new Dictionary<string, object?>
        {
            ["url"] = "https://mmg.whatsapp.net/o1/v/t62.7118-24/f1/m233/FAKE?ccb=9-4&oh=FAKE&oe=FAKE",
            ["mimetype"] = media.MimeType,
            ["fileSha256"] = sha.Select((b, i) => (b, i)).ToDictionary(x => x.i.ToString(CultureInfo.InvariantCulture), x => (int)x.b),
            ["fileLength"] = new { low = (int)(media.Size & 0xFFFFFFFF), high = (int)(media.Size >> 32), unsigned = true },
            ["mediaKey"] = new Dictionary<string, int> { ["0"] = 74, ["1"] = 50 },
            ["directPath"] = "/o1/v/t62.7118-24/f1/m233/FAKE?ccb=9-4&oh=FAKE&oe=FAKE",
        };
        if (type == "documentMessage") content["fileName"] = media.FileName;
        var message = new Dictionary<string, object?> { [type] = content };
        if (withMediaUrl) message["mediaUrl"] = EvolutionS3Url(media, instance).AbsoluteUri;
        return JsonSerializer.Serialize(new
        {
            @event = "messages.upsert",
            instance,
            data = new
            {
                key = new { remoteJid = "5511999990001@s.whatsapp.net", fromMe = false, id = media.MessageId },
                pushName = "Ana Souza",
                status = "DELIVERY_ACK",
                message,
                messageType = type,
                messageTimestamp = 1767290060,
                instanceId = "6f1c2d3e-0000-4000-8000-000000000001",
                source = "android",
            },
            destination = "https://hooks.example.com/evolution",
            date_time = "2026-01-01T15:53:20.000Z",
            sender = "5511999990000@s.whatsapp.net",
            server_url = BaseUrl.AbsoluteUri,
        });
    }

    /// <summary>A W-API <c>webhookReceived</c> with this media (Baileys content; the CDN URL is encrypted, as W-API sends it).</summary>
    public string WApiWebhook(FakeMedia media, string instanceId = "FAKE01-INST01-000001")
    {
        ArgumentNullException.ThrowIfNull(media);
        var type = media.Kind switch { "image" => "imageMessage", "audio" => "audioMessage", "video" => "videoMessage", _ => "documentMessage" };
        var content = new Dictionary<string, object?>
        {
            ["url"] = "https://mmg.whatsapp.net/o1/v/t62.7118-24/f1/m233/FAKE?ccb=9-4",
            ["mimetype"] = media.MimeType,
            ["fileLength"] = media.Size.ToString(CultureInfo.InvariantCulture),
            ["mediaKey"] = "SjINyA==",
            ["directPath"] = "/o1/v/t62.7118-24/f1/m233/FAKE?ccb=9-4",
        };
        if (type == "documentMessage") content["fileName"] = media.FileName;
        return JsonSerializer.Serialize(new
        {
            @event = "webhookReceived",
            instanceId,
            connectedPhone = "5511999990000",
            isGroup = false,
            messageId = media.MessageId,
            fromMe = false,
            chat = new { id = "5511999990001" },
            sender = new { id = "5511999990001", pushName = "Ana Souza" },
            moment = 1767290060,
            msgContent = new Dictionary<string, object?> { [type] = content },
        });
    }

    /// <summary>The Z-API storage URL of a media.</summary>
    public Uri ZApiUrl(FakeMedia media, string instanceId = "3E0FAKEINSTANCE00000000000000001") =>
        new(BaseUrl, $"/zapi/instances/{instanceId}/{media.MessageId}.{media.Extension}");

    /// <summary>The Evolution S3 URL (<c>mediaUrl</c>) of a media.</summary>
    public Uri EvolutionS3Url(FakeMedia media, string instance = "loja-centro") =>
        new(BaseUrl, $"/s3/evolution/{instance}/{media.MessageId}.{media.Extension}");

    private Uri IssueMetaUrl(FakeMedia media)
    {
        var generation = media.NextUrlGeneration();
        var hash = Convert.ToHexString(RandomNumberGenerator.GetBytes(12));
        _metaUrls[hash] = (media, generation);
        return new Uri(BaseUrl, $"/whatsapp_business/attachments/?mid={media.Id}&ext={1767290360 + generation}&hash={hash}");
    }

    // ---------------------------------------------------------------- server

    private async Task HandleAsync(HttpContext context)
    {
        var request = context.Request;
        _log.Enqueue(new FakeRequest(
            context.Connection.LocalPort == BaseUrl.Port ? BaseUrl : OtherOriginUrl,
            request.Method,
            request.Path.Value ?? "",
            request.QueryString.Value ?? "",
            request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase)));

        using var aborted = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, _stopping.Token);
        var token = aborted.Token;
        var segments = (request.Path.Value ?? "").Split('/', StringSplitOptions.RemoveEmptyEntries).Select(Uri.UnescapeDataString).ToArray();
        var fromOtherOrigin = context.Connection.LocalPort != BaseUrl.Port;
        try
        {
            switch (segments)
            {
                case ["v21.0", var mediaId] when HttpMethods.IsGet(request.Method):
                    await MetaInfoAsync(context, mediaId);
                    break;
                case ["whatsapp_business", "attachments"] when HttpMethods.IsGet(request.Method):
                    await MetaFileAsync(context, fromOtherOrigin, token);
                    break;
                case ["zapi", "instances", _, var file] when HttpMethods.IsGet(request.Method):
                    await FileAsync(context, ByFile(file), fromOtherOrigin, token);
                    break;
                case ["api", "files", _, var file] when HttpMethods.IsGet(request.Method):
                    if (!fromOtherOrigin && request.Headers["X-Api-Key"] != WahaApiKey)
                    {
                        await JsonAsync(context, 401, """{"message":"Unauthorized","statusCode":401}""");
                        break;
                    }

                    await FileAsync(context, ByFile(file), fromOtherOrigin, token);
                    break;
                case ["chat", "getBase64FromMediaMessage", _] when HttpMethods.IsPost(request.Method):
                    await EvolutionBase64Async(context, token);
                    break;
                case ["s3", "evolution", _, var file] when HttpMethods.IsGet(request.Method):
                    await FileAsync(context, ByFile(file), fromOtherOrigin, token);
                    break;
                case ["wapi", "v1", "message", "download-media"] when HttpMethods.IsPost(request.Method):
                    await WApiDownloadMediaAsync(context);
                    break;
                case ["wapi", "files", var file] when HttpMethods.IsGet(request.Method):
                    await FileAsync(context, ByFile(file), fromOtherOrigin, token);
                    break;
                default:
                    await JsonAsync(context, 404, """{"error":"no such route in the fake"}""");
                    break;
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            // The client went away (its timeout) or the fake is stopping: nothing more to send.
        }
    }

    private FakeMedia? ByFile(string file)
    {
        var name = Path.GetFileNameWithoutExtension(file);
        var underscore = name.LastIndexOf('_');
        return _byMessageId.GetValueOrDefault(underscore >= 0 ? name[(underscore + 1)..] : name);
    }

    private async Task MetaInfoAsync(HttpContext context, string mediaId)
    {
        if (context.Request.Headers.Authorization != "Bearer " + MetaAccessToken)
        {
            await JsonAsync(context, 401, """{"error":{"message":"Invalid OAuth access token - Cannot parse access token","type":"OAuthException","code":190}}""");
            return;
        }

        if (!_byId.TryGetValue(mediaId, out var media))
        {
            await JsonAsync(context, 400, """{"error":{"message":"Unsupported get request.","type":"GraphMethodException","code":100}}""");
            return;
        }

        media.CountInfo();
        var size = media.Behavior.AnnouncedSize ?? media.Size;
        await JsonAsync(context, 200, JsonSerializer.Serialize(new
        {
            messaging_product = "whatsapp",
            url = IssueMetaUrl(media).AbsoluteUri,
            mime_type = media.MimeType,
            sha256 = media.Behavior.MetaSha256 ?? media.Sha256Base64,
            file_size = size.ToString(CultureInfo.InvariantCulture),
            id = media.Id,
        }));
    }

    private async Task MetaFileAsync(HttpContext context, bool fromOtherOrigin, CancellationToken token)
    {
        var hash = context.Request.Query["hash"].ToString();
        if (!_metaUrls.TryGetValue(hash, out var issued) || context.Request.Query["mid"] != issued.Media.Id)
        {
            await JsonAsync(context, 404, """{"error":"URL signature mismatch"}""");
            return;
        }

        // The other origin plays a CDN a redirect points to: its URL is signed, it takes no bearer.
        if (!fromOtherOrigin && context.Request.Headers.Authorization != "Bearer " + MetaAccessToken)
        {
            await JsonAsync(context, 401, """{"error":{"message":"Invalid OAuth access token","code":190}}""");
            return;
        }

        if (!fromOtherOrigin && issued.Generation <= issued.Media.Behavior.ExpiredUrls)
        {
            issued.Media.CountDownload();
            await JsonAsync(context, 404, """{"error":"URL expired"}""");
            return;
        }

        await FileAsync(context, issued.Media, fromOtherOrigin, token, chunkedWhenAnnounced: true);
    }

    private async Task EvolutionBase64Async(HttpContext context, CancellationToken token)
    {
        if (context.Request.Headers["apikey"] != EvolutionApiKey)
        {
            await JsonAsync(context, 401, """{"status":401,"error":"Unauthorized","response":{"message":"Unauthorized"}}""");
            return;
        }

        string? id = null;
        try
        {
            using var body = await JsonDocument.ParseAsync(context.Request.Body, cancellationToken: token);
            if (body.RootElement.TryGetProperty("message", out var message) && message.TryGetProperty("key", out var key) && key.TryGetProperty("id", out var idValue))
                id = idValue.GetString();
        }
        catch (JsonException)
        {
        }

        if (id is null || !_byMessageId.TryGetValue(id, out var media))
        {
            await JsonAsync(context, 400, """{"status":400,"error":"Bad Request","response":{"message":["Message not found"]}}""");
            return;
        }

        media.CountDownload();
        if (!await ScriptedFailureAsync(context, media, token)) return;

        var response = context.Response;
        response.StatusCode = 201;
        response.ContentType = "application/json; charset=utf-8";
        var head = JsonSerializer.Serialize(new
        {
            mediaType = media.Kind + "Message",
            fileName = media.FileName,
            size = new { fileLength = media.Size.ToString(CultureInfo.InvariantCulture) },
            mimetype = media.MimeType,
        });
        await response.WriteAsync(head[..^1] + ",\"base64\":\"", token);

        var plain = new byte[48 * 1024];
        var encoded = new byte[64 * 1024];
        long sent = 0;
        while (sent < media.Size)
        {
            var count = (int)Math.Min(plain.Length, media.Size - sent);
            media.Fill(sent, plain.AsSpan(0, count));
            Base64.EncodeToUtf8(plain.AsSpan(0, count), encoded, out _, out var written);
            await response.Body.WriteAsync(encoded.AsMemory(0, written), token);
            sent += count;
            if (await BodyInterruptedAsync(context, media, sent, token)) return;
        }

        await response.WriteAsync("\",\"buffer\":null}", token);
    }

    private async Task WApiDownloadMediaAsync(HttpContext context)
    {
        if (context.Request.Headers.Authorization != "Bearer " + WApiToken)
        {
            await JsonAsync(context, 401, """{"error":true,"message":"Token inválido"}""");
            return;
        }

        string? id = null;
        string? phone = null;
        try
        {
            using var body = await JsonDocument.ParseAsync(context.Request.Body);
            id = body.RootElement.TryGetProperty("messageId", out var idValue) ? idValue.GetString() : null;
            phone = body.RootElement.TryGetProperty("phone", out var phoneValue) ? phoneValue.GetString() : null;
        }
        catch (JsonException)
        {
        }

        if (string.IsNullOrEmpty(context.Request.Query["instanceId"]) || phone is null || id is null || !_byMessageId.TryGetValue(id, out var media))
        {
            await JsonAsync(context, 200, """{"error":true,"message":"Mensagem não encontrada"}""");
            return;
        }

        media.CountInfo();
        var link = new Uri(BaseUrl, $"/wapi/files/{media.MessageId}.{media.Extension}");
        await JsonAsync(context, 200, JsonSerializer.Serialize(new { error = false, fileLink = link.AbsoluteUri }));
    }

    private async Task FileAsync(HttpContext context, FakeMedia? media, bool fromOtherOrigin, CancellationToken token, bool chunkedWhenAnnounced = false)
    {
        if (media is null)
        {
            await JsonAsync(context, 404, """{"error":"not found"}""");
            return;
        }

        if (fromOtherOrigin)
        {
            // The redirect's target: serve the bytes, no script.
            await WriteBodyAsync(context, media, announced: false, token);
            return;
        }

        media.CountDownload();
        if (!await ScriptedFailureAsync(context, media, token)) return;
        if (media.Behavior.RedirectToOtherOrigin)
        {
            context.Response.StatusCode = 302;
            context.Response.Headers.Location = new Uri(OtherOriginUrl, context.Request.Path + context.Request.QueryString).AbsoluteUri;
            return;
        }

        await WriteBodyAsync(context, media, announced: chunkedWhenAnnounced && media.Behavior.AnnouncedSize is not null, token);
    }

    /// <summary>Answers the scripted failure for this request, if any; false when it did.</summary>
    private static async Task<bool> ScriptedFailureAsync(HttpContext context, FakeMedia media, CancellationToken token)
    {
        var behavior = media.Behavior;
        var attempt = media.DownloadRequests;
        if (behavior.StallHeaders)
        {
            await Task.Delay(Timeout.Infinite, token);
            return false;
        }

        int? status = behavior.Status;
        if (status is null && attempt <= behavior.ServerErrors) status = behavior.ServerErrorStatus;
        else if (status is null && attempt <= behavior.ServerErrors + behavior.TooManyRequests) status = 429;
        if (status is not { } code) return true;

        if (behavior.RetryAfter is { } retryAfter && code is 429 or >= 500) context.Response.Headers.RetryAfter = retryAfter;
        await JsonAsync(context, code, $$"""{"error":"scripted {{code}}"}""");
        return false;
    }

    private async Task WriteBodyAsync(HttpContext context, FakeMedia media, bool announced, CancellationToken token)
    {
        var response = context.Response;
        response.StatusCode = 200;
        response.ContentType = media.MimeType;
        // With an announced size (Meta's file_size) the body goes chunked, so only the announcement tells its length.
        if (!announced) response.ContentLength = media.Size;
        await response.StartAsync(token);

        var buffer = new byte[ChunkBytes];
        long sent = 0;
        while (sent < media.Size)
        {
            var count = (int)Math.Min(buffer.Length, media.Size - sent);
            var stop = media.Behavior.StallBodyAfter ?? media.Behavior.ResetAfter;
            if (stop is { } limit && sent < limit) count = (int)Math.Min(count, limit - sent);
            media.Fill(sent, buffer.AsSpan(0, count));
            await response.Body.WriteAsync(buffer.AsMemory(0, count), token);
            sent += count;
            if (await BodyInterruptedAsync(context, media, sent, token)) return;
        }
    }

    /// <summary>Stalls or resets the connection once <paramref name="sent"/> reaches the scripted point; true when it did.</summary>
    private static async Task<bool> BodyInterruptedAsync(HttpContext context, FakeMedia media, long sent, CancellationToken token)
    {
        if (media.Behavior.StallBodyAfter is { } stall && sent >= stall)
        {
            await context.Response.Body.FlushAsync(token);
            await Task.Delay(Timeout.Infinite, token);
            return true;
        }

        if (media.Behavior.ResetAfter is { } reset && sent >= reset)
        {
            await context.Response.Body.FlushAsync(token);
            context.Abort();
            return true;
        }

        return false;
    }

    private static async Task JsonAsync(HttpContext context, int status, string json)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json; charset=utf-8";
        await context.Response.WriteAsync(json);
    }

    /// <summary>Stops the server (stalled requests end).</summary>
    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        if (_app is not null)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await _app.StopAsync(timeout.Token);
            await _app.DisposeAsync();
        }

        _stopping.Dispose();
    }
}

/// <summary>A media the fake serves, and how many requests it got.</summary>
public sealed class FakeMedia
{
    private readonly byte[]? _content;
    private readonly ulong _seed;
    private readonly Lazy<string> _sha256;
    private int _infoRequests;
    private int _downloadRequests;
    private int _urlGenerations;

    internal FakeMedia(int number, byte[]? content, long size, string mimeType, FakeMediaBehavior behavior)
    {
        _content = content;
        _seed = (ulong)number * 0x9E3779B97F4A7C15UL;
        Size = size;
        MimeType = mimeType;
        Behavior = behavior;
        Id = (1200000000000000L + number).ToString(CultureInfo.InvariantCulture);
        MessageId = "3EB0FAKE" + number.ToString("X12", CultureInfo.InvariantCulture);
        var type = mimeType.Split(';', 2)[0].Trim();
        Kind = type.StartsWith("image/", StringComparison.Ordinal) ? "image"
            : type.StartsWith("audio/", StringComparison.Ordinal) ? "audio"
            : type.StartsWith("video/", StringComparison.Ordinal) ? "video"
            : "document";
        var slash = type.IndexOf('/', StringComparison.Ordinal);
        Extension = type switch { "image/jpeg" => "jpeg", "audio/ogg" => "oga", "application/pdf" => "pdf", _ => slash > 0 && type.Length - slash <= 6 ? type[(slash + 1)..] : "bin" };
        FileName = $"file-{number}.{Extension}";
        _sha256 = new Lazy<string>(ComputeSha256);
    }

    /// <summary>The Meta media id.</summary>
    public string Id { get; }

    /// <summary>The WhatsApp message id that carries it (Z-API, Evolution, WAHA, W-API look media up by it).</summary>
    public string MessageId { get; }

    /// <summary>Its MIME type.</summary>
    public string MimeType { get; }

    /// <summary><c>image</c>, <c>audio</c>, <c>video</c> or <c>document</c>.</summary>
    public string Kind { get; }

    /// <summary>The file extension in its URLs.</summary>
    public string Extension { get; }

    /// <summary>Its file name (documents).</summary>
    public string FileName { get; }

    /// <summary>Its size in bytes.</summary>
    public long Size { get; }

    /// <summary>The SHA-256 of its bytes, base64 (computed once, by streaming the generated bytes).</summary>
    public string Sha256Base64 => _sha256.Value;

    /// <summary>Its scripted failures.</summary>
    public FakeMediaBehavior Behavior { get; }

    /// <summary>Metadata requests: Meta <c>GET /{media-id}</c>, W-API <c>download-media</c>.</summary>
    public int InfoRequests => Volatile.Read(ref _infoRequests);

    /// <summary>Requests for the bytes (the Meta URL, Z-API's and WAHA's files, Evolution's base64 and S3 copy, W-API's link), failed ones included.</summary>
    public int DownloadRequests => Volatile.Read(ref _downloadRequests);

    /// <summary>All its bytes (for small media).</summary>
    public byte[] ToArray()
    {
        if (_content is not null) return (byte[])_content.Clone();
        if (Size > 256L * 1024 * 1024) throw new InvalidOperationException("Too large to hold: compare Sha256Base64 instead.");
        var bytes = new byte[Size];
        Fill(0, bytes);
        return bytes;
    }

    /// <summary>Copies its bytes from <paramref name="offset"/> into <paramref name="destination"/>.</summary>
    public void Fill(long offset, Span<byte> destination)
    {
        if (_content is not null)
        {
            _content.AsSpan((int)offset, destination.Length).CopyTo(destination);
            return;
        }

        var i = 0;
        while (i < destination.Length)
        {
            var position = offset + i;
            var value = Mix(_seed ^ (ulong)(position >> 3));
            for (var within = (int)(position & 7); within < 8 && i < destination.Length; within++, i++) destination[i] = (byte)(value >> (within * 8));
        }
    }

    internal void CountInfo() => Interlocked.Increment(ref _infoRequests);

    internal void CountDownload() => Interlocked.Increment(ref _downloadRequests);

    internal int NextUrlGeneration() => Interlocked.Increment(ref _urlGenerations);

    private static ulong Mix(ulong x)
    {
        x += 0x9E3779B97F4A7C15UL;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBUL;
        return x ^ (x >> 31);
    }

    private string ComputeSha256()
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[256 * 1024];
        for (long offset = 0; offset < Size; offset += buffer.Length)
        {
            var count = (int)Math.Min(buffer.Length, Size - offset);
            Fill(offset, buffer.AsSpan(0, count));
            hash.AppendData(buffer, 0, count);
        }

        return Convert.ToBase64String(hash.GetHashAndReset());
    }
}

/// <summary>
/// How the fake answers the request for a media's bytes. The counts script consecutive requests: first
/// <see cref="ServerErrors"/> 5xx answers, then <see cref="TooManyRequests"/> 429s, then success.
/// </summary>
public sealed record FakeMediaBehavior
{
    /// <summary>Always succeeds.</summary>
    public static FakeMediaBehavior Ok { get; } = new();

    /// <summary>The first requests answer <see cref="ServerErrorStatus"/>.</summary>
    public int ServerErrors { get; init; }

    /// <summary>The status of <see cref="ServerErrors"/>. Default 503.</summary>
    public int ServerErrorStatus { get; init; } = 503;

    /// <summary>The next requests answer 429.</summary>
    public int TooManyRequests { get; init; }

    /// <summary>The <c>Retry-After</c> value sent with 429 and 5xx answers (seconds or an HTTP date).</summary>
    public string? RetryAfter { get; init; }

    /// <summary>Every request answers this status (e.g. 410).</summary>
    public int? Status { get; init; }

    /// <summary>Meta: the first media URLs handed out (in the webhook or by <c>GET /{media-id}</c>) answer 404, as expired ones do.</summary>
    public int ExpiredUrls { get; init; }

    /// <summary>No response headers, ever (until the client gives up).</summary>
    public bool StallHeaders { get; init; }

    /// <summary>Sends this many bytes of the body, then nothing more (until the client gives up).</summary>
    public long? StallBodyAfter { get; init; }

    /// <summary>Sends this many bytes of the body, then resets the connection.</summary>
    public long? ResetAfter { get; init; }

    /// <summary>Meta: the <c>sha256</c> the Graph API reports instead of the real one.</summary>
    public string? MetaSha256 { get; init; }

    /// <summary>Meta: the <c>file_size</c> the Graph API reports instead of the real one; the file is then sent without Content-Length.</summary>
    public long? AnnouncedSize { get; init; }

    /// <summary>Answers 302 to the same path on <see cref="FakeMediaProvider.OtherOriginUrl"/>, which serves the bytes without checking credentials.</summary>
    public bool RedirectToOtherOrigin { get; init; }
}

/// <summary>A request the fake received.</summary>
/// <param name="Origin">The origin it came to (<see cref="FakeMediaProvider.BaseUrl"/> or <see cref="FakeMediaProvider.OtherOriginUrl"/>).</param>
/// <param name="Method">The HTTP method.</param>
/// <param name="Path">The path.</param>
/// <param name="Query">The query string, with its <c>?</c>.</param>
/// <param name="Headers">Its headers (case-insensitive names).</param>
public sealed record FakeRequest(Uri Origin, string Method, string Path, string Query, IReadOnlyDictionary<string, string> Headers)
{
    /// <summary>A header's value, or null.</summary>
    public string? Header(string name) => Headers.TryGetValue(name, out var value) ? value : null;
}
