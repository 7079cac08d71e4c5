using System.Security.Cryptography;
using System.Text.Json;
using Inbox.Reliability.Events;
using Inbox.Reliability.Providers.Internal;
using Microsoft.Extensions.Options;

namespace Inbox.Reliability.Providers.Waha;

/// <summary>
/// WAHA: an envelope <c>{id: "evt_…", timestamp (ms), event, session, me, payload}</c> with <c>message</c> /
/// <c>message.any</c>, <c>message.reaction</c>, <c>message.edited</c>, <c>message.revoked</c> (a
/// <see cref="InboxMessageStatus.Deleted"/> status), <c>message.ack</c> / <c>message.ack.group</c> (-1…4) and
/// <c>session.status</c>; any other event is kept as an <see cref="InboxEventKind.Other"/> event. Optional
/// <c>X-Webhook-Hmac</c>: hex HMAC-SHA512 of the raw body.
/// </summary>
internal sealed class WahaWebhookProvider : WebhookProviderBase
{
    private const string SignatureHeader = "X-Webhook-Hmac";
    private const string AlgorithmHeader = "X-Webhook-Hmac-Algorithm";

    private readonly string? _key;
    private readonly IReadOnlyDictionary<string, string> _instanceKeys;

    public WahaWebhookProvider(IOptions<WahaOptions> options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _key = options.Value.HmacKey;
        _instanceKeys = WebhookAuth.Freeze(options.Value.InstanceHmacKeys);
    }

    public override string Name => WebhookProviderNames.Waha;

    protected override string Title => "WAHA";

    public override WebhookAuthResult Authenticate(WebhookRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var key = WebhookAuth.Resolve(request.Secret, _instanceKeys, request.Instance, _key);
        if (key is null) return WebhookAuthResult.NotConfigured("no HMAC key is configured for this instance; X-Webhook-Hmac is not checked");
        if (request.Headers.TryGetValue(AlgorithmHeader, out var algorithm) && !string.Equals(algorithm.Trim(), "sha512", StringComparison.OrdinalIgnoreCase))
            return WebhookAuthResult.Invalid($"{AlgorithmHeader} is not sha512");
        return WebhookAuth.Hmac(request, key, HashAlgorithmName.SHA512, SignatureHeader, prefix: null);
    }

    protected override string? EventType(JsonElement root) => root.Str("event");

    protected override void Parse(JsonElement root, EventContext context, List<InboxEvent> events)
    {
        var eventType = root.NonEmpty("event") ?? throw context.Error("the body has no \"event\", so it is not a WAHA webhook.");
        var session = root.NonEmpty("session");
        var envelopeId = root.NonEmpty("id");
        var envelopeTime = UnixTime.From(root.Long("timestamp"));
        var payload = root.Obj("payload");
        var me = root.Obj("me");
        switch (eventType)
        {
            case "message" or "message.any" or "message.reaction":
                events.Add(Message(payload ?? throw context.Error($"{EventName(eventType)} has no \"payload\" object."), eventType, session, envelopeTime, me, context));
                break;
            case "message.edited":
                events.Add(Edited(payload ?? throw context.Error("message.edited has no \"payload\" object."), eventType, session, envelopeTime, me, context));
                break;
            case "message.revoked":
                events.Add(Revoked(payload ?? throw context.Error("message.revoked has no \"payload\" object."), eventType, session, envelopeTime, context));
                break;
            case "message.ack" or "message.ack.group":
                events.Add(Ack(payload ?? throw context.Error($"{EventName(eventType)} has no \"payload\" object."), eventType, session, envelopeTime, context));
                break;
            case "session.status" when payload is { } p:
                var providerState = p.NonEmpty("status");
                var state = providerState?.ToUpperInvariant() switch
                {
                    "WORKING" => InboxConnectionState.Connected,
                    "STARTING" => InboxConnectionState.Connecting,
                    "STOPPED" or "FAILED" or "SCAN_QR_CODE" => InboxConnectionState.Disconnected,
                    { } s when s.StartsWith("PASSKEY", StringComparison.Ordinal) => InboxConnectionState.Disconnected,
                    _ => InboxConnectionState.Unknown,
                };
                events.Add(context.Connection(envelopeId ?? Payload.Hash(root), eventType, session, envelopeTime,
                    new ConnectionInfo(state, providerState) { Reason = state == InboxConnectionState.Disconnected ? providerState : null }, p));
                break;
            default:
                events.Add(context.Other(envelopeId ?? Payload.Hash(root), eventType, session, envelopeTime, root.Get("payload")));
                break;
        }
    }

