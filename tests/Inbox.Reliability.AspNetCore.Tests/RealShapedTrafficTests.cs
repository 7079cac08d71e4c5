using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Inbox.Reliability.Conformance;
using Inbox.Reliability.Dispatch;
using Inbox.Reliability.Events;
using Inbox.Reliability.Media;
using Inbox.Reliability.Storage;
using Inbox.Reliability.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Inbox.Reliability.AspNetCore.Tests;

/// <summary>
/// A host as a user sets it up: Kestrel on 127.0.0.1, SQLite in a temporary folder, all five providers with their
/// webhook secrets and their media credentials pointed at a fake provider media server on loopback, the file-system
/// media store served by <c>MapInboxMedia("/media")</c>, and a recording event handler.
/// </summary>
public sealed class RealTrafficHost : IAsyncLifetime
{
    private WebApplication _app = null!;

    public FakeMediaProvider Fake { get; private set; } = null!;

    public EventRecorder Recorder { get; } = new();

    public HttpClient Client { get; private set; } = null!;

    public string Folder { get; } = Path.Combine(Path.GetTempPath(), "inbox-aspnetcore-tests", Guid.NewGuid().ToString("n"));

    public IInboxStore Store => _app.Services.GetRequiredService<IInboxStore>();

    public async Task InitializeAsync()
    {
        Fake = await FakeMediaProvider.StartAsync();
        Directory.CreateDirectory(Folder);
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = Folder, EnvironmentName = "Testing" });
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(Recorder);
        FileSystemMediaStoreOptions? mediaOptions = null;
        builder.Services.AddInboxReliability(o => o.ShutdownGracePeriod = TimeSpan.FromSeconds(1))
            .UseSqlite($"Data Source={Path.Combine(Folder, "inbox.db")}")
            .AddMetaCloudApi(o =>
            {
                o.AppSecret = WebhookHost.MetaAppSecret;
                o.VerifyToken = WebhookHost.MetaVerifyToken;
                o.AccessToken = FakeMediaProvider.MetaAccessToken;
                o.GraphApiBaseUrl = Fake.GraphApiBaseUrl;
            })
            .AddZApi(o => o.WebhookSecret = WebhookHost.ZApiSecret)
            .AddEvolutionApi(o =>
            {
                o.WebhookSecret = WebhookHost.EvolutionSecret;
                o.BaseUrl = Fake.BaseUrl;
                o.ApiKey = FakeMediaProvider.EvolutionApiKey;
            })
            .AddWaha(o =>
            {
                o.HmacKey = WebhookHost.WahaHmacKey;
                o.ApiKey = FakeMediaProvider.WahaApiKey;
                o.BaseUrl = Fake.BaseUrl; // WAHA reports its internal address in media.url
            })
            .AddWApi(o =>
            {
                o.WebhookSecret = WebhookHost.WApiSecret;
                o.ApiToken = FakeMediaProvider.WApiToken;
                o.BaseUrl = Fake.WApiBaseUrl;
            })
            .AddEventHandler<RecordingEventHandler>()
            .UseFileSystemMediaStore(Path.Combine(Folder, "media"), o => mediaOptions = o)
            .AddWebhookPipeline(o => o.Media.DispatchWait = TimeSpan.FromMinutes(2)); // a chat always waits for its media here

        _app = builder.Build();
        _app.MapInboxWebhooks("/webhooks");
        _app.MapInboxMedia("/media");
        await _app.StartAsync();
        var address = new Uri(_app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single());

        // Kestrel picks the port at start; the store reads its options when first resolved, which is after this.
        mediaOptions!.LinkBaseUrl ??= new Uri(address, "/media").ToString();
        Client = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(60) };
    }

    public async Task DisposeAsync()
    {
        Client.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
        await Fake.DisposeAsync();
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
}

/// <summary>
/// Conversations shaped as each provider documents its webhooks, posted over HTTP with each provider's authenticity:
/// a 1:1 chat and a group interleaved (text, reply, reaction, location, contact, edit where the provider has edits),
/// media of every type downloaded from the provider into the file-system store, statuses, a provider retry; what the
/// host's handler receives is checked field by field, per chat in posting order, each event once.
/// </summary>
public sealed class RealShapedTrafficTests(RealTrafficHost host) : IClassFixture<RealTrafficHost>
{
    private const string Owner = "5511987650000";     // the connected number
    private const string Customer = "5511987650001";  // the 1:1 chat
    private const string Member1 = "5511987650002";   // group members
    private const string Member2 = "5511987650003";
    private const long T0 = 1767290000;               // 2026-01-01T17:53:20Z, seconds

    private static readonly JsonSerializerOptions Relaxed = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private FakeMediaProvider Fake => host.Fake;

    // ================================================================================================ Meta

    [Fact]
    public async Task Meta_chat_and_group_traffic_with_media_and_status_batches_reaches_the_handler_once_per_event_in_chat_order()
    {
        const string waba = "102290129340398";
        const string phoneNumberId = "106540352242922";
        const string group = "Y2FwaV9ncm91cDoxNzA1NTU1MDEzOToxMjAzNjM0MDQ2OTQyODM4MjAZD";
        var t = new Traffic(host, "meta", "rt-meta");
        var media = new MediaSet(Fake);
        static string Wamid(int n) => "wamid.HBgNNTUxMTk4NzY1MDAwMRUCABIYFjNFQjA" + n.ToString("X6", CultureInfo.InvariantCulture);
        var (c1, g1, g2, react, location, contacts, reply, groupThanks, last) = (Wamid(1), Wamid(2), Wamid(3), Wamid(4), Wamid(5), Wamid(6), Wamid(7), Wamid(8), Wamid(9));
        var (image, voice, video, document, sticker) = (Wamid(11), Wamid(12), Wamid(13), Wamid(14), Wamid(15));
        var (out1, out2, out3) = (Wamid(101), Wamid(102), Wamid(103)); // messages the business sent

        JsonObject Message(string id, string from, long at, string type, JsonNode content, string? groupId = null, JsonObject? context = null)
        {
            var m = new JsonObject { ["from"] = from, ["id"] = id, ["timestamp"] = at.ToString(CultureInfo.InvariantCulture), ["type"] = type };
            if (groupId is not null) m["group_id"] = groupId;
            if (context is not null) m["context"] = context;
            m[type] = content;
            return m;
        }

        JsonObject Contact(string waId, string name) => new() { ["profile"] = new JsonObject { ["name"] = name }, ["wa_id"] = waId };

        JsonObject MediaContent(FakeMedia m, object? extra = null)
        {
            var node = new JsonObject { ["mime_type"] = m.MimeType, ["sha256"] = m.Sha256Base64, ["id"] = m.Id };
            return With(node, extra);
        }

        string Notification(JsonObject[]? contactList = null, JsonObject[]? messages = null, object[]? statuses = null)
        {
            var value = new JsonObject
            {
                ["messaging_product"] = "whatsapp",
                ["metadata"] = new JsonObject { ["display_phone_number"] = "15550783881", ["phone_number_id"] = phoneNumberId },
            };
            if (contactList is not null) value["contacts"] = new JsonArray(contactList);
            if (messages is not null) value["messages"] = new JsonArray(messages);
            if (statuses is not null) value["statuses"] = new JsonArray(statuses.Select(s => (JsonNode?)Node(s)).ToArray());
            return Json(new JsonObject
            {
                ["object"] = "whatsapp_business_account",
                ["entry"] = new JsonArray(new JsonObject { ["id"] = waba, ["changes"] = new JsonArray(new JsonObject { ["value"] = value, ["field"] = "messages" }) }),
            });
        }

        var pricing = new { billable = true, pricing_model = "PMP", category = "service", type = "free_customer_service" };
        object Status(string id, string status, long at, string recipient, object? extra = null)
        {
            var node = Node(new { id, status, timestamp = at.ToString(CultureInfo.InvariantCulture), recipient_id = recipient, pricing }).AsObject();
            return With(node, extra);
        }

        var ana = () => Contact(Customer, "Ana Souza");
        var bruno = () => Contact(Member1, "Bruno Lima");
        var carla = () => Contact(Member2, "Carla Dias");

        // A batch: the customer's question and a group message, one POST.
        await t.PostAsync(
            Notification([ana(), bruno()], [
                Message(c1, Customer, T0, "text", Node(new { body = "Oi! Vocês têm o tênis azul no 42?" })),
                Message(g1, Member1, T0 + 5, "text", Node(new { body = "Bom dia, equipe! O pedido 1234 já saiu?" }), group),
            ]),
            (t.Key(c1), Customer), (t.Key(g1), group));
        var imagePost = await t.PostAsync(
            Notification([ana()], [Message(image, Customer, T0 + 10, "image", MediaContent(media.Image, new { caption = "É este aqui?" }))]),
            (t.Key(image), Customer));
        await t.PostAsync(
            Notification([carla()], [Message(g2, Member2, T0 + 15, "text", Node(new { body = "Saiu sim, está na transportadora" }), group, new JsonObject { ["from"] = Member1, ["id"] = g1 })]),
            (t.Key(g2), group));
        await t.PostAsync(
            Notification([ana()], [Message(voice, Customer, T0 + 20, "audio", MediaContent(media.Voice, new { voice = true }))]),
            (t.Key(voice), Customer));
        await t.PostAsync(
            Notification([ana()], [Message(react, Customer, T0 + 25, "reaction", Node(new { message_id = out1, emoji = "👍" }))]),
            (t.Key(react), Customer));
        await t.PostAsync(
            Notification([bruno()], [Message(location, Member1, T0 + 30, "location", Node(new { latitude = -23.5614, longitude = -46.6559, name = "Loja Paulista", address = "Av. Paulista, 1000 - São Paulo" }), group)]),
            (t.Key(location), group));

        // A batch of three media messages from the customer.
        await t.PostAsync(
            Notification([ana()], [
                Message(video, Customer, T0 + 35, "video", MediaContent(media.Video, new { caption = "Olha o defeito" })),
                Message(document, Customer, T0 + 36, "document", MediaContent(media.Document, new { caption = "Segue a nota", filename = "nota-fiscal-1234.pdf" })),
                Message(sticker, Customer, T0 + 37, "sticker", MediaContent(media.Sticker, new { animated = false })),
            ]),
            (t.Key(video), Customer), (t.Key(document), Customer), (t.Key(sticker), Customer));
        await t.PostAsync(
            Notification([carla()], [Message(contacts, Member2, T0 + 40, "contacts", new JsonArray(Node(new
            {
                name = new { formatted_name = "Diego Rocha", first_name = "Diego", last_name = "Rocha" },
                phones = new[] { new { phone = "+55 11 98765-0004", wa_id = "5511987650004", type = "CELL" } },
            })), group)]),
            (t.Key(contacts), group));

        // Messages and statuses in one POST: a reply, then sent/delivered/read of one message, a failed one, group receipts.
        await t.PostAsync(
            Notification(
                [ana()],
                [Message(reply, Customer, T0 + 50, "text", Node(new { body = "Perfeito, obrigada!" }), context: new JsonObject { ["from"] = "15550783881", ["id"] = out1 })],
                [
                    Status(out1, "sent", T0 + 51, Customer, new { conversation = new { id = "0cd1e3a2cf1a0bf1a9f6b7d2c3e4f5a6", expiration_timestamp = (T0 + 86400).ToString(CultureInfo.InvariantCulture), origin = new { type = "service" } } }),
                    Status(out1, "delivered", T0 + 52, Customer),
                    Status(out1, "read", T0 + 53, Customer),
                    Status(out2, "failed", T0 + 54, Customer, new
                    {
                        errors = new[]
                        {
                            new
                            {
                                code = 131047,
                                title = "Re-engagement message",
                                message = "Re-engagement message",
                                error_data = new { details = "Message failed to send because more than 24 hours have passed since the customer last replied to this number." },
                                href = "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
                            },
                        },
                    }),
                    Status(out3, "delivered", T0 + 55, group, new { recipient_type = "group", recipient_participant_id = Member1 }),
                    Status(out3, "read", T0 + 56, group, new { recipient_type = "group", recipient_participant_id = Member2 }),
                ]),
            (t.Key(reply), Customer), (t.Key(out1, "|sent"), Customer), (t.Key(out1, "|delivered"), Customer), (t.Key(out1, "|read"), Customer),
            (t.Key(out2, "|failed"), Customer), (t.Key(out3, $"|delivered|{Member1}"), group), (t.Key(out3, $"|read|{Member2}"), group));

        // Meta retries the image webhook as is; then repeats a status inside another batch (other bytes): both are dropped.
        await t.RetryAsync(imagePost);
        await t.PostAsync(
            Notification([bruno()], [Message(groupThanks, Member1, T0 + 60, "text", Node(new { body = "Valeu!" }), group)], [Status(out1, "read", T0 + 53, Customer)]),
            (t.Key(groupThanks), group));
        await t.PostAsync(Notification([ana()], [Message(last, Customer, T0 + 70, "text", Node(new { body = "Até amanhã" }))]), (t.Key(last), Customer));

        var seen = await t.DeliveredAsync();

        Assert.All(seen.Values, s => Assert.Equal(phoneNumberId, s.Event.ProviderInstanceId));
        AssertMessage(seen[t.Key(c1)].Event, InboxMessageType.Text, Customer, Customer, "Ana Souza", isGroup: false, "Oi! Vocês têm o tênis azul no 42?");
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(T0), seen[t.Key(c1)].Event.OccurredAt);
        AssertGroupTalk(seen, t, group, (g1, g2, location, contacts), Shop, FormattedPhone, "Bom dia, equipe! O pedido 1234 já saiu?");
        var reaction = seen[t.Key(react)].Event;
        AssertMessage(reaction, InboxMessageType.Reaction, Customer, Customer, "Ana Souza", isGroup: false, text: null);
        Assert.Equal(new ReactionInfo("👍", out1), reaction.Reaction);
        Assert.Equal(out1, seen[t.Key(reply)].Event.ReplyToId);
        Assert.Equal("Perfeito, obrigada!", seen[t.Key(reply)].Event.Text);

