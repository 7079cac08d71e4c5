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

        // The attribute table spells it "ReceivedCallBack"; the examples "ReceivedCallback". Names are matched ignoring case.
        switch (type.ToUpperInvariant())
        {
            case "RECEIVEDCALLBACK":
                if (root.NonEmpty("messageId") is null && root.NonEmpty("notification") is not null)
                {
                    // Account notices (PROFILE_NAME_UPDATED, PROFILE_PICTURE_UPDATED, CHAT_LABEL_ASSOCIATION...) carry no message id.
                    events.Add(context.Other(Payload.Hash(root), type, instanceId, occurredAt, root));
                    break;
                }

                events.Add(Message(root, type, instanceId, occurredAt, context));
                break;
            case "MESSAGESTATUSCALLBACK":
                Statuses(root, type, instanceId, occurredAt, context, events);
                break;
            case "DELIVERYCALLBACK":
                events.Add(Delivery(root, type, instanceId, occurredAt, context));
                break;
            case "CONNECTEDCALLBACK":
                events.Add(context.Connection(Payload.Hash(root), type, instanceId, occurredAt, new ConnectionInfo(InboxConnectionState.Connected, "connected"), root));
                break;
            case "DISCONNECTEDCALLBACK":
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

        // A "...-group" or "...@g.us" chat is a group even when "isGroup" says otherwise (membership requests do).
        var isGroup = root.Bool("isGroup") == true || Jid.IsGroup(phone);
        var fromMe = root.Bool("fromMe") ?? false;
        var participant = Jid.Normalize(root.Str("participantPhone")) ?? Jid.Normalize(root.Str("participantLid"));
        string? sender;
        if (fromMe) sender = Jid.Normalize(root.Str("connectedPhone")) ?? (isGroup ? participant : null);
        else if (isGroup) sender = participant;
        else sender = phone;

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
        var ids = StatusIds(root);
        if (ids.Count == 0) return; // Nothing to report per message: the caller keeps the callback as one "other" event.
        var providerStatus = root.NonEmpty("status") ?? throw context.Error("MessageStatusCallback has no \"status\".");
        var phone = Jid.Normalize(root.Str("phone")) ?? throw context.Error("MessageStatusCallback has no \"phone\".");
        var isGroup = root.Bool("isGroup") == true || Jid.IsGroup(phone);
        var participant = isGroup ? Jid.Normalize(root.Str("participantPhone")) ?? Jid.Normalize(root.Str("participantLid")) : null;
        var status = providerStatus.ToUpperInvariant() switch
        {
            "SENT" => InboxMessageStatus.Sent,
            "RECEIVED" => InboxMessageStatus.Delivered,
            "READ" or "READ_BY_ME" or "READ-SELF" or "READ_SELF" => InboxMessageStatus.Read,
            "PLAYED" => InboxMessageStatus.Played,
            "FAILED" or "ERROR" => InboxMessageStatus.Failed,
            "DELETED" => InboxMessageStatus.Deleted,
            "PENDING" => InboxMessageStatus.Pending,
            _ => InboxMessageStatus.Unknown,
        };

        // READ_BY_ME (older docs: READ-SELF): the connected number read a message it received.
        var fromMe = providerStatus.ToUpperInvariant() is not ("READ_BY_ME" or "READ-SELF" or "READ_SELF");
        var error = root.Get("error") is { } e ? JsonRead.AsString(e) : null;
        var raw = Payload.Raw(root);
        foreach (var id in ids)
        {
            events.Add(context.Status(id, type, instanceId, phone, isGroup, fromMe, occurredAt, status, providerStatus, participant, raw) with
            {
                StatusError = status == InboxMessageStatus.Failed ? new StatusError { Title = providerStatus, Message = string.IsNullOrEmpty(error) ? null : error } : null,
            });
        }
    }

    /// <summary>The message ids of a status callback: <c>ids</c> (an array, as documented, or a single string), else <c>id</c>.</summary>
    private static List<string> StatusIds(JsonElement root)
    {
        var source = root.Get("ids") ?? root.Get("id");
        IEnumerable<string?> values = source switch
        {
            { ValueKind: JsonValueKind.Array } array => array.EnumerateArray().Select(JsonRead.AsString),
            { } single => [JsonRead.AsString(single)],
            null => [],
        };
        return values.Where(i => !string.IsNullOrEmpty(i)).Select(i => i!).Distinct(StringComparer.Ordinal).ToList();
    }

    private static InboxEvent Delivery(JsonElement root, string type, string? instanceId, DateTimeOffset? occurredAt, EventContext context)
    {
        // A failed send may have no WhatsApp message id yet; Z-API's own zaapId (also returned by the send call) identifies it then.
        var id = root.NonEmpty("messageId") ?? root.NonEmpty("zaapId") ?? throw context.Error("DeliveryCallback has no \"messageId\" (nor \"zaapId\").");
        var phone = Jid.Normalize(root.Str("phone")) ?? throw context.Error("DeliveryCallback has no \"phone\".");
        var error = root.Get("error") is { } e ? JsonRead.AsString(e) ?? (e.ValueKind == JsonValueKind.True ? "error" : null) : null;
        var errorCode = root.NonEmpty("errorCode");
        var status = string.IsNullOrEmpty(error) && errorCode is null ? InboxMessageStatus.Sent : InboxMessageStatus.Failed;
        return context.Status(id, type, instanceId, phone, Jid.IsGroup(phone), fromMe: true, occurredAt, status, type, null, Payload.Raw(root)) with
        {
            StatusError = status == InboxMessageStatus.Failed ? new StatusError { Code = errorCode, Title = type, Message = string.IsNullOrEmpty(error) ? null : error } : null,
        };
    }

    private static MessageContent ReadContent(JsonElement root)
    {
        var content = new MessageContent();
        if (root.Obj("text") is { } text)
        {
            content.Type = InboxMessageType.Text;
            content.Text = text.Str("message");
            return content;
        }

        if (ReadMedia(root, content)) return content;
        if (root.Obj("location") is { } location)
        {
            Location(location, content);
        }
        else if (root.Obj("contact") is { } contact)
        {
            content.Type = InboxMessageType.Contact;
            content.Contacts = [Card(contact)];
        }
        else if (root.Arr("contacts") is { } contacts)
        {
            content.Type = InboxMessageType.Contact;
            content.Contacts = contacts.EnumerateArray().Where(c => c.ValueKind == JsonValueKind.Object).Take(100).Select(Card).ToArray();
        }
        else if (root.Obj("reaction") is { } reaction)
        {
            // Removing a reaction arrives as a reaction with an empty value.
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
        else if (root.Obj("hydratedTemplate") is { } template)
        {
            // A template message: its text, with the header's media (the text is then its caption) or location.
            var header = template.Obj("header");
            var message = template.NonEmpty("message");
            if (header is { } h && ReadMedia(h, content))
            {
                content.SetCaption(message);
            }
            else
            {
                if (header?.Obj("location") is { } templateLocation) Location(templateLocation, content);
                else content.Type = InboxMessageType.Text;
                content.Text = message;
            }
        }
        else if (root.Obj("buttonsMessage") is { } buttonsMessage)
        {
            // Buttons sent by the connected number: an image or video with the text as caption, or just text.
            var url = buttonsMessage.NonEmpty("imageUrl") ?? buttonsMessage.NonEmpty("videoUrl");
            var message = buttonsMessage.NonEmpty("message");
            if (url is not null)
            {
                content.Type = buttonsMessage.NonEmpty("imageUrl") is not null ? InboxMessageType.Image : InboxMessageType.Video;
                content.Media = new MediaReference { Url = url };
                content.SetCaption(message);
            }
            else
            {
                content.Type = InboxMessageType.Text;
                content.Text = message;
            }
        }
        else if (root.Obj("carouselMessage") is { } carousel)
        {
            content.Type = InboxMessageType.Text;
            content.Text = carousel.NonEmpty("text");
        }

        // Anything else (notification, pollVote, product, order, payments, pinMessage, event...) is a message of
        // unknown type: Raw has it.
        return content;
    }

    /// <summary>Reads an <c>image</c>, <c>audio</c>, <c>video</c>, <c>document</c> or <c>sticker</c> object; false when there is none.</summary>
    private static bool ReadMedia(JsonElement parent, MessageContent content)
    {
        if (parent.Obj("image") is { } image)
        {
            Media(InboxMessageType.Image, image, "imageUrl", content);
        }
        else if (parent.Obj("audio") is { } audio)
        {
            Media(InboxMessageType.Audio, audio, "audioUrl", content, ("voice", audio.Bool("ptt") == true ? "true" : null));
        }
        else if (parent.Obj("video") is { } video)
        {
            Media(InboxMessageType.Video, video, "videoUrl", content);
        }
        else if (parent.Obj("document") is { } document)
        {
            Media(InboxMessageType.Document, document, "documentUrl", content);
        }
        else if (parent.Obj("sticker") is { } sticker)
        {
            Media(InboxMessageType.Sticker, sticker, "stickerUrl", content, ("animated", sticker.Bool("isAnimated") == true ? "true" : null));
        }
        else
        {
            return false;
        }

        return true;
    }

    private static void Media(InboxMessageType type, JsonElement media, string urlName, MessageContent content, params (string Key, string? Value)[] properties)
    {
        content.Type = type;
        var size = media.Long("fileLength") ?? media.Long("fileSize");
        content.Media = new MediaReference
        {
            Url = media.NonEmpty(urlName),
            MimeType = media.NonEmpty("mimeType"),
            // Documents: "fileName" is "name.pdf", "title" the name shown; the title is used when the file name is empty.
            FileName = media.NonEmpty("fileName") ?? (type == InboxMessageType.Document ? media.NonEmpty("title") : null),
            FileSize = size is >= 0 ? size : null,
            Properties = EventContext.Properties([("thumbnailUrl", media.NonEmpty("thumbnailUrl")), .. properties]),
        };
        content.SetCaption(media.NonEmpty("caption"));
    }

    private static void Location(JsonElement location, MessageContent content)
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

    private static ContactCard Card(JsonElement contact)
    {
        var vcard = contact.NonEmpty("vCard") ?? contact.NonEmpty("vcard");
        var phones = contact.Items("phones").Select(JsonRead.AsString).Where(p => !string.IsNullOrEmpty(p)).Take(100)
            .Select(p => new ContactPhone(p!, p!.All(char.IsAsciiDigit) ? p : null)).ToArray();
        return new ContactCard { Name = contact.NonEmpty("displayName") ?? contact.NonEmpty("name"), VCard = vcard, Phones = phones.Length > 0 ? phones : VCard.Phones(vcard) };
    }
}