    private static InboxEvent Message(JsonElement payload, string eventType, string? session, DateTimeOffset? envelopeTime, JsonElement? me, EventContext context)
    {
        var name = EventName(eventType);
        var id = payload.NonEmpty("id") ?? throw context.Error($"{name} payload has no \"id\".");
        var fromMe = payload.Bool("fromMe") ?? false;
        var from = payload.NonEmpty("from");
        var to = payload.NonEmpty("to");
        var chatJid = ChatJid(from, to, fromMe);
        var chatId = Jid.Normalize(chatJid) ?? throw context.Error($"{name} payload has no \"from\".");
        var isGroup = Jid.IsGroup(chatJid);
        var data = payload.Obj("_data");
        var participant = payload.NonEmpty("participant") ?? (isGroup ? GroupAuthor(payload, data) : null);
        var sender = fromMe
            ? Jid.Normalize(me?.NonEmpty("id") ?? participant ?? from)
            : Jid.Normalize(participant ?? from);
        var senderName = fromMe
            ? me?.NonEmpty("pushName")
            : data?.NonEmpty("notifyName") ?? data?.Obj("Info")?.NonEmpty("PushName") ?? data?.NonEmpty("pushName");

        // Older NOWEB versions sent reactions as "message" events with the same "reaction" object.
        var isReaction = eventType == "message.reaction" || payload.Obj("reaction")?.NonEmpty("messageId") is not null;
        var content = isReaction ? Reaction(payload) : ReadContent(payload, id, data);
        return new InboxEvent
        {
            Kind = InboxEventKind.Message,
            Provider = context.Provider,
            Instance = context.Instance,
            ExternalId = id,
            DedupeKey = context.MessageKey(id),
            ProviderEventType = eventType,
            ProviderInstanceId = session,
            ChatId = chatId,
            IsGroup = isGroup,
            SenderId = sender,
            SenderName = senderName,
            FromMe = fromMe,
            OccurredAt = Seconds(payload) ?? envelopeTime ?? context.ReceivedAt,
            MessageType = content.Type,
            Text = content.Text,
            Caption = content.Caption,
            ReplyToId = payload.Obj("replyTo")?.NonEmpty("id") ?? payload.NonEmpty("replyTo"),
            IsForwarded = data?.Bool("isForwarded") == true,
            Media = content.Media,
            Location = content.Location,
            Contacts = content.Contacts,
            Reaction = content.Reaction,
            Raw = Payload.Raw(payload),
        };
    }

    private static MessageContent Reaction(JsonElement payload)
    {
        var reaction = payload.Obj("reaction");
        return new MessageContent
        {
            Type = InboxMessageType.Reaction,
            Reaction = new ReactionInfo(reaction?.Str("text") ?? "", reaction?.NonEmpty("messageId")),
        };
    }

