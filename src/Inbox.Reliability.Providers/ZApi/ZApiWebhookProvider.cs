using System.Globalization;
using System.Text.Json;
using Inbox.Reliability.Events;
using Inbox.Reliability.Providers.Internal;
using Microsoft.Extensions.Options;

namespace Inbox.Reliability.Providers.ZApi;

/// <summary>
/// Z-API: one callback per webhook, told apart by <c>type</c> (<c>ReceivedCallback</c>, <c>MessageStatusCallback</c>
/// with several <c>ids</c>, <c>DeliveryCallback</c>, <c>ConnectedCallback</c>, <c>DisconnectedCallback</c>…).
/// No signature: a shared secret in the query string or a header.
/// </summary>
internal sealed class ZApiWebhookProvider(IOptions<ZApiOptions> options) : WebhookProviderBase
{
    private readonly SharedSecretSettings _auth = new(options.Value);

    public override string Name => WebhookProviderNames.ZApi;

    protected override string Title => "Z-API";

    public override WebhookAuthResult Authenticate(WebhookRequest request) => _auth.Authenticate(request);

    protected override string? EventType(JsonElement root) => root.Str("type");

    protected override void Parse(JsonElement root, EventContext context, List<InboxEvent> events)
    {
        var type = root.NonEmpty("type") ?? throw context.Error("the body has no \"type\", so it is not a Z-API callback.");
        var instanceId = root.NonEmpty("instanceId");
        var occurredAt = UnixTime.From(root.Long("momment"));
        switch (type)
        {
            case "ReceivedCallback":
                events.Add(Message(root, type, instanceId, occurredAt, context));
                break;
            case "MessageStatusCallback":
                Statuses(root, type, instanceId, occurredAt, context, events);
                break;
            case "DeliveryCallback":
                events.Add(Delivery(root, type, instanceId, occurredAt, context));
                break;
            case "ConnectedCallback":
                events.Add(context.Connection(Payload.Hash(root), type, instanceId, occurredAt, new ConnectionInfo(InboxConnectionState.Connected, "connected"), root));
                break;
            case "DisconnectedCallback":
                events.Add(context.Connection(Payload.Hash(root), type, instanceId, occurredAt,
                    new ConnectionInfo(InboxConnectionState.Disconnected, "disconnected") { Reason = root.NonEmpty("error") }, root));
                break;
            default:
                // PresenceChatCallback and anything newer: kept.
                events.Add(context.Other(Payload.Hash(root), type, instanceId, occurredAt, root));
                break;
        }
    }

    private static InboxEvent Message(JsonElement root, string type, string? instanceId, DateTimeOffset? occurredAt, EventContext context)
    {
        var id = root.NonEmpty("messageId") ?? throw context.Error("ReceivedCallback has no \"messageId\".");
        var phone = Jid.Normalize(root.Str("phone")) ?? throw context.Error("ReceivedCallback has no \"phone\".");
        var isGroup = root.Bool("isGroup") ?? Jid.IsGroup(phone);
        var fromMe = root.Bool("fromMe") ?? false;
        var connectedPhone = Jid.Normalize(root.Str("connectedPhone"));
        var sender = fromMe
            ? connectedPhone
            : isGroup ? Jid.Normalize(root.Str("participantPhone")) ?? Jid.Normalize(root.Str("participantLid")) : phone;
        var isEdit = root.Bool("isEdit") ?? false;
        var content = ReadContent(root);
        return new InboxEvent
        {
            Kind = InboxEventKind.Message,
            Provider = context.Provider,
            Instance = context.Instance,
            ExternalId = id,
            // An edit arrives with the edited message's id; its own key keeps it from being dropped as a duplicate.
            DedupeKey = context.MessageKey(id, isEdit ? root.Long("momment")?.ToString(CultureInfo.InvariantCulture) ?? Payload.Hash(root) : null),
            ProviderEventType = type,
            ProviderInstanceId = instanceId,
            ChatId = phone,
            IsGroup = isGroup,
            SenderId = sender,
            SenderName = root.NonEmpty("senderName") ?? (isGroup ? null : root.NonEmpty("chatName")),
            FromMe = fromMe,
            OccurredAt = occurredAt ?? context.ReceivedAt,
            MessageType = content.Type,
            Text = content.Text,
            Caption = content.Caption,
            ReplyToId = root.NonEmpty("referenceMessageId"),
            IsForwarded = root.Bool("forwarded") ?? false,
            IsEdit = isEdit,
            Media = content.Media,
            Location = content.Location,
            Contacts = content.Contacts,
            Reaction = content.Reaction,
            Raw = Payload.Raw(root),
        };
    }