        // Media: the reference as Meta sent it, the file as the Graph API served it.
        var imageEvent = seen[t.Key(image)];
        AssertMessage(imageEvent.Event, InboxMessageType.Image, Customer, Customer, "Ana Souza", isGroup: false, "É este aqui?");
        Assert.Equal("É este aqui?", imageEvent.Event.Caption);
        Assert.Equal((media.Image.Id, media.Image.Sha256Base64), (imageEvent.Event.Media!.MediaId, imageEvent.Event.Media.Sha256));
        var ids = new Dictionary<FakeMedia, string> { [media.Image] = image, [media.Voice] = voice, [media.Video] = video, [media.Document] = document, [media.Sticker] = sticker };
        await AssertMediaAsync(seen, t, media, m => t.Key(ids[m]));
        Assert.All(media.All, m => Assert.Equal((1, 1), (m.InfoRequests, m.DownloadRequests)));

        // Statuses: one event per message id and status (per participant in the group), the failure with Meta's error.
        AssertStatus(seen[t.Key(out1, "|sent")].Event, out1, InboxMessageStatus.Sent, "sent", Customer);
        AssertStatus(seen[t.Key(out1, "|delivered")].Event, out1, InboxMessageStatus.Delivered, "delivered", Customer);
        AssertStatus(seen[t.Key(out1, "|read")].Event, out1, InboxMessageStatus.Read, "read", Customer);
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(T0 + 53), seen[t.Key(out1, "|read")].Event.OccurredAt);
        var failed = seen[t.Key(out2, "|failed")].Event;
        Assert.Equal((InboxEventKind.Status, out2, InboxMessageStatus.Failed, Customer), (failed.Kind, failed.ExternalId, failed.Status, failed.ChatId));
        Assert.Equal(
            new StatusError
            {
                Code = "131047",
                Title = "Re-engagement message",
                Message = "Re-engagement message",
                Details = "Message failed to send because more than 24 hours have passed since the customer last replied to this number.",
            },
            failed.StatusError);
        var groupDelivered = seen[t.Key(out3, $"|delivered|{Member1}")].Event;
        var groupRead = seen[t.Key(out3, $"|read|{Member2}")].Event;
        Assert.Equal((InboxMessageStatus.Delivered, group, true, Member1), (groupDelivered.Status, groupDelivered.ChatId, groupDelivered.IsGroup, groupDelivered.SenderId));
        Assert.Equal((InboxMessageStatus.Read, group, true, Member2), (groupRead.Status, groupRead.ChatId, groupRead.IsGroup, groupRead.SenderId));
    }

    // ================================================================================================ Z-API

    [Fact]
    public async Task ZApi_chat_and_group_callbacks_with_media_edits_and_status_callbacks_reach_the_handler_once_per_event_in_chat_order()
    {
        const string instanceId = "3C67AB641C8AA0412F6A2242B4E23AC7";
        const string group = "120363019502650977-group";
        const string stranger = "5511987659999";
        const long ms = T0 * 1000;
        var t = new Traffic(host, "zapi", "rt-zapi");
        var media = new MediaSet(Fake);
        static string Id(int n) => "3EB0A1B2C3D4E5F6" + n.ToString("X4", CultureInfo.InvariantCulture);
        var (c1, g1, g2, react, location, contact, last, groupLast) = (Id(1), Id(2), Id(3), Id(4), Id(5), Id(6), Id(7), Id(8));
        var (out1, out2, out3, out4, out5) = (Id(101), Id(102), Id(103), Id(104), Id(105));

        JsonObject Received(string messageId, long at, object content, string? participant = null, string? senderName = null)
        {
            var node = new JsonObject
            {
                ["isStatusReply"] = false,
                ["senderLid"] = "81896604192873@lid",
                ["connectedPhone"] = Owner,
                ["waitingMessage"] = false,
                ["isEdit"] = false,
                ["isGroup"] = participant is not null,
                ["isNewsletter"] = false,
                ["instanceId"] = instanceId,
                ["messageId"] = messageId,
                ["phone"] = participant is null ? Customer : group,
                ["fromMe"] = false,
                ["momment"] = at,
                ["status"] = "RECEIVED",
                ["chatName"] = participant is null ? "Ana Souza" : "Equipe Vendas",
                ["senderPhoto"] = null,
                ["senderName"] = senderName ?? "Ana Souza",
                ["participantPhone"] = participant,
                ["participantLid"] = participant is null ? null : "81000000000009@lid",
                ["photo"] = "https://pps.whatsapp.net/v/t61.24694-24/fake.jpg",
                ["broadcast"] = false,
                ["messageExpirationSeconds"] = 0,
                ["forwarded"] = false,
                ["type"] = "ReceivedCallback",
                ["fromApi"] = false,
            };
            return With(node, content);
        }

        string Url(FakeMedia m) => Fake.ZApiUrl(m, instanceId).AbsoluteUri;

        await t.PostAsync(Json(Received(c1, ms, new { text = new { message = "Oi! Vocês têm o tênis azul no 42?" } })), (t.Key(c1), Customer));
        await t.PostAsync(Json(Received(g1, ms + 5000, new { text = new { message = "O pedido 1234 já saiu?" } }, Member1, "Bruno Lima")), (t.Key(g1), group));
        var imagePost = await t.PostAsync(
            Json(Received(media.Image.MessageId, ms + 10_000, new
            {
                image = new { mimeType = media.Image.MimeType, imageUrl = Url(media.Image), thumbnailUrl = Url(media.Image) + "?thumb=1", caption = "É este aqui?", width = 1200, height = 1600, viewOnce = false },
            })),
            (t.Key(media.Image.MessageId), Customer));
        var groupReply = Received(g2, ms + 15_000, new { text = new { message = "Saiu sim, está na transportadora" } }, Member2, "Carla Dias");
        groupReply["referenceMessageId"] = g1;
        await t.PostAsync(Json(groupReply), (t.Key(g2), group));
        await t.PostAsync(
            Json(Received(media.Voice.MessageId, ms + 20_000, new { audio = new { ptt = true, seconds = 7, audioUrl = Url(media.Voice), mimeType = media.Voice.MimeType } })),
            (t.Key(media.Voice.MessageId), Customer));
        await t.PostAsync(
            Json(Received(react, ms + 25_000, new
            {
                reaction = new { value = "❤️", time = ms + 25_000, reactionBy = Customer, referencedMessage = new { messageId = out1, fromMe = true, phone = Customer, participant = (string?)null } },
            })),
            (t.Key(react), Customer));
        await t.PostAsync(
            Json(Received(location, ms + 30_000, new { location = new { longitude = -46.6559, latitude = -23.5614, name = "Loja Paulista", address = "Av. Paulista, 1000 - São Paulo", url = "https://maps.google.com/?q=-23.5614,-46.6559" } }, Member1, "Bruno Lima")),
            (t.Key(location), group));

        // The customer edits the first message: same message id, isEdit, a later momment.
        var edit = Received(c1, ms + 32_000, new { text = new { message = "Oi! Vocês têm o tênis azul no 43?" } });
        edit["isEdit"] = true;
        await t.PostAsync(Json(edit), (t.Key(c1, $"|edit:{ms + 32_000}"), Customer));
        await t.PostAsync(
            Json(Received(media.Video.MessageId, ms + 35_000, new { video = new { videoUrl = Url(media.Video), caption = "Olha o defeito", mimeType = media.Video.MimeType, seconds = 9, viewOnce = false } })),
            (t.Key(media.Video.MessageId), Customer));
        await t.PostAsync(
            Json(Received(contact, ms + 40_000, new
            {
                contact = new
                {
                    displayName = "Diego Rocha",
                    vCard = "BEGIN:VCARD\nVERSION:3.0\nN:;Diego Rocha;;;\nFN:Diego Rocha\nTEL;type=CELL;type=VOICE;waid=5511987650004:+55 11 98765-0004\nEND:VCARD",
                    phones = new[] { "5511987650004" },
                },
            }, Member2, "Carla Dias")),
            (t.Key(contact), group));
        await t.PostAsync(
            Json(Received(media.Document.MessageId, ms + 45_000, new
            {
                document = new { documentUrl = Url(media.Document), mimeType = media.Document.MimeType, title = "nota-fiscal-1234", pageCount = 2, fileName = "nota-fiscal-1234.pdf", caption = "Segue a nota" },
            })),
            (t.Key(media.Document.MessageId), Customer));
        await t.PostAsync(
            Json(Received(media.Sticker.MessageId, ms + 47_000, new { sticker = new { stickerUrl = Url(media.Sticker), mimeType = media.Sticker.MimeType } })),
            (t.Key(media.Sticker.MessageId), Customer));

        // Statuses: one callback with several ids, a group member's read, and a failed send.
        await t.PostAsync(
            Json(Node(new { instanceId, status = "READ", ids = new[] { out1, out2, out3 }, momment = ms + 50_000, phoneDevice = 0, phone = Customer, type = "MessageStatusCallback", isGroup = false })),
            (t.Key(out1, "|read"), Customer), (t.Key(out2, "|read"), Customer), (t.Key(out3, "|read"), Customer));
        await t.PostAsync(
            Json(Node(new { instanceId, status = "READ", ids = new[] { out4 }, momment = ms + 51_000, phoneDevice = 0, phone = group, participantPhone = Member2, type = "MessageStatusCallback", isGroup = true })),
            (t.Key(out4, $"|read|{Member2}"), group));
        await t.PostAsync(
            Json(Node(new { phone = stranger, messageId = out5, error = "Phone number does not exist", errorCode = "SHADOW_BAN", instanceId, zaapId = "A20DA9C0183A2D35A260F53F5D2B9244", momment = ms + 52_000, type = "DeliveryCallback" })),
            (t.Key(out5, "|failed"), stranger));

        await t.RetryAsync(imagePost);
        await t.PostAsync(Json(Received(groupLast, ms + 60_000, new { text = new { message = "Valeu!" } }, Member1, "Bruno Lima")), (t.Key(groupLast), group));
        await t.PostAsync(Json(Received(last, ms + 70_000, new { text = new { message = "Até amanhã" } })), (t.Key(last), Customer));

        var seen = await t.DeliveredAsync();

        Assert.All(seen.Values, s => Assert.Equal(instanceId, s.Event.ProviderInstanceId));
        AssertMessage(seen[t.Key(c1)].Event, InboxMessageType.Text, Customer, Customer, "Ana Souza", isGroup: false, "Oi! Vocês têm o tênis azul no 42?");
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(ms), seen[t.Key(c1)].Event.OccurredAt);
        Assert.False(seen[t.Key(c1)].Event.IsEdit);
        var edited = seen[t.Key(c1, $"|edit:{ms + 32_000}")].Event;
        AssertMessage(edited, InboxMessageType.Text, Customer, Customer, "Ana Souza", isGroup: false, "Oi! Vocês têm o tênis azul no 43?");
        Assert.Equal((true, c1, DateTimeOffset.FromUnixTimeMilliseconds(ms + 32_000)), (edited.IsEdit, edited.ExternalId, edited.OccurredAt));
        AssertGroupTalk(seen, t, group, (g1, g2, location, contact), Shop with { Url = "https://maps.google.com/?q=-23.5614,-46.6559" },
            new ContactPhone("5511987650004", "5511987650004"));
        AssertMessage(seen[t.Key(react)].Event, InboxMessageType.Reaction, Customer, Customer, "Ana Souza", isGroup: false, text: null);
        Assert.Equal(new ReactionInfo("❤️", out1), seen[t.Key(react)].Event.Reaction);

        var imageEvent = seen[t.Key(media.Image.MessageId)];
        AssertMessage(imageEvent.Event, InboxMessageType.Image, Customer, Customer, "Ana Souza", isGroup: false, "É este aqui?");
        Assert.Equal(Url(media.Image), imageEvent.Event.Media!.Url);
        await AssertMediaAsync(seen, t, media, m => t.Key(m.MessageId));
        Assert.All(media.All, m => Assert.Equal(1, m.DownloadRequests));

        foreach (var id in new[] { out1, out2, out3 })
        {
            AssertStatus(seen[t.Key(id, "|read")].Event, id, InboxMessageStatus.Read, "READ", Customer);
            Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(ms + 50_000), seen[t.Key(id, "|read")].Event.OccurredAt);
        }

        var groupRead = seen[t.Key(out4, $"|read|{Member2}")].Event;
        Assert.Equal((InboxMessageStatus.Read, group, true, Member2), (groupRead.Status, groupRead.ChatId, groupRead.IsGroup, groupRead.SenderId));
        var failed = seen[t.Key(out5, "|failed")].Event;
        Assert.Equal((InboxEventKind.Status, out5, InboxMessageStatus.Failed, stranger, true), (failed.Kind, failed.ExternalId, failed.Status, failed.ChatId, failed.FromMe));
        Assert.Equal(new StatusError { Code = "SHADOW_BAN", Title = "DeliveryCallback", Message = "Phone number does not exist" }, failed.StatusError);
    }

    // ================================================================================================ Evolution

    [Fact]
    public async Task Evolution_chat_and_group_events_with_media_edits_and_status_updates_reach_the_handler_once_per_event_in_chat_order()
    {
        const string evolutionInstance = "loja-centro";
        const string groupJid = "120363025246125486@g.us";
        var t = new Traffic(host, "evolution", "rt-evo");
        var media = new MediaSet(Fake);
        static string Id(int n) => "3EB0B1C2D3E4F5A6" + n.ToString("X4", CultureInfo.InvariantCulture);
        var (c1, g1, g2, react, location, contact, last, groupLast) = (Id(1), Id(2), Id(3), Id(4), Id(5), Id(6), Id(7), Id(8));
        var (out1, out2, out3) = (Id(101), Id(102), Id(103));
        var seconds = T0;

        string Envelope(string eventName, JsonNode data) => Json(new JsonObject
        {
            ["event"] = eventName,
            ["instance"] = evolutionInstance,
            ["data"] = data,
            ["destination"] = "https://hooks.example.com/webhooks/evolution/rt-evo",
            ["date_time"] = DateTimeOffset.FromUnixTimeSeconds(seconds).ToOffset(TimeSpan.FromHours(-3)).ToString("yyyy-MM-ddTHH:mm:ss.fffzzz", CultureInfo.InvariantCulture),
            ["sender"] = Owner + "@s.whatsapp.net",
            ["server_url"] = "https://evo.example.com",
            ["apikey"] = "B6D711FCDE4D4FD5936544120E713976",
        });

        JsonObject Upsert(string id, long at, string messageType, object message, string? participant = null, string pushName = "Ana Souza")
        {
            var key = new JsonObject { ["remoteJid"] = participant is null ? Customer + "@s.whatsapp.net" : groupJid, ["fromMe"] = false, ["id"] = id };
            if (participant is not null) key["participant"] = participant + "@s.whatsapp.net";
            return new JsonObject
            {
                ["key"] = key,
                ["pushName"] = pushName,
                ["status"] = "DELIVERY_ACK",
                ["message"] = Node(message),
                ["contextInfo"] = null,
                ["messageType"] = messageType,
                ["messageTimestamp"] = at,
                ["instanceId"] = "6f1c2d3e-0000-4000-8000-000000000001",
                ["source"] = "android",
            };
        }

        JsonObject Baileys(FakeMedia m, object? extra = null)
        {
            var sha = Convert.FromBase64String(m.Sha256Base64);
            var node = new JsonObject
            {
                ["url"] = "https://mmg.whatsapp.net/o1/v/t62.7118-24/f2/m269/AQN" + m.MessageId + "?ccb=9-4&oh=01_Q5Aa&oe=68A1B2C3&_nc_sid=e6ed6c&mms3=true",
                ["mimetype"] = m.MimeType,
                ["fileSha256"] = IndexKeyed(sha),
                ["fileLength"] = BaileysLong(m.Size, unsigned: true),
                ["mediaKey"] = IndexKeyed(RandomNumberGenerator.GetBytes(32)),
                ["fileEncSha256"] = IndexKeyed(RandomNumberGenerator.GetBytes(32)),
                ["directPath"] = "/o1/v/t62.7118-24/f2/m269/AQN" + m.MessageId + "?ccb=9-4&oh=01_Q5Aa&oe=68A1B2C3&_nc_sid=e6ed6c",
                ["mediaKeyTimestamp"] = BaileysLong(T0 - 5),
            };
            return With(node, extra);
        }

        JsonObject StatusUpdate(string keyId, string status, string remoteJid, string? participant = null) => new()
        {
            ["keyId"] = keyId,
            ["remoteJid"] = remoteJid,
            ["fromMe"] = true,
            ["participant"] = participant,
            ["status"] = status,
            ["instanceId"] = "6f1c2d3e-0000-4000-8000-000000000001",
            ["messageId"] = "cmfk" + keyId.ToLowerInvariant(),
        };

        await t.PostAsync(Envelope("messages.upsert", Upsert(c1, seconds, "conversation", new { conversation = "Oi! Vocês têm o tênis azul no 42?" })), (t.Key(c1), Customer));
        seconds += 5;
        await t.PostAsync(Envelope("messages.upsert", Upsert(g1, seconds, "conversation", new { conversation = "O pedido 1234 já saiu?" }, Member1, "Bruno Lima")), (t.Key(g1), groupJid));

        // With S3 on, Evolution adds its copy's URL (mediaUrl): fetched as is.
        seconds += 5;
        var imageMessage = new JsonObject
        {
            ["imageMessage"] = Baileys(media.Image, new { caption = "É este aqui?", height = 1600, width = 1200 }),
            ["mediaUrl"] = Fake.EvolutionS3Url(media.Image, evolutionInstance).AbsoluteUri,
        };
        var imagePost = await t.PostAsync(Envelope("messages.upsert", Upsert(media.Image.MessageId, seconds, "imageMessage", imageMessage)), (t.Key(media.Image.MessageId), Customer));

        // A reply as Evolution v2 sends it: extendedTextMessage normalized to conversation, contextInfo beside the message.
        seconds += 5;
        var reply = Upsert(g2, seconds, "conversation", new { conversation = "Saiu sim, está na transportadora" }, Member2, "Carla Dias");
        reply["contextInfo"] = Node(new { stanzaId = g1, participant = Member1 + "@s.whatsapp.net", quotedMessage = new { conversation = "O pedido 1234 já saiu?" } });
        await t.PostAsync(Envelope("messages.upsert", reply), (t.Key(g2), groupJid));

        // Without mediaUrl the file comes from getBase64FromMediaMessage.
        seconds += 5;
        await t.PostAsync(
            Envelope("messages.upsert", Upsert(media.Voice.MessageId, seconds, "audioMessage", new JsonObject { ["audioMessage"] = Baileys(media.Voice, new { seconds = 7, ptt = true }) })),
            (t.Key(media.Voice.MessageId), Customer));
        seconds += 5;
        await t.PostAsync(
            Envelope("messages.upsert", Upsert(react, seconds, "reactionMessage", new
            {
                reactionMessage = new { key = new { remoteJid = Customer + "@s.whatsapp.net", fromMe = true, id = out1 }, text = "❤️", senderTimestampMs = BaileysLong(seconds * 1000) },
            })),
            (t.Key(react), Customer));
        seconds += 5;
        await t.PostAsync(
            Envelope("messages.upsert", Upsert(location, seconds, "locationMessage", new { locationMessage = new { degreesLatitude = -23.5614, degreesLongitude = -46.6559, name = "Loja Paulista", address = "Av. Paulista, 1000 - São Paulo" } }, Member1, "Bruno Lima")),
            (t.Key(location), groupJid));

        // The customer edits the first message.
        seconds += 2;
        var editMs = seconds * 1000 + 250;
        await t.PostAsync(
            Envelope("messages.edited", Node(new
            {
                key = new { remoteJid = Customer + "@s.whatsapp.net", fromMe = false, id = c1 },
                type = 14,
                editedMessage = new { conversation = "Oi! Vocês têm o tênis azul no 43?" },
                timestampMs = editMs,
            })),
            (t.Key(c1, $"|edit:{editMs}"), Customer));
        seconds += 3;
        await t.PostAsync(
            Envelope("messages.upsert", Upsert(media.Video.MessageId, seconds, "videoMessage", new JsonObject { ["videoMessage"] = Baileys(media.Video, new { caption = "Olha o defeito", seconds = 9 }) })),
            (t.Key(media.Video.MessageId), Customer));
        seconds += 5;
        await t.PostAsync(
            Envelope("messages.upsert", Upsert(contact, seconds, "contactMessage", new
            {
                contactMessage = new { displayName = "Diego Rocha", vcard = "BEGIN:VCARD\nVERSION:3.0\nN:;Diego Rocha;;;\nFN:Diego Rocha\nitem1.TEL;waid=5511987650004:+55 11 98765-0004\nitem1.X-ABLabel:Celular\nEND:VCARD" },
            }, Member2, "Carla Dias")),
            (t.Key(contact), groupJid));
        seconds += 5;
        var documentMessage = new JsonObject
        {
            ["documentWithCaptionMessage"] = new JsonObject
            {
                ["message"] = new JsonObject { ["documentMessage"] = Baileys(media.Document, new { title = "nota-fiscal-1234", fileName = "nota-fiscal-1234.pdf", caption = "Segue a nota", pageCount = 2 }) },
            },
        };
        await t.PostAsync(Envelope("messages.upsert", Upsert(media.Document.MessageId, seconds, "documentWithCaptionMessage", documentMessage)), (t.Key(media.Document.MessageId), Customer));
        seconds += 2;
        var stickerMessage = new JsonObject
        {
            ["stickerMessage"] = Baileys(media.Sticker, new { isAnimated = false, isAvatar = false }),
            ["mediaUrl"] = Fake.EvolutionS3Url(media.Sticker, evolutionInstance).AbsoluteUri,
        };
        await t.PostAsync(Envelope("messages.upsert", Upsert(media.Sticker.MessageId, seconds, "stickerMessage", stickerMessage)), (t.Key(media.Sticker.MessageId), Customer));

        // Statuses of messages the business sent, one messages.update each.
        seconds += 3;
        await t.PostAsync(Envelope("messages.update", StatusUpdate(out1, "DELIVERY_ACK", Customer + "@s.whatsapp.net")), (t.Key(out1, "|delivered"), Customer));
        await t.PostAsync(Envelope("messages.update", StatusUpdate(out1, "READ", Customer + "@s.whatsapp.net")), (t.Key(out1, "|read"), Customer));
        await t.PostAsync(Envelope("messages.update", StatusUpdate(out2, "ERROR", Customer + "@s.whatsapp.net")), (t.Key(out2, "|failed"), Customer));
        await t.PostAsync(Envelope("messages.update", StatusUpdate(out3, "READ", groupJid, Member1 + "@s.whatsapp.net")), (t.Key(out3, $"|read|{Member1}"), groupJid));

        await t.RetryAsync(imagePost);
        seconds += 5;
        await t.PostAsync(Envelope("messages.upsert", Upsert(groupLast, seconds, "conversation", new { conversation = "Valeu!" }, Member1, "Bruno Lima")), (t.Key(groupLast), groupJid));
        seconds += 5;
        await t.PostAsync(Envelope("messages.upsert", Upsert(last, seconds, "conversation", new { conversation = "Até amanhã" })), (t.Key(last), Customer));

        var seen = await t.DeliveredAsync();

        Assert.All(seen.Values, s => Assert.Equal(evolutionInstance, s.Event.ProviderInstanceId));
        AssertMessage(seen[t.Key(c1)].Event, InboxMessageType.Text, Customer, Customer, "Ana Souza", isGroup: false, "Oi! Vocês têm o tênis azul no 42?");
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(T0), seen[t.Key(c1)].Event.OccurredAt);
        var edited = seen[t.Key(c1, $"|edit:{editMs}")].Event;
        Assert.Equal((InboxEventKind.Message, true, c1, "Oi! Vocês têm o tênis azul no 43?", Customer, Customer), (edited.Kind, edited.IsEdit, edited.ExternalId, edited.Text, edited.ChatId, edited.SenderId));
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(editMs), edited.OccurredAt);
        AssertGroupTalk(seen, t, groupJid, (g1, g2, location, contact), Shop, FormattedPhone);
        AssertMessage(seen[t.Key(react)].Event, InboxMessageType.Reaction, Customer, Customer, "Ana Souza", isGroup: false, text: null);
        Assert.Equal(new ReactionInfo("❤️", out1), seen[t.Key(react)].Event.Reaction);

        var imageEvent = seen[t.Key(media.Image.MessageId)].Event;
        AssertMessage(imageEvent, InboxMessageType.Image, Customer, Customer, "Ana Souza", isGroup: false, "É este aqui?");
        Assert.Equal((media.Image.Sha256Base64, media.Image.Size), (imageEvent.Media!.Sha256, imageEvent.Media.FileSize));
        await AssertMediaAsync(seen, t, media, m => t.Key(m.MessageId));
        Assert.All(media.All, m => Assert.Equal(1, m.DownloadRequests));

        // The S3 copies were fetched as they are; the others asked Evolution under its own instance name, with the API key.
        Assert.Equal(
            new[] { media.Image, media.Sticker }.Select(m => $"/s3/evolution/{evolutionInstance}/{m.MessageId}.{m.Extension}").Order(StringComparer.Ordinal),
            Fake.RequestsTo("/s3/evolution/").Select(r => r.Path).Order(StringComparer.Ordinal));
        var asked = Fake.RequestsTo("/chat/getBase64FromMediaMessage/");
        Assert.Equal(3, asked.Count);
        Assert.All(asked, r => Assert.Equal(("POST", $"/chat/getBase64FromMediaMessage/{evolutionInstance}", FakeMediaProvider.EvolutionApiKey), (r.Method, r.Path, r.Header("apikey"))));

        AssertStatus(seen[t.Key(out1, "|delivered")].Event, out1, InboxMessageStatus.Delivered, "DELIVERY_ACK", Customer);
        AssertStatus(seen[t.Key(out1, "|read")].Event, out1, InboxMessageStatus.Read, "READ", Customer);
        var failed = seen[t.Key(out2, "|failed")].Event;
        Assert.Equal((InboxEventKind.Status, out2, InboxMessageStatus.Failed, Customer, "ERROR"), (failed.Kind, failed.ExternalId, failed.Status, failed.ChatId, failed.StatusError?.Title));
        var groupRead = seen[t.Key(out3, $"|read|{Member1}")].Event;
        Assert.Equal((InboxMessageStatus.Read, groupJid, true, Member1), (groupRead.Status, groupRead.ChatId, groupRead.IsGroup, groupRead.SenderId));
    }

    // ================================================================================================ WAHA

    [Fact]
    public async Task Waha_chat_and_group_events_with_media_edits_and_acks_reach_the_handler_once_per_event_in_chat_order()
    {
        const string session = "default";
        const string me = Owner + "@c.us";
        const string contactJid = Customer + "@c.us";
        const string groupJid = "120363404694283820@g.us";
        var t = new Traffic(host, "waha", "rt-waha");
        var media = new MediaSet(Fake);
        static string Raw(int n) => "3EB0C1D2E3F4A5B6" + n.ToString("X4", CultureInfo.InvariantCulture);
        static string InChat(string raw) => $"false_{contactJid}_{raw}";
        static string InGroup(string raw, string member) => $"false_{groupJid}_{raw}_{member}@c.us";
        var (c1, g1, g2, react, location, contact, last, groupLast, editAction) =
            (InChat(Raw(1)), InGroup(Raw(2), Member1), InGroup(Raw(3), Member2), InChat(Raw(4)), InGroup(Raw(5), Member1), InGroup(Raw(6), Member2), InChat(Raw(7)), InGroup(Raw(8), Member1), Raw(9));
        var (out1, out2, out3) = ($"true_{contactJid}_{Raw(101)}", $"true_{contactJid}_{Raw(102)}", $"true_{groupJid}_{Raw(103)}_{me}");
        var sent = 0;

        string Envelope(string eventName, JsonNode payload)
        {
            sent++;
            return Json(new JsonObject
            {
                ["id"] = "evt_01kdx3m9" + sent.ToString("D18", CultureInfo.InvariantCulture),
                ["timestamp"] = (T0 + sent * 5) * 1000 + 456,
                ["event"] = eventName,
                ["session"] = session,
                ["metadata"] = new JsonObject(),
                ["me"] = new JsonObject { ["id"] = me, ["pushName"] = "Loja Centro" },
                ["payload"] = payload,
                ["engine"] = "GOWS",
                ["environment"] = new JsonObject { ["version"] = "2025.3.1", ["engine"] = "GOWS", ["tier"] = "PLUS", ["browser"] = null },
            });
        }

        JsonObject Message(string id, string? member, string? body, string pushName = "Ana Souza")
        {
            var chat = member is null ? contactJid : groupJid;
            return new JsonObject
            {
                ["id"] = id,
                ["timestamp"] = T0 + sent * 5 + 5,
                ["from"] = chat,
                ["fromMe"] = false,
                ["source"] = "app",
                ["to"] = member is null ? null : member + "@c.us", // GOWS: the sender in a group, null in a 1:1 chat
                ["participant"] = member is null ? null : member + "@c.us",
                ["body"] = body,
                ["hasMedia"] = false,
                ["media"] = null,
                ["ack"] = 2,
                ["ackName"] = "DEVICE",
                ["replyTo"] = null,
                ["vCards"] = new JsonArray(),
                ["_data"] = new JsonObject
                {
                    ["Info"] = new JsonObject
                    {
                        ["Chat"] = member is null ? Customer + "@s.whatsapp.net" : groupJid,
                        ["Sender"] = (member ?? Customer) + "@s.whatsapp.net",
                        ["IsFromMe"] = false,
                        ["IsGroup"] = member is not null,
                        ["ID"] = id.Split('_')[2],
                        ["PushName"] = pushName,
                    },
                },
            };
        }

        JsonObject WithMedia(FakeMedia m, string? caption, string? fileName = null)
        {
            var id = InChat(m.MessageId);
            var payload = Message(id, null, caption ?? "");
            payload["hasMedia"] = true;
            payload["media"] = new JsonObject
            {
                ["url"] = $"http://localhost:3000/api/files/{session}/{id}.{m.Extension}", // WAHA's own address; BaseUrl replaces it
                ["mimetype"] = m.MimeType,
                ["filename"] = fileName,
                ["error"] = null,
            };
            return payload;
        }

        // GOWS receipts: from is the chat, to and participant the member who acknowledged (null in a 1:1 chat).
        JsonObject Ack(string id, string chat, string? participant, int ack, string ackName) => new()
        {
            ["id"] = id,
            ["from"] = chat,
            ["to"] = participant,
            ["participant"] = participant,
            ["fromMe"] = true,
            ["ack"] = ack,
            ["ackName"] = ackName,
            ["_data"] = new JsonObject(),
        };

        await t.PostAsync(Envelope("message", Message(c1, null, "Oi! Vocês têm o tênis azul no 42?")), (t.Key(c1), Customer));

        // Subscribed to both message and message.any, the host gets the customer's message twice, in two envelopes:
        // another raw webhook, whose event is dropped by its dedupe key.
        await t.PostAsync(Envelope("message.any", Message(c1, null, "Oi! Vocês têm o tênis azul no 42?")));
        await t.PostAsync(Envelope("message", Message(g1, Member1, "O pedido 1234 já saiu?", "Bruno Lima")), (t.Key(g1), groupJid));
        JsonObject Own(string id, string chat, string body)
        {
            var payload = Message(id, chat == groupJid ? Owner : null, body, "Loja Centro");
            payload["from"] = chat;
            payload["fromMe"] = true;
            payload["source"] = "api";
            payload["ack"] = 1;
            payload["ackName"] = "SERVER";
            payload["_data"]!["Info"]!["IsFromMe"] = true;
            payload["_data"]!["Info"]!["Sender"] = Owner + "@s.whatsapp.net";
            return payload;
        }

        await t.PostAsync(Envelope("message.any", Own(out1, contactJid, "Temos sim! Segue a foto do modelo.")), (t.Key(out1), Customer));
        var imagePost = await t.PostAsync(Envelope("message", WithMedia(media.Image, "É este aqui?")), (t.Key(InChat(media.Image.MessageId)), Customer));
        var reply = Message(g2, Member2, "Saiu sim, está na transportadora", "Carla Dias");
        reply["replyTo"] = new JsonObject { ["id"] = g1, ["participant"] = Member1 + "@c.us", ["body"] = "O pedido 1234 já saiu?", ["_data"] = new JsonObject() };
        await t.PostAsync(Envelope("message", reply), (t.Key(g2), groupJid));
        await t.PostAsync(Envelope("message", WithMedia(media.Voice, null)), (t.Key(InChat(media.Voice.MessageId)), Customer));
        await t.PostAsync(
            Envelope("message.reaction", new JsonObject
            {
                ["id"] = react,
                ["from"] = contactJid,
                ["fromMe"] = false,
                ["participant"] = null,
                ["to"] = null,
                ["timestamp"] = T0 + 30,
                ["reaction"] = new JsonObject { ["text"] = "❤️", ["messageId"] = out1 },
            }),
            (t.Key(react), Customer));
        var place = Message(location, Member1, "", "Bruno Lima");
        place["location"] = new JsonObject { ["latitude"] = -23.5614, ["longitude"] = -46.6559, ["description"] = "Loja Paulista", ["address"] = "Av. Paulista, 1000 - São Paulo" };
        await t.PostAsync(Envelope("message", place), (t.Key(location), groupJid));

        // The customer edits the first message: message.edited with the edit's own id and the edited message's id.
        var edit = Message(InChat(editAction), null, "Oi! Vocês têm o tênis azul no 43?");
        edit["editedMessageId"] = Raw(1);
        await t.PostAsync(Envelope("message.edited", edit), (t.Key(c1, $"|edit:{editAction}"), Customer));
        await t.PostAsync(Envelope("message", WithMedia(media.Video, "Olha o defeito")), (t.Key(InChat(media.Video.MessageId)), Customer));
        var card = Message(contact, Member2, null, "Carla Dias");
        card["vCards"] = new JsonArray("BEGIN:VCARD\nVERSION:3.0\nN:;Diego Rocha;;;\nFN:Diego Rocha\nTEL;type=CELL;type=VOICE;waid=5511987650004:+55 11 98765-0004\nEND:VCARD");
        await t.PostAsync(Envelope("message", card), (t.Key(contact), groupJid));
        await t.PostAsync(Envelope("message", WithMedia(media.Document, "Segue a nota", "nota-fiscal-1234.pdf")), (t.Key(InChat(media.Document.MessageId)), Customer));
        await t.PostAsync(Envelope("message", WithMedia(media.Sticker, null)), (t.Key(InChat(media.Sticker.MessageId)), Customer));

        await t.PostAsync(Envelope("message.any", Own(out3, groupJid, "Pedido 1234 entregue à transportadora.")), (t.Key(out3), groupJid));

        // Acks of messages the business sent: read, an error, and per member in the group.
        await t.PostAsync(Envelope("message.ack", Ack(out1, contactJid, null, 3, "READ")), (t.Key(out1, "|read"), Customer));
        await t.PostAsync(Envelope("message.ack", Ack(out2, contactJid, null, -1, "ERROR")), (t.Key(out2, "|failed"), Customer));
        await t.PostAsync(Envelope("message.ack.group", Ack(out3, groupJid, Member1 + "@c.us", 3, "READ")), (t.Key(out3, $"|read|{Member1}"), groupJid));
        await t.PostAsync(Envelope("message.ack.group", Ack(out3, groupJid, Member2 + "@c.us", 2, "DEVICE")), (t.Key(out3, $"|delivered|{Member2}"), groupJid));

        await t.RetryAsync(imagePost);
        await t.PostAsync(Envelope("message", Message(groupLast, Member1, "Valeu!", "Bruno Lima")), (t.Key(groupLast), groupJid));
        await t.PostAsync(Envelope("message", Message(last, null, "Até amanhã")), (t.Key(last), Customer));

        var seen = await t.DeliveredAsync();

        Assert.All(seen.Values, s => Assert.Equal(session, s.Event.ProviderInstanceId));
        AssertMessage(seen[t.Key(c1)].Event, InboxMessageType.Text, Customer, Customer, "Ana Souza", isGroup: false, "Oi! Vocês têm o tênis azul no 42?");
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(T0 + 5), seen[t.Key(c1)].Event.OccurredAt);
        var edited = seen[t.Key(c1, $"|edit:{editAction}")].Event;
        AssertMessage(edited, InboxMessageType.Text, Customer, Customer, "Ana Souza", isGroup: false, "Oi! Vocês têm o tênis azul no 43?");
        Assert.Equal((true, c1), (edited.IsEdit, edited.ExternalId));
        AssertGroupTalk(seen, t, groupJid, (g1, g2, location, contact), Shop, FormattedPhone);
        var reaction = seen[t.Key(react)].Event;
        Assert.Equal((InboxEventKind.Message, InboxMessageType.Reaction, Customer, Customer, false), (reaction.Kind, reaction.MessageType, reaction.ChatId, reaction.SenderId, reaction.FromMe));
        Assert.Equal(new ReactionInfo("❤️", out1), reaction.Reaction);
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(T0 + 30), reaction.OccurredAt);

        var imageEvent = seen[t.Key(InChat(media.Image.MessageId))].Event;
        AssertMessage(imageEvent, InboxMessageType.Image, Customer, Customer, "Ana Souza", isGroup: false, "É este aqui?");
        Assert.Equal("É este aqui?", imageEvent.Caption);
        AssertMessage(seen[t.Key(InChat(media.Voice.MessageId))].Event, InboxMessageType.Audio, Customer, Customer, "Ana Souza", isGroup: false, text: null);
        AssertMessage(seen[t.Key(InChat(media.Sticker.MessageId))].Event, InboxMessageType.Sticker, Customer, Customer, "Ana Souza", isGroup: false, text: null);
        await AssertMediaAsync(seen, t, media, m => t.Key(InChat(m.MessageId)), voiceFlagged: false);
        Assert.All(media.All, m => Assert.Equal(1, m.DownloadRequests));

        // The files were fetched from the configured base URL, never from WAHA's reported localhost, with the API key.
        var files = Fake.RequestsTo($"/api/files/{session}/");
        Assert.Equal(5, files.Count);
        Assert.All(files, r => Assert.Equal((Fake.BaseUrl, FakeMediaProvider.WahaApiKey), (r.Origin, r.Header("X-Api-Key"))));

        var ownInChat = seen[t.Key(out1)].Event;
        var ownInGroup = seen[t.Key(out3)].Event;
        Assert.Equal((true, Customer, false, Owner, "Loja Centro", "message.any"), (ownInChat.FromMe, ownInChat.ChatId, ownInChat.IsGroup, ownInChat.SenderId, ownInChat.SenderName, ownInChat.ProviderEventType));
        Assert.Equal((true, groupJid, true, Owner, "Pedido 1234 entregue à transportadora."), (ownInGroup.FromMe, ownInGroup.ChatId, ownInGroup.IsGroup, ownInGroup.SenderId, ownInGroup.Text));
        Assert.Equal("message", seen[t.Key(c1)].Event.ProviderEventType);

        AssertStatus(seen[t.Key(out1, "|read")].Event, out1, InboxMessageStatus.Read, "3", Customer);
        var failed = seen[t.Key(out2, "|failed")].Event;
        Assert.Equal((InboxEventKind.Status, out2, InboxMessageStatus.Failed, Customer), (failed.Kind, failed.ExternalId, failed.Status, failed.ChatId));
        Assert.Equal(("-1", "ERROR"), (failed.StatusError!.Code, failed.StatusError.Title));
        var read = seen[t.Key(out3, $"|read|{Member1}")].Event;
        var delivered = seen[t.Key(out3, $"|delivered|{Member2}")].Event;
        Assert.Equal((out3, InboxMessageStatus.Read, groupJid, true, Member1, "message.ack.group"), (read.ExternalId, read.Status, read.ChatId, read.IsGroup, read.SenderId, read.ProviderEventType));
        Assert.Equal((out3, InboxMessageStatus.Delivered, groupJid, true, Member2), (delivered.ExternalId, delivered.Status, delivered.ChatId, delivered.IsGroup, delivered.SenderId));
    }

    // ================================================================================================ W-API

    [Fact]
    public async Task WApi_chat_and_group_webhooks_with_media_reach_the_handler_once_per_event_in_chat_order()
    {
        const string instanceId = "R7K2QX-9MZP4A-T3HV8C";
        const string groupJid = "120363025246125486@g.us";
        var t = new Traffic(host, "wapi", "rt-wapi");
        var media = new MediaSet(Fake);
        static string Id(int n) => "3EB0D1E2F3A4B5C6" + n.ToString("X4", CultureInfo.InvariantCulture);
        var (c1, g1, g2, react, location, contact, sentByApi, last, groupLast) = (Id(1), Id(2), Id(3), Id(4), Id(5), Id(6), Id(7), Id(8), Id(9));
        var out1 = Id(101);
        var moment = T0;

        JsonObject Received(string messageId, object msgContent, string? member = null, string pushName = "Ana Souza")
        {
            moment += 5;
            return new JsonObject
            {
                ["event"] = "webhookReceived",
                ["instanceId"] = instanceId,
                ["connectedPhone"] = Owner,
                ["isGroup"] = member is not null,
                ["messageId"] = messageId,
                ["fromMe"] = false,
                ["chat"] = new JsonObject { ["id"] = member is null ? Customer : groupJid, ["profilePicture"] = "https://pps.whatsapp.net/v/t61.24694-24/chat.jpg" },
                ["sender"] = new JsonObject { ["id"] = member ?? Customer, ["profilePicture"] = "https://pps.whatsapp.net/v/t61.24694-24/sender.jpg", ["pushName"] = pushName, ["verifiedBizName"] = "" },
                ["moment"] = moment,
                ["msgContent"] = Node(msgContent),
            };
        }

        JsonObject Baileys(FakeMedia m, object? extra = null)
        {
            var node = new JsonObject
            {
                ["url"] = "https://mmg.whatsapp.net/o1/v/t62.7118-24/f2/m269/AQN" + m.MessageId + "?ccb=9-4&oh=01_Q5Aa&oe=68A1B2C3&_nc_sid=e6ed6c&mms3=true",
                ["mimetype"] = m.MimeType,
                ["fileSha256"] = m.Sha256Base64,
                ["fileLength"] = m.Size.ToString(CultureInfo.InvariantCulture),
                ["mediaKey"] = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)),
                ["fileEncSha256"] = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)),
                ["directPath"] = "/o1/v/t62.7118-24/f2/m269/AQN" + m.MessageId + "?ccb=9-4&oh=01_Q5Aa&oe=68A1B2C3&_nc_sid=e6ed6c",
                ["mediaKeyTimestamp"] = (T0 - 5).ToString(CultureInfo.InvariantCulture),
            };
            return With(node, extra);
        }

        await t.PostAsync(Json(Received(c1, new { conversation = "Oi! Vocês têm o tênis azul no 42?" })), (t.Key(c1), Customer));
        await t.PostAsync(Json(Received(g1, new { conversation = "O pedido 1234 já saiu?" }, Member1, "Bruno Lima")), (t.Key(g1), groupJid));
        var imagePost = await t.PostAsync(
            Json(Received(media.Image.MessageId, new JsonObject { ["imageMessage"] = Baileys(media.Image, new { caption = "É este aqui?", height = 1600, width = 1200 }) })),
            (t.Key(media.Image.MessageId), Customer));
        await t.PostAsync(
            Json(Received(g2, new
            {
                extendedTextMessage = new
                {
                    text = "Saiu sim, está na transportadora",
                    contextInfo = new { stanzaId = g1, participant = Member1 + "@s.whatsapp.net", quotedMessage = new { conversation = "O pedido 1234 já saiu?" } },
                },
            }, Member2, "Carla Dias")),
            (t.Key(g2), groupJid));
        await t.PostAsync(
            Json(Received(media.Voice.MessageId, new JsonObject { ["audioMessage"] = Baileys(media.Voice, new { seconds = 7, ptt = true }) })),
            (t.Key(media.Voice.MessageId), Customer));
        await t.PostAsync(
            Json(Received(react, new { reactionMessage = new { key = new { remoteJid = Customer + "@s.whatsapp.net", fromMe = true, id = out1 }, text = "❤️", senderTimestampMs = ((T0 + 30) * 1000).ToString(CultureInfo.InvariantCulture) } })),
            (t.Key(react), Customer));
        await t.PostAsync(
            Json(Received(location, new { locationMessage = new { degreesLatitude = -23.5614, degreesLongitude = -46.6559, name = "Loja Paulista", address = "Av. Paulista, 1000 - São Paulo" } }, Member1, "Bruno Lima")),
            (t.Key(location), groupJid));
        await t.PostAsync(
            Json(Received(media.Video.MessageId, new JsonObject { ["videoMessage"] = Baileys(media.Video, new { caption = "Olha o defeito", seconds = 9 }) })),
            (t.Key(media.Video.MessageId), Customer));
        await t.PostAsync(
            Json(Received(contact, new
            {
                contactMessage = new { displayName = "Diego Rocha", vcard = "BEGIN:VCARD\nVERSION:3.0\nN:;Diego Rocha;;;\nFN:Diego Rocha\nitem1.TEL;waid=5511987650004:+55 11 98765-0004\nitem1.X-ABLabel:Celular\nEND:VCARD" },
            }, Member2, "Carla Dias")),
            (t.Key(contact), groupJid));
        await t.PostAsync(
            Json(Received(media.Document.MessageId, new JsonObject
            {
                ["documentMessage"] = Baileys(media.Document, new { title = "nota-fiscal-1234", fileName = "nota-fiscal-1234.pdf", caption = "Segue a nota", pageCount = 2 }),
            })),
            (t.Key(media.Document.MessageId), Customer));
        await t.PostAsync(
            Json(Received(media.Sticker.MessageId, new JsonObject { ["stickerMessage"] = Baileys(media.Sticker, new { isAnimated = false }) })),
            (t.Key(media.Sticker.MessageId), Customer));

        // A message the business sent through W-API's API comes back as webhookDelivery.
        var delivery = Received(sentByApi, new { conversation = "Olá Ana, seu pedido chega amanhã." });
        delivery["event"] = "webhookDelivery";
        delivery["fromApi"] = true;
        delivery.Remove("sender");
        await t.PostAsync(Json(delivery), (t.Key(sentByApi), Customer));

        await t.RetryAsync(imagePost);
        await t.PostAsync(Json(Received(groupLast, new { conversation = "Valeu!" }, Member1, "Bruno Lima")), (t.Key(groupLast), groupJid));
        await t.PostAsync(Json(Received(last, new { conversation = "Até amanhã" })), (t.Key(last), Customer));

        var seen = await t.DeliveredAsync();

        Assert.All(seen.Values, s => Assert.Equal(instanceId, s.Event.ProviderInstanceId));
        AssertMessage(seen[t.Key(c1)].Event, InboxMessageType.Text, Customer, Customer, "Ana Souza", isGroup: false, "Oi! Vocês têm o tênis azul no 42?");
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(T0 + 5), seen[t.Key(c1)].Event.OccurredAt);
        AssertGroupTalk(seen, t, groupJid, (g1, g2, location, contact), Shop, FormattedPhone);
        AssertMessage(seen[t.Key(react)].Event, InboxMessageType.Reaction, Customer, Customer, "Ana Souza", isGroup: false, text: null);
        Assert.Equal(new ReactionInfo("❤️", out1), seen[t.Key(react)].Event.Reaction);
        var own = seen[t.Key(sentByApi)].Event;
        Assert.Equal((InboxEventKind.Message, "webhookDelivery", true, Customer, Owner, "Olá Ana, seu pedido chega amanhã."), (own.Kind, own.ProviderEventType, own.FromMe, own.ChatId, own.SenderId, own.Text));

        var imageEvent = seen[t.Key(media.Image.MessageId)].Event;
        AssertMessage(imageEvent, InboxMessageType.Image, Customer, Customer, "Ana Souza", isGroup: false, "É este aqui?");
        Assert.Equal((media.Image.MessageId, media.Image.Sha256Base64, media.Image.Size), (imageEvent.Media!.MediaId, imageEvent.Media.Sha256, imageEvent.Media.FileSize));
        await AssertMediaAsync(seen, t, media, m => t.Key(m.MessageId));
        Assert.All(media.All, m => Assert.Equal((1, 1), (m.InfoRequests, m.DownloadRequests)));

        // Each file was asked for with W-API's instance id, the bearer, and the chat's phone.
        var asked = Fake.RequestsTo("/wapi/v1/message/download-media");
        Assert.Equal(5, asked.Count);
        Assert.All(asked, r => Assert.Equal(("?instanceId=" + instanceId, "Bearer " + FakeMediaProvider.WApiToken), (r.Query, r.Header("Authorization"))));
    }

    // ================================================================================================ helpers

    /// <summary>One instance's traffic: every webhook posted, in order, and the events (dedupe key, chat) each should give.</summary>
    private sealed class Traffic(RealTrafficHost host, string provider, string instance)
    {
        private readonly List<(string Key, string Chat)> _expected = [];
        private readonly List<long> _rawIds = [];
        private readonly List<long> _retried = [];

        public string Key(string externalId, string suffix = "") => $"{provider}|{instance}|{externalId}{suffix}";

        /// <summary>Posts a webhook as the provider does; it must be stored (200 "stored") and give these events.</summary>
        public async Task<(byte[] Body, long Id)> PostAsync(string json, params (string Key, string Chat)[] events)
        {
            var body = Encoding.UTF8.GetBytes(json);
            var answer = await SendAsync(body);
            Assert.True(answer is { Status: HttpStatusCode.OK, State: "stored", Id: not null }, $"{provider} webhook answered {(int)answer.Status} {answer.Raw}");
            _rawIds.Add(answer.Id!.Value);
            _expected.AddRange(events);
            return (body, answer.Id.Value);
        }

        /// <summary>Posts the same bytes again, as a provider retry does: 200 "duplicate" with the first row's id.</summary>
        public async Task RetryAsync((byte[] Body, long Id) posted)
        {
            var answer = await SendAsync(posted.Body);
            Assert.Equal((HttpStatusCode.OK, "duplicate", posted.Id), (answer.Status, answer.State, answer.Id));
            _retried.Add(posted.Id);
        }

        /// <summary>
        /// Waits until every expected event reached the handler, then checks: each exactly once (and nothing else), per chat
        /// in posting order, sequence numbers in posting order, every raw webhook ingested and each retry counted once.
        /// </summary>
        public async Task<IReadOnlyDictionary<string, InboxEventContext>> DeliveredAsync()
        {
            var keys = _expected.Select(e => e.Key).ToHashSet(StringComparer.Ordinal);
            Assert.Equal(_expected.Count, keys.Count);
            try
            {
                await Eventually.TrueAsync(() => keys.IsSubsetOf(Seen().Select(s => s.IdempotencyKey)), $"the {keys.Count} {provider} events to reach the handler", TimeSpan.FromSeconds(60));
            }
            catch (TimeoutException timeout)
            {
                // Say what each chat is waiting for: its first pending event and that event's media.
                var waiting = new List<string>();
                foreach (var chat in _expected.Select(e => e.Chat).Distinct())
                {
                    var pending = await host.Store.GetPendingEventsAsync(provider, instance, chat, 1);
                    if (pending.Count > 0) waiting.Add($"{chat}: {pending[0].Event.DedupeKey} media {pending[0].Media.Status} {pending[0].Media.Error}");
                }

                var missing = keys.Except(Seen().Select(s => s.IdempotencyKey)).ToList();
                var unexpected = Seen().Select(s => $"{s.IdempotencyKey} (chat {s.Event.ChatId})").Where(k => !keys.Contains(k.Split(' ')[0])).Take(3);
                throw new TimeoutException(
                    $"{timeout.Message}; {missing.Count} missing, first {string.Join(", ", missing.Take(3))}; waiting: {string.Join("; ", waiting)}; unexpected: {string.Join(", ", unexpected)}",
                    timeout);
            }

            var seen = Seen();

            Assert.Equal(keys.Order(StringComparer.Ordinal), seen.Select(s => s.IdempotencyKey).Order(StringComparer.Ordinal));
            Assert.All(seen, s =>
            {
                Assert.Equal(s.Event.DedupeKey, s.IdempotencyKey);
                Assert.False(s.IsMediaUpdate);
                Assert.Equal(1, s.Attempt);
                Assert.Equal((provider, instance), (s.Event.Provider, s.Event.Instance));
            });
            foreach (var chat in _expected.Select(e => e.Chat).Distinct())
            {
                Assert.Equal(_expected.Where(e => e.Chat == chat).Select(e => e.Key), seen.Where(s => s.Event.ChatId == chat).Select(s => s.IdempotencyKey));
            }

            Assert.Equal(_expected.Select(e => e.Key), seen.OrderBy(s => s.Sequence).Select(s => s.IdempotencyKey));

            var raws = await host.Store.ListRawWebhooksAsync(new RawWebhookQuery { Provider = provider, Instance = instance, Limit = int.MaxValue });
            Assert.Equal(_rawIds.Order(), raws.Select(r => r.Id).Order());
            Assert.All(raws, r => Assert.True(r.Status == RawWebhookStatus.Ingested, $"raw webhook {r.Id} is {r.Status}: {r.Error}"));
            Assert.Equal(_rawIds.Select(id => _retried.Count(r => r == id)), _rawIds.Select(id => raws.Single(r => r.Id == id).Duplicates));
            return seen.ToDictionary(s => s.IdempotencyKey, StringComparer.Ordinal);
        }

        /// <summary>The media is stored with the served file's size, type and SHA-256, and reads back as those bytes.</summary>
        public async Task AssertStoredAsync(InboxEventContext context, FakeMedia media)
        {
            var bytes = media.ToArray();
            var stored = context.Media;
            Assert.True(stored.Status == MediaStatus.Stored, $"{context.IdempotencyKey}: media {stored.Status} {stored.Error}");
            Assert.Equal((bytes.Length, media.MimeType, Convert.ToHexString(SHA256.HashData(bytes)).ToLowerInvariant()), (stored.Size!.Value, stored.MimeType, stored.Sha256));
            Assert.Null(stored.Error);
            Assert.Matches(
                $@"^{Regex.Escape(instance)}/\d{{4}}/\d{{2}}/\d{{2}}/{context.EventId}\.{Regex.Escape(MediaKeys.ExtensionFor(media.MimeType))}$",
                stored.Key);

            await using (var file = await context.OpenMediaAsync())
            {
                Assert.NotNull(file);
                using var copy = new MemoryStream();
                await file.CopyToAsync(copy);
                Assert.Equal(bytes, copy.ToArray());
            }

            var url = await context.GetMediaUrlAsync(TimeSpan.FromMinutes(5));
            Assert.NotNull(url);
            using var response = await host.Client.GetAsync(url.PathAndQuery);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(bytes, await response.Content.ReadAsByteArrayAsync());
            Assert.Equal(media.MimeType.Split(';')[0], response.Content.Headers.ContentType?.MediaType);
        }

        private async Task<CaptureAnswer> SendAsync(byte[] body)
        {
            using var request = WebhookHost.SignedPost(provider, instance, body, "application/json; charset=utf-8");
            if (provider == "waha")
            {
                request.Headers.Add("X-Webhook-Request-Id", "req_" + Convert.ToHexString(SHA256.HashData(body))[..26].ToLowerInvariant());
                request.Headers.Add("X-Webhook-Timestamp", (T0 * 1000).ToString(CultureInfo.InvariantCulture));
            }

            request.Headers.UserAgent.ParseAdd(provider switch
            {
                "meta" => "facebookexternalua",
                "evolution" => "axios/1.7.9",
                "waha" => "WAHA/2025.3.1",
                _ => "okhttp/4.12.0",
            });
            using var response = await host.Client.SendAsync(request);
            return await CaptureAnswer.ReadAsync(response);
        }

        private List<InboxEventContext> Seen() =>
            host.Recorder.Seen.Where(s => s.Event.Provider == provider && s.Event.Instance == instance).ToList();
    }

    /// <summary>One file of each kind, registered with the fake provider: a photo, a voice note, a video, a PDF and a sticker.</summary>
    private sealed class MediaSet(FakeMediaProvider fake)
    {
        public FakeMedia Image { get; } = fake.AddMedia(File([0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, (byte)'J', (byte)'F', (byte)'I', (byte)'F'], 183_211), "image/jpeg");

        public FakeMedia Voice { get; } = fake.AddMedia(File("OggS"u8.ToArray(), 23_517), "audio/ogg; codecs=opus");

        public FakeMedia Video { get; } = fake.AddMedia(File([0x00, 0x00, 0x00, 0x20, (byte)'f', (byte)'t', (byte)'y', (byte)'p', (byte)'i', (byte)'s', (byte)'o', (byte)'m'], 612_345), "video/mp4");

        public FakeMedia Document { get; } = fake.AddMedia(File("%PDF-1.7\n"u8.ToArray(), 64_123), "application/pdf");

        public FakeMedia Sticker { get; } = fake.AddMedia(File("RIFF\0\0\0\0WEBPVP8 "u8.ToArray(), 18_002), "image/webp");

        public IEnumerable<FakeMedia> All => [Image, Voice, Video, Document, Sticker];

        private static byte[] File(byte[] magic, int size)
        {
            var bytes = RandomNumberGenerator.GetBytes(size);
            magic.CopyTo(bytes, 0);
            return bytes;
        }
    }

    /// <summary>The shop's location as every test shares it in the group.</summary>
    private static readonly LocationInfo Shop = new(-23.5614, -46.6559) { Name = "Loja Paulista", Address = "Av. Paulista, 1000 - São Paulo" };

    /// <summary>The shared contact's phone, as the providers that send a formatted number give it.</summary>
    private static readonly ContactPhone FormattedPhone = new("+55 11 98765-0004", "5511987650004");

    /// <summary>
    /// The group part of the conversation every test posts: a member's question and another member's reply to it, a
    /// location from the first member and a contact card from the second.
    /// </summary>
    private static void AssertGroupTalk(IReadOnlyDictionary<string, InboxEventContext> seen, Traffic t, string group,
        (string Question, string Reply, string Location, string Contact) ids, LocationInfo location, ContactPhone phone, string question = "O pedido 1234 já saiu?")
    {
        AssertMessage(seen[t.Key(ids.Question)].Event, InboxMessageType.Text, group, Member1, "Bruno Lima", isGroup: true, question);
        AssertMessage(seen[t.Key(ids.Reply)].Event, InboxMessageType.Text, group, Member2, "Carla Dias", isGroup: true, "Saiu sim, está na transportadora");
        Assert.Equal(ids.Question, seen[t.Key(ids.Reply)].Event.ReplyToId);
        AssertMessage(seen[t.Key(ids.Location)].Event, InboxMessageType.Location, group, Member1, "Bruno Lima", isGroup: true, text: null);
        Assert.Equal(location, seen[t.Key(ids.Location)].Event.Location);
        AssertMessage(seen[t.Key(ids.Contact)].Event, InboxMessageType.Contact, group, Member2, "Carla Dias", isGroup: true, text: null);
        var card = Assert.Single(seen[t.Key(ids.Contact)].Event.Contacts);
        Assert.Equal(("Diego Rocha", phone), (card.Name, Assert.Single(card.Phones)));
    }

    /// <summary>
    /// The media every test posts in the 1:1 chat beyond its photo: the voice note (flagged as one where the provider says
    /// so), the video and the document with their captions and file name, the sticker; then all five files stored with the
    /// bytes the fake provider served. <paramref name="key"/> gives a file's event key.
    /// </summary>
    private static async Task AssertMediaAsync(IReadOnlyDictionary<string, InboxEventContext> seen, Traffic t, MediaSet media, Func<FakeMedia, string> key, bool voiceFlagged = true)
    {
        var voice = seen[key(media.Voice)].Event;
        Assert.Equal(InboxMessageType.Audio, voice.MessageType);
        if (voiceFlagged) Assert.Equal("true", voice.Media!.Properties["voice"]);
        var video = seen[key(media.Video)].Event;
        Assert.Equal((InboxMessageType.Video, "Olha o defeito"), (video.MessageType, video.Caption));
        var document = seen[key(media.Document)].Event;
        Assert.Equal((InboxMessageType.Document, "Segue a nota", "nota-fiscal-1234.pdf"), (document.MessageType, document.Caption, document.Media!.FileName));
        Assert.Equal(InboxMessageType.Sticker, seen[key(media.Sticker)].Event.MessageType);
        foreach (var m in media.All) await t.AssertStoredAsync(seen[key(m)], m);
    }

    private static void AssertMessage(InboxEvent e, InboxMessageType type, string chat, string sender, string senderName, bool isGroup, string? text)
    {
        Assert.Equal(
            (InboxEventKind.Message, type, chat, sender, senderName, isGroup, false, text),
            (e.Kind, e.MessageType, e.ChatId, e.SenderId, e.SenderName, e.IsGroup, e.FromMe, e.Text));
    }

    private static void AssertStatus(InboxEvent e, string messageId, InboxMessageStatus status, string providerStatus, string chat)
    {
        Assert.Equal(
            (InboxEventKind.Status, messageId, status, providerStatus, chat, false, true, (StatusError?)null),
            (e.Kind, e.ExternalId, e.Status, e.ProviderStatus, e.ChatId, e.IsGroup, e.FromMe, e.StatusError));
    }

    /// <summary>The node with the properties of <paramref name="extra"/> (an object serialized to JSON) added.</summary>
    private static JsonObject With(JsonObject node, object? extra)
    {
        if (extra is null) return node;
        foreach (var (name, value) in Node(extra).AsObject().ToList()) node[name] = value?.DeepClone();
        return node;
    }

    /// <summary>A protobuf long as Baileys serializes it: <c>{low, high, unsigned}</c>.</summary>
    private static JsonObject BaileysLong(long value, bool unsigned = false) =>
        new() { ["low"] = unchecked((int)value), ["high"] = (int)(value >> 32), ["unsigned"] = unsigned };

    /// <summary>A byte array as Baileys serializes it: an object keyed by index.</summary>
    private static JsonObject IndexKeyed(byte[] bytes)
    {
        var node = new JsonObject();
        for (var i = 0; i < bytes.Length; i++) node[i.ToString(CultureInfo.InvariantCulture)] = bytes[i];
        return node;
    }

    private static JsonNode Node(object value) => JsonSerializer.SerializeToNode(value, Relaxed)!;

    private static string Json(JsonNode node) => node.ToJsonString(Relaxed);
}
