using System.Text.Json;
using Inbox.Reliability.Events;

namespace Inbox.Reliability.Providers.Internal;

/// <summary>
/// Reads a WhatsApp Web (Baileys) <c>message</c> object, the content shape of Evolution API's <c>data.message</c> and
/// W-API's <c>msgContent</c>: <c>conversation</c>, <c>extendedTextMessage</c>, <c>imageMessage</c>… Wrappers
/// (ephemeral, view-once, document with caption) are unwrapped. Binary fields may be index-keyed objects and longs
/// <c>{low,high,unsigned}</c>; the media's file bytes and keys are never copied.
/// </summary>
internal static class BaileysMessage
{
    private static readonly string[] Wrappers =
    [
        "ephemeralMessage", "viewOnceMessage", "viewOnceMessageV2", "viewOnceMessageV2Extension", "documentWithCaptionMessage",
    ];

    private static readonly string[] Known =
    [
        "conversation", "extendedTextMessage", "imageMessage", "videoMessage", "ptvMessage", "audioMessage", "documentMessage",
        "stickerMessage", "locationMessage", "liveLocationMessage", "contactMessage", "contactsArrayMessage", "reactionMessage",
        "pollCreationMessage", "pollCreationMessageV2", "pollCreationMessageV3", "buttonsResponseMessage", "listResponseMessage",
        "templateButtonReplyMessage", "interactiveResponseMessage",
    ];

    /// <summary>Reads the content. <paramref name="typeHint"/> is Evolution's <c>messageType</c>; <paramref name="outerContext"/> its <c>data.contextInfo</c>.</summary>
    public static MessageContent Read(JsonElement? message, string? typeHint, JsonElement? outerContext)
    {
        var content = new MessageContent();
        if (message is { ValueKind: JsonValueKind.Object } m)
        {
            var key = Find(m, typeHint);
            for (var depth = 0; key is null && depth < 4; depth++)
            {
                var inner = Wrappers.Select(w => m.Get(w)?.Obj("message")).FirstOrDefault(x => x is not null);
                if (inner is null) break;
                m = inner.Value;
                key = Find(m, typeHint);
            }

            if (key is not null && m.Get(key) is { } value)
            {
                ReadContent(key, value, content);
                ReadContext(value.Obj("contextInfo"), content);
            }
        }

        ReadContext(outerContext, content);
        return content;
    }

    private static string? Find(JsonElement message, string? typeHint)
    {
        if (typeHint is not null && Array.IndexOf(Known, typeHint) >= 0 && message.Get(typeHint) is not null) return typeHint;
        return Array.Find(Known, k => message.Get(k) is not null);
    }

    private static void ReadContext(JsonElement? context, MessageContent content)
    {
        if (context is not { } c) return;
        content.ReplyToId ??= c.NonEmpty("stanzaId");
        if (c.Bool("isForwarded") == true || c.Long("forwardingScore") > 0) content.IsForwarded = true;
    }

    private static void ReadContent(string key, JsonElement value, MessageContent content)
    {
        switch (key)
        {
            case "conversation":
                content.Type = InboxMessageType.Text;
                content.Text = JsonRead.AsString(value);
                break;
            case "extendedTextMessage":
                content.Type = InboxMessageType.Text;
                content.Text = value.Str("text");
                break;
            case "imageMessage":
                Media(InboxMessageType.Image, value, content);
                break;
            case "videoMessage" or "ptvMessage":
                Media(InboxMessageType.Video, value, content);
                break;
            case "audioMessage":
                Media(InboxMessageType.Audio, value, content);
                break;
            case "documentMessage":
                Media(InboxMessageType.Document, value, content);
                break;
            case "stickerMessage":
                Media(InboxMessageType.Sticker, value, content);
                break;
            case "locationMessage" or "liveLocationMessage":
                content.Type = InboxMessageType.Location;
                var latitude = value.Double("degreesLatitude");
                var longitude = value.Double("degreesLongitude");
                if (latitude is not null && longitude is not null)
                {
                    content.Location = new LocationInfo(latitude.Value, longitude.Value)
                    {
                        Name = value.NonEmpty("name"),
                        Address = value.NonEmpty("address"),
                        Url = value.NonEmpty("url"),
                    };
                }

                content.Text = value.NonEmpty("caption");
                break;
            case "contactMessage":
                content.Type = InboxMessageType.Contact;
                content.Contacts = [Card(value)];
                break;
            case "contactsArrayMessage":
                content.Type = InboxMessageType.Contact;
                content.Contacts = value.Items("contacts").Where(c => c.ValueKind == JsonValueKind.Object).Take(100).Select(Card).ToArray();
                break;
            case "reactionMessage":
                content.Type = InboxMessageType.Reaction;
                content.Reaction = new ReactionInfo(value.Str("text") ?? "", value.Obj("key")?.NonEmpty("id"));
                break;
            case "pollCreationMessage" or "pollCreationMessageV2" or "pollCreationMessageV3":
                content.Type = InboxMessageType.Poll;
                content.Text = value.NonEmpty("name");
                break;
            case "buttonsResponseMessage":
                content.Type = InboxMessageType.Interactive;
                content.Text = value.NonEmpty("selectedDisplayText") ?? value.NonEmpty("selectedButtonId");
                break;
            case "listResponseMessage":
                content.Type = InboxMessageType.Interactive;
                content.Text = value.NonEmpty("title") ?? value.Obj("singleSelectReply")?.NonEmpty("selectedRowId");
                break;
            case "templateButtonReplyMessage":
                content.Type = InboxMessageType.Interactive;
                content.Text = value.NonEmpty("selectedDisplayText") ?? value.NonEmpty("selectedId");
                break;
            case "interactiveResponseMessage":
                content.Type = InboxMessageType.Interactive;
                content.Text = value.Obj("body")?.NonEmpty("text");
                break;
        }
    }

    private static void Media(InboxMessageType type, JsonElement value, MessageContent content)
    {
        content.Type = type;
        if (value.ValueKind != JsonValueKind.Object) return;
        var sha256 = value.Bytes("fileSha256");
        var size = value.Long("fileLength");
        content.Media = new MediaReference
        {
            MimeType = value.NonEmpty("mimetype"),
            FileName = value.NonEmpty("fileName"),
            FileSize = size is >= 0 ? size : null,
            Sha256 = sha256 is { Length: > 0 } ? Convert.ToBase64String(sha256) : null,
            Properties = EventContext.Properties(
                ("encryptedUrl", value.NonEmpty("url")),
                ("directPath", value.NonEmpty("directPath")),
                ("voice", value.Bool("ptt") == true ? "true" : null),
                ("animated", value.Bool("isAnimated") == true ? "true" : null)),
        };
        content.SetCaption(value.NonEmpty("caption"));
    }

    private static ContactCard Card(JsonElement value)
    {
        var vcard = value.NonEmpty("vcard");
        return new ContactCard { Name = value.NonEmpty("displayName"), VCard = vcard, Phones = VCard.Phones(vcard) };
    }
}