    private static void Statuses(JsonElement root, string type, string? instanceId, DateTimeOffset? occurredAt, EventContext context, List<InboxEvent> events)
    {
        var ids = root.Items("ids").Select(JsonRead.AsString).Where(i => !string.IsNullOrEmpty(i)).Select(i => i!).Distinct(StringComparer.Ordinal).ToList();
        if (ids.Count == 0) return; // Nothing to report per message: the caller keeps the callback as one "other" event.
        var providerStatus = root.NonEmpty("status") ?? throw context.Error("MessageStatusCallback has no \"status\".");
        var phone = Jid.Normalize(root.Str("phone")) ?? throw context.Error("MessageStatusCallback has no \"phone\".");
        var isGroup = root.Bool("isGroup") ?? Jid.IsGroup(phone);
        var participant = isGroup ? Jid.Normalize(root.Str("participantPhone")) : null;
        var status = providerStatus.ToUpperInvariant() switch
        {
            "SENT" => InboxMessageStatus.Sent,
            "RECEIVED" => InboxMessageStatus.Delivered,
            "READ" or "READ_BY_ME" => InboxMessageStatus.Read,
            "PLAYED" => InboxMessageStatus.Played,
            "FAILED" or "ERROR" => InboxMessageStatus.Failed,
            "DELETED" => InboxMessageStatus.Deleted,
            "PENDING" => InboxMessageStatus.Pending,
            _ => InboxMessageStatus.Unknown,
        };

        // READ_BY_ME: the connected number read a message it received.
        var fromMe = !string.Equals(providerStatus, "READ_BY_ME", StringComparison.OrdinalIgnoreCase);
        var raw = Payload.Raw(root);
        foreach (var id in ids)
        {
            events.Add(new InboxEvent
            {
                Kind = InboxEventKind.Status,
                Provider = context.Provider,
                Instance = context.Instance,
                ExternalId = id,
                DedupeKey = context.StatusKey(id, status, providerStatus, participant),
                ProviderEventType = type,
                ProviderInstanceId = instanceId,
                ChatId = phone,
                IsGroup = isGroup,
                SenderId = participant,
                FromMe = fromMe,
                OccurredAt = occurredAt ?? context.ReceivedAt,
                Status = status,
                ProviderStatus = providerStatus,
                StatusError = status == InboxMessageStatus.Failed ? new StatusError { Title = providerStatus } : null,
                Raw = raw,
            });
        }
    }

    private static InboxEvent Delivery(JsonElement root, string type, string? instanceId, DateTimeOffset? occurredAt, EventContext context)
    {
        var id = root.NonEmpty("messageId") ?? throw context.Error("DeliveryCallback has no \"messageId\".");
        var phone = Jid.Normalize(root.Str("phone")) ?? throw context.Error("DeliveryCallback has no \"phone\".");
        var error = root.Get("error") is { } e ? JsonRead.AsString(e) ?? (e.ValueKind == JsonValueKind.True ? "error" : null) : null;
        var status = string.IsNullOrEmpty(error) ? InboxMessageStatus.Sent : InboxMessageStatus.Failed;
        return new InboxEvent
        {
            Kind = InboxEventKind.Status,
            Provider = context.Provider,
            Instance = context.Instance,
            ExternalId = id,
            DedupeKey = context.StatusKey(id, status, type, null),
            ProviderEventType = type,
            ProviderInstanceId = instanceId,
            ChatId = phone,
            IsGroup = Jid.IsGroup(phone),
            FromMe = true,
            OccurredAt = occurredAt ?? context.ReceivedAt,
            Status = status,
            ProviderStatus = type,
            StatusError = status == InboxMessageStatus.Failed ? new StatusError { Title = type, Message = error } : null,
            Raw = Payload.Raw(root),
        };
    }