    private static MessageContent ReadContent(JsonElement payload, string id, JsonElement? data)
    {
        var content = new MessageContent();
        var body = payload.NonEmpty("body");
        var hint = (data?.Obj("Info")?.NonEmpty("MediaType") ?? data?.NonEmpty("type"))?.ToLowerInvariant();
        if (payload.Obj("location") is { } location)
        {
            content.Type = InboxMessageType.Location;
            if (location.Double("latitude") is { } latitude && location.Double("longitude") is { } longitude)
            {
                content.Location = new LocationInfo(latitude, longitude)
                {
                    Name = location.NonEmpty("name") ?? location.NonEmpty("description"),
                    Address = location.NonEmpty("address"),
                    Url = location.NonEmpty("url"),
                };
            }
        }
        else if (payload.Items("vCards").Select(JsonRead.AsString).Where(v => !string.IsNullOrEmpty(v)).Take(100).ToArray() is { Length: > 0 } vcards)
        {
            content.Type = InboxMessageType.Contact;
            content.Contacts = vcards.Select(v => new ContactCard { Name = VCardName(v!), VCard = v, Phones = VCard.Phones(v) }).ToArray();
        }
        else if (payload.Bool("hasMedia") == true)
        {
            var media = payload.Obj("media");
            var mimeType = media?.NonEmpty("mimetype");
            content.Type = TypeOf(mimeType, hint);
            var error = media?.Get("error") is { } e ? JsonRead.AsString(e) ?? (e.ValueKind is JsonValueKind.Object or JsonValueKind.Array or JsonValueKind.True ? "error" : null) : null;
            content.Media = new MediaReference
            {
                Url = media?.NonEmpty("url"),
                MediaId = id,
                MimeType = mimeType,
                FileName = media?.NonEmpty("filename"),
                Properties = EventContext.Properties(
                    // media: null, or (documented) media with mimetype and filename but url: null: WAHA's settings skipped it.
                    ("notDownloaded", media is null || (media?.NonEmpty("url") is null && error is null) ? "true" : null),
                    ("providerError", error),
                    ("voice", hint == "ptt" ? "true" : null)),
            };
            // Some engines put the base64 thumbnail in body when there is no caption: never a caption.
            content.SetCaption(body is not null && LooksLikeBase64(body) ? null : body);
        }
        else
        {
            content.Type = hint switch
            {
                "poll_creation" or "poll" => InboxMessageType.Poll,
                _ when body is not null => InboxMessageType.Text,
                _ => InboxMessageType.Unknown,
            };
            content.Text = body;
        }

        return content;
    }

    /// <summary>
    /// A group message's sender when <c>participant</c> is empty: <c>author</c>, or the engine's own field
    /// (WEBJS <c>_data.author</c>, NOWEB <c>_data.key.participant</c>, GOWS <c>_data.Info.Sender</c>).
    /// </summary>
    private static string? GroupAuthor(JsonElement payload, JsonElement? data) =>
        payload.NonEmpty("author")
        ?? data?.NonEmpty("author")
        ?? data?.Obj("author")?.NonEmpty("_serialized")
        ?? data?.Obj("key")?.NonEmpty("participant")
        ?? data?.Obj("Info")?.NonEmpty("Sender");

    /// <summary>The payload's <c>timestamp</c> (Unix seconds); WAHA sends some, such as reactions', with a fraction.</summary>
    private static DateTimeOffset? Seconds(JsonElement payload)
    {
        if (payload.Long("timestamp") is { } whole) return UnixTime.From(whole);
        return payload.Double("timestamp") is { } d && d > 0 && d < 1e15 ? UnixTime.From((long)Math.Floor(d)) : null;
    }