    private static MessageContent ReadContent(JsonElement root)
    {
        var content = new MessageContent();
        if (root.Obj("text") is { } text)
        {
            content.Type = InboxMessageType.Text;
            content.Text = text.Str("message");
        }
        else if (root.Obj("image") is { } image)
        {
            Media(InboxMessageType.Image, image, "imageUrl", content, ("thumbnailUrl", image.NonEmpty("thumbnailUrl")));
        }
        else if (root.Obj("audio") is { } audio)
        {
            Media(InboxMessageType.Audio, audio, "audioUrl", content, ("voice", audio.Bool("ptt") == true ? "true" : null));
        }
        else if (root.Obj("video") is { } video)
        {
            Media(InboxMessageType.Video, video, "videoUrl", content);
        }
        else if (root.Obj("document") is { } document)
        {
            Media(InboxMessageType.Document, document, "documentUrl", content);
        }
        else if (root.Obj("sticker") is { } sticker)
        {
            Media(InboxMessageType.Sticker, sticker, "stickerUrl", content);
        }
        else if (root.Obj("location") is { } location)
        {
            content.Type = InboxMessageType.Location;
            if (location.Double("latitude") is { } latitude && location.Double("longitude") is { } longitude)
            {
                content.Location = new LocationInfo(latitude, longitude)
                {
                    Name = location.NonEmpty("name"),
                    Address = location.NonEmpty("address"),
                    Url = location.NonEmpty("url"),
                };
            }
        }
        else if (root.Obj("contact") is { } contact)
        {
            content.Type = InboxMessageType.Contact;
            var vcard = contact.NonEmpty("vCard");
            var phones = contact.Items("phones").Select(JsonRead.AsString).Where(p => !string.IsNullOrEmpty(p)).Take(100)
                .Select(p => new ContactPhone(p!, p!.All(char.IsAsciiDigit) ? p : null)).ToArray();
            content.Contacts = [new ContactCard { Name = contact.NonEmpty("displayName"), VCard = vcard, Phones = phones.Length > 0 ? phones : VCard.Phones(vcard) }];
        }
        else if (root.Obj("reaction") is { } reaction)
        {
            content.Type = InboxMessageType.Reaction;
            content.Reaction = new ReactionInfo(reaction.Str("value") ?? "", reaction.Obj("referencedMessage")?.NonEmpty("messageId"));
        }
        else if (root.Obj("buttonsResponseMessage") is { } buttons)
        {
            content.Type = InboxMessageType.Interactive;
            content.Text = buttons.NonEmpty("message") ?? buttons.NonEmpty("buttonId");
        }
        else if (root.Obj("listResponseMessage") is { } list)
        {
            content.Type = InboxMessageType.Interactive;
            content.Text = list.NonEmpty("title") ?? list.NonEmpty("message") ?? list.NonEmpty("selectedRowId");
        }
        else if (root.Obj("poll") is { } poll)
        {
            content.Type = InboxMessageType.Poll;
            content.Text = poll.NonEmpty("question");
        }

        return content;
    }

    private static void Media(InboxMessageType type, JsonElement media, string urlName, MessageContent content, params (string Key, string? Value)[] properties)
    {
        content.Type = type;
        content.Media = new MediaReference
        {
            Url = media.NonEmpty(urlName),
            MimeType = media.NonEmpty("mimeType"),
            FileName = media.NonEmpty("fileName"),
            Properties = EventContext.Properties(properties),
        };
        content.SetCaption(media.NonEmpty("caption"));
    }
}