    private static bool LooksLikeBase64(string text)
    {
        if (text.StartsWith("data:", StringComparison.OrdinalIgnoreCase)) return true;
        if (text.Length < 256) return false;
        foreach (var c in text)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '+' or '/' or '=')) return false;
        }

        return true;
    }

    /// <summary>
    /// A WAHA message id (<c>{fromMe}_{chatId}_{messageId}[_{participant}]</c>) with its message id part replaced by
    /// <paramref name="messageId"/>; null when <paramref name="serializedId"/> does not have that shape.
    /// </summary>
    private static string? WithMessageId(string serializedId, string messageId)
    {
        var parts = serializedId.Split('_');
        if (parts.Length < 3 || parts[0] is not ("true" or "false") || !parts[1].Contains('@', StringComparison.Ordinal) || parts[2].Length == 0) return null;
        parts[2] = messageId;
        return string.Join('_', parts);
    }

    /// <summary>The message id part of a WAHA message id, or null.</summary>
    private static string? MessageIdPart(string serializedId)
    {
        var parts = serializedId.Split('_');
        return parts.Length >= 3 && parts[0] is ("true" or "false") && parts[1].Contains('@', StringComparison.Ordinal) && parts[2].Length > 0 ? parts[2] : null;
    }

    /// <summary>
    /// <c>message.edited</c>: the new text of an earlier message. <c>payload.id</c> is the edit's own id (the edited
    /// message's id in some engines) and <c>editedMessageId</c> the edited message's bare id: the event's id is the edited
    /// message's full id, and its dedupe key has an <c>edit:</c> part so each edit is kept.
    /// </summary>
    private static InboxEvent Edited(JsonElement payload, string eventType, string? session, DateTimeOffset? envelopeTime, JsonElement? me, EventContext context)
    {
        var message = Message(payload, eventType, session, envelopeTime, me, context);
        var actionId = message.ExternalId;
        var editedId = payload.NonEmpty("editedMessageId");
        var originalId = editedId is null ? actionId : WithMessageId(actionId, editedId) ?? actionId;
        var actionPart = MessageIdPart(actionId);
        var editKey = editedId is not null && actionPart is not null && actionPart != editedId ? actionPart : Payload.Hash(payload);
        return message with { ExternalId = originalId, DedupeKey = context.MessageKey(originalId, editKey), IsEdit = true };
    }

    /// <summary>
    /// <c>message.revoked</c>: a message deleted for everyone, as a <see cref="InboxMessageStatus.Deleted"/> status of
    /// that message. Its id is <c>before.id</c> when given, else <c>after.id</c> (the revoke's own id) with its message
    /// id part replaced by <c>revokedMessageId</c>.
    /// </summary>
    private static InboxEvent Revoked(JsonElement payload, string eventType, string? session, DateTimeOffset? envelopeTime, EventContext context)
    {
        var before = payload.Obj("before");
        var after = payload.Obj("after");
        var message = before ?? after ?? throw context.Error("message.revoked payload has no \"after\" or \"before\" object.");
        var revokedId = payload.NonEmpty("revokedMessageId");
        var actionId = after?.NonEmpty("id");
        var id = before?.NonEmpty("id")
            ?? (actionId is not null && revokedId is not null ? WithMessageId(actionId, revokedId) : null)
            ?? revokedId
            ?? actionId
            ?? throw context.Error("message.revoked payload has no \"revokedMessageId\".");
        var fromMe = message.Bool("fromMe") ?? false;
        var from = message.NonEmpty("from") ?? after?.NonEmpty("from");
        var to = message.NonEmpty("to") ?? after?.NonEmpty("to");
        var chatJid = ChatJid(from, to, fromMe);
        var chatId = Jid.Normalize(chatJid) ?? throw context.Error("message.revoked payload has no \"from\".");
        var isGroup = Jid.IsGroup(chatJid);
        var data = after?.Obj("_data");
        var revoker = after is { } a ? a.NonEmpty("participant") ?? (isGroup ? GroupAuthor(a, data) : null) : null;
        var occurredAt = envelopeTime ?? (after is { } t ? Seconds(t) : null);
        return context.Status(id, eventType, session, chatId, isGroup, fromMe, occurredAt, InboxMessageStatus.Deleted, "revoked", null, Payload.Raw(payload))
            with { SenderId = Jid.Normalize(revoker) };
    }

    private static InboxMessageType TypeOf(string? mimeType, string? hint)
    {
        // WhatsApp stickers are the only webp images it sends.
        if (mimeType is not null)
        {
            if (mimeType.StartsWith("image/webp", StringComparison.OrdinalIgnoreCase)) return InboxMessageType.Sticker;
            if (mimeType.StartsWith("image/", StringComparison.OrdinalIgnoreCase)) return InboxMessageType.Image;
            if (mimeType.StartsWith("video/", StringComparison.OrdinalIgnoreCase)) return InboxMessageType.Video;
            if (mimeType.StartsWith("audio/", StringComparison.OrdinalIgnoreCase)) return InboxMessageType.Audio;
            return InboxMessageType.Document;
        }

        return hint switch
        {
            "image" => InboxMessageType.Image,
            "video" or "ptv" => InboxMessageType.Video,
            "audio" or "ptt" => InboxMessageType.Audio,
            "document" => InboxMessageType.Document,
            "sticker" => InboxMessageType.Sticker,
            _ => InboxMessageType.Unknown,
        };
    }

    private static string? VCardName(string vcard)
    {
        foreach (var line in vcard.Split('\n'))
        {
            var trimmed = line.TrimEnd('\r');
            if (trimmed.StartsWith("FN:", StringComparison.OrdinalIgnoreCase) && trimmed.Length > 3) return trimmed[3..].Trim();
        }

        return null;
    }

    /// <summary>
    /// The chat of a message, receipt or revoke: the group when <c>from</c> or <c>to</c> is one (GOWS sends a group's
    /// messages and receipts with the group in <c>from</c> and the member in <c>to</c>, your own included); otherwise
    /// <c>to</c> for your own messages (WEBJS puts you in <c>from</c>) and <c>from</c> for the others'.
    /// </summary>
    private static string? ChatJid(string? from, string? to, bool fromMe) =>
        Jid.IsGroup(from) ? from : Jid.IsGroup(to) ? to : fromMe ? to ?? from : from ?? to;

    private static InboxEvent Ack(JsonElement payload, string eventType, string? session, DateTimeOffset? envelopeTime, EventContext context)
    {
        var id = payload.NonEmpty("id") ?? throw context.Error($"{EventName(eventType)} payload has no \"id\".");
        var fromMe = payload.Bool("fromMe") ?? false;
        var from = payload.NonEmpty("from");
        var to = payload.NonEmpty("to");
        var chatJid = ChatJid(from, to, fromMe);
        var chatId = Jid.Normalize(chatJid) ?? throw context.Error($"{EventName(eventType)} payload has no \"from\".");
        var isGroup = Jid.IsGroup(chatJid);
        var participant = isGroup ? Jid.Normalize(payload.NonEmpty("participant")) : null;
        var ack = payload.Long("ack");
        var ackName = payload.NonEmpty("ackName");
        var status = ack switch
        {
            -1 => InboxMessageStatus.Failed,
            0 => InboxMessageStatus.Pending,
            1 => InboxMessageStatus.Sent,
            2 => InboxMessageStatus.Delivered,
            3 => InboxMessageStatus.Read,
            4 => InboxMessageStatus.Played,
            _ => ackName?.ToUpperInvariant() switch
            {
                "ERROR" => InboxMessageStatus.Failed,
                "PENDING" => InboxMessageStatus.Pending,
                "SERVER" => InboxMessageStatus.Sent,
                "DEVICE" => InboxMessageStatus.Delivered,
                "READ" => InboxMessageStatus.Read,
                "PLAYED" => InboxMessageStatus.Played,
                _ => InboxMessageStatus.Unknown,
            },
        };
        if (ack is null && ackName is null) throw context.Error($"{EventName(eventType)} payload has no \"ack\".");
        var providerStatus = ack?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? ackName;

        return context.Status(id, eventType, session, chatId, isGroup, fromMe, envelopeTime, status, providerStatus, participant, Payload.Raw(payload)) with
        {
            StatusError = status == InboxMessageStatus.Failed ? new StatusError { Code = providerStatus, Title = ackName ?? "ERROR" } : null,
        };
    }

    private static string EventName(string eventType) => eventType switch
    {
        "message" or "message.any" or "message.reaction" or "message.edited" or "message.revoked" or "message.ack" or "message.ack.group" => eventType,
        _ => "event",
    };
}
