using System.Globalization;
using System.Text.Json;
using Inbox.Reliability.Events;
using Inbox.Reliability.Providers.Internal;
using Microsoft.Extensions.Options;

namespace Inbox.Reliability.Providers.Evolution;

/// <summary>
/// Evolution API v2 (Baileys channel): an envelope <c>{event, instance, data, date_time, sender, …}</c> with
/// <c>messages.upsert</c>/<c>send.message</c> (Baileys messages), <c>messages.update</c> (statuses),
/// <c>messages.delete</c> (a deleted status), <c>messages.edited</c> (edits, as messages marked as edits),
/// <c>connection.update</c> and more. No signature: a shared secret in the query string or a custom header.
/// </summary>
/// <remarks>
/// Status and connection events carry no time of their own; <c>date_time</c> is the Evolution server's local wall-clock
/// time written with a <c>Z</c> suffix, so it is not used and the capture time is used instead.
/// </remarks>
internal sealed class EvolutionApiWebhookProvider(IOptions<EvolutionApiOptions> options) : WebhookProviderBase
{
    private readonly SharedSecretSettings _auth = new(options.Value);

    public override string Name => WebhookProviderNames.Evolution;

    protected override string Title => "Evolution API";

    public override WebhookAuthResult Authenticate(WebhookRequest request) => _auth.Authenticate(request);

    protected override string? EventType(JsonElement root) => root.Str("event");

    protected override void Parse(JsonElement root, EventContext context, List<InboxEvent> events)
    {
        var eventType = root.NonEmpty("event") ?? throw context.Error("the body has no \"event\", so it is not an Evolution API webhook.");
        var instance = root.NonEmpty("instance");
        var owner = Jid.Normalize(root.Str("sender"));
        var data = root.Get("data");

        // v2 sends "messages.upsert"; some setups and older versions send MESSAGES_UPSERT.
        switch (eventType.Replace('_', '.').ToLowerInvariant())
        {
            case "messages.upsert" or "send.message":
                foreach (var (item, path) in Items(data, eventType, context)) events.Add(Message(item, path, eventType, instance, owner, context));
                break;
            case "messages.update" or "messages.delete":
                // messages.delete is the deleted message's key with "status": "DELETED".
                foreach (var (item, path) in Items(data, eventType, context)) events.Add(Status(item, path, eventType, instance, context));
                break;
            case "messages.edited":
                foreach (var (item, path) in Items(data, eventType, context)) events.Add(Edited(item, path, eventType, instance, owner, context));
                break;
            case "connection.update" when data is { ValueKind: JsonValueKind.Object } d:
                var state = d.NonEmpty("state");
                var connection = new ConnectionInfo(state?.ToLowerInvariant() switch
                {
                    "open" => InboxConnectionState.Connected,
                    "connecting" => InboxConnectionState.Connecting,
                    "close" or "refused" => InboxConnectionState.Disconnected,
                    _ => InboxConnectionState.Unknown,
                }, state) { Reason = d.Str("statusReason") };
                events.Add(context.Connection(Payload.Hash(root), eventType, instance, null, connection, d));
                break;
            case "status.instance" when data is { ValueKind: JsonValueKind.Object } d && string.Equals(d.Str("status"), "closed", StringComparison.OrdinalIgnoreCase):
                events.Add(context.Connection(Payload.Hash(root), eventType, instance, null,
                    new ConnectionInfo(InboxConnectionState.Disconnected, d.Str("status")) { Reason = d.Str("disconnectionReasonCode") }, d));
                break;
            default:
                // qrcode.updated, contacts.*, chats.*, groups.*, presence.update...: kept. Raw is "data": the envelope holds the apikey.
                events.Add(context.Other(Payload.Hash(root), eventType, instance, null, data));
                break;
        }
    }

    private static IEnumerable<(JsonElement Item, string Path)> Items(JsonElement? data, string eventType, EventContext context)
    {
        switch (data?.ValueKind)
        {
            case JsonValueKind.Object:
                yield return (data.Value, "data");
                break;
            case JsonValueKind.Array:
                var i = -1;
                foreach (var item in data.Value.EnumerateArray())
                {
                    i++;
                    if (item.ValueKind != JsonValueKind.Object) throw context.Error($"{EventName(eventType)} data[{i}] is not an object.");
                    yield return (item, $"data[{i}]");
                }

                break;
            default:
                throw context.Error($"{EventName(eventType)} has no \"data\" object.");
        }
    }

    private static InboxEvent Message(JsonElement data, string path, string eventType, string? instance, string? owner, EventContext context)
    {
        var name = EventName(eventType);
        var key = data.Obj("key") ?? throw context.Error($"{name} {path} has no \"key\".");
        var id = key.NonEmpty("id") ?? throw context.Error($"{name} {path}.key has no \"id\".");
        var remoteJid = key.NonEmpty("remoteJid") ?? throw context.Error($"{name} {path}.key has no \"remoteJid\".");

        // LID chats ("addressingMode": "lid") carry the phone number JID in remoteJidAlt; it keeps the chat id stable.
        var chatJid = Jid.IsLid(remoteJid) ? key.NonEmpty("remoteJidAlt") ?? key.NonEmpty("senderPn") ?? remoteJid : remoteJid;
        var chatId = Jid.Normalize(chatJid) ?? throw context.Error($"{name} {path}.key has no usable \"remoteJid\".");
        var isGroup = Jid.IsGroup(remoteJid);
        var fromMe = key.Bool("fromMe") ?? false;
        var sender = Sender(key, data, fromMe, remoteJid, chatId, owner);

        var message = data.Obj("message");
        var content = BaileysMessage.Read(message, data.Str("messageType"), data.Obj("contextInfo"));
        if (content.Media is { } media && message is { } m)
        {
            content.Media = media with
            {
                Url = m.NonEmpty("mediaUrl"),
                MediaId = id,
                Properties = EventContext.Merge(media.Properties, ("hasBase64", m.NonEmpty("base64") is null ? null : "true")),
            };
        }

        return new InboxEvent
        {
            Kind = InboxEventKind.Message,
            Provider = context.Provider,
            Instance = context.Instance,
            ExternalId = id,
            DedupeKey = context.MessageKey(id),
            ProviderEventType = eventType,
            ProviderInstanceId = instance,
            ChatId = chatId,
            IsGroup = isGroup,
            SenderId = sender,
            SenderName = data.NonEmpty("pushName"),
            FromMe = fromMe,
            OccurredAt = UnixTime.From(data.Long("messageTimestamp")) ?? context.ReceivedAt,
            MessageType = content.Type,
            Text = content.Text,
            Caption = content.Caption,
            ReplyToId = content.ReplyToId,
            IsForwarded = content.IsForwarded,
            Media = content.Media,
            Location = content.Location,
            Contacts = content.Contacts,
            Reaction = content.Reaction,
            Raw = Payload.Raw(data),
        };
    }

    /// <summary>
    /// The sender of a message: the owner for <c>fromMe</c>; in a group or a broadcast (<c>status@broadcast</c>) the
    /// participant, with its phone number alternative for a LID; otherwise the chat.
    /// </summary>
    private static string? Sender(JsonElement key, JsonElement data, bool fromMe, string remoteJid, string chatId, string? owner)
    {
        if (fromMe) return owner;
        if (!Jid.IsGroup(remoteJid) && !remoteJid.EndsWith("@broadcast", StringComparison.OrdinalIgnoreCase)) return chatId;
        var participant = key.NonEmpty("participant") ?? data.NonEmpty("participant");
        if (Jid.IsLid(participant)) participant = key.NonEmpty("participantAlt") ?? key.NonEmpty("participantPn") ?? participant;
        return Jid.Normalize(participant);
    }

    /// <summary>
    /// <c>messages.edited</c>: the protocol message of an edit, <c>{key, type, editedMessage, timestampMs}</c>, where
    /// <c>key</c> is the edited message's. An edit becomes a message event with <see cref="InboxEvent.IsEdit"/>; a
    /// revoke (<c>type</c> 0 / <c>REVOKE</c>) a deleted status; any other protocol message an "other" event.
    /// </summary>
    private static InboxEvent Edited(JsonElement data, string path, string eventType, string? instance, string? owner, EventContext context)
    {
        var name = EventName(eventType);
        var key = data.Obj("key");
        var id = key?.NonEmpty("id");
        var remoteJid = key?.NonEmpty("remoteJid");
        var occurredAt = UnixTime.From(data.Long("timestampMs"));
        var edited = data.Obj("editedMessage");
        var protocolType = data.Str("type");
        var isRevoke = protocolType is "0" or "REVOKE";
        if (key is not { } k || id is null || remoteJid is null || (edited is null && !isRevoke))
        {
            return context.Other(Payload.Hash(data, path), eventType, instance, occurredAt, data);
        }

        var chatJid = Jid.IsLid(remoteJid) ? k.NonEmpty("remoteJidAlt") ?? k.NonEmpty("senderPn") ?? remoteJid : remoteJid;
        var chatId = Jid.Normalize(chatJid) ?? throw context.Error($"{name} {path}.key has no usable \"remoteJid\".");
        var isGroup = Jid.IsGroup(remoteJid);
        var fromMe = k.Bool("fromMe") ?? false;
        if (isRevoke)
        {
            var participant = isGroup ? Jid.Normalize(k.NonEmpty("participant")) : null;
            return context.Status(id, eventType, instance, chatId, isGroup, fromMe, occurredAt, InboxMessageStatus.Deleted, "REVOKE", participant, Payload.Raw(data));
        }

        var content = BaileysMessage.Read(edited, null, null);
        var editId = data.Long("timestampMs")?.ToString(CultureInfo.InvariantCulture) ?? Payload.Hash(data);
        return new InboxEvent
        {
            Kind = InboxEventKind.Message,
            Provider = context.Provider,
            Instance = context.Instance,
            ExternalId = id,
            DedupeKey = context.MessageKey(id, editId),
            ProviderEventType = eventType,
            ProviderInstanceId = instance,
            ChatId = chatId,
            IsGroup = isGroup,
            SenderId = Sender(k, data, fromMe, remoteJid, chatId, owner),
            FromMe = fromMe,
            OccurredAt = occurredAt ?? context.ReceivedAt,
            MessageType = content.Type,
            Text = content.Text,
            Caption = content.Caption,
            ReplyToId = content.ReplyToId,
            IsForwarded = content.IsForwarded,
            IsEdit = true,
            Media = content.Media,
            Location = content.Location,
            Contacts = content.Contacts,
            Reaction = content.Reaction,
            Raw = Payload.Raw(data),
        };
    }

    private static InboxEvent Status(JsonElement data, string path, string eventType, string? instance, EventContext context)
    {
        var name = EventName(eventType);
        var key = data.Obj("key");
        var isDelete = name == "messages.delete";
        var id = data.NonEmpty("keyId") ?? key?.NonEmpty("id") ?? (isDelete ? data.NonEmpty("id") : null)
            ?? throw context.Error($"{name} {path} has no \"keyId\".");
        var remoteJid = data.NonEmpty("remoteJid") ?? key?.NonEmpty("remoteJid") ?? throw context.Error($"{name} {path} has no \"remoteJid\".");
        var chatJid = Jid.IsLid(remoteJid) ? data.NonEmpty("remoteJidAlt") ?? key?.NonEmpty("remoteJidAlt") ?? remoteJid : remoteJid;
        var chatId = Jid.Normalize(chatJid) ?? throw context.Error($"{name} {path} has no usable \"remoteJid\".");
        var isGroup = Jid.IsGroup(remoteJid);
        var participant = isGroup ? Jid.Normalize(data.NonEmpty("participant") ?? key?.NonEmpty("participant")) : null;
        var rawStatus = data.Get("status") ?? data.Obj("update")?.Get("status");
        var providerStatus = rawStatus is { } s ? JsonRead.AsString(s) : isDelete ? "DELETED" : null;
        if (string.IsNullOrEmpty(providerStatus)) throw context.Error($"{name} {path} has no \"status\".");

        // Baileys' WAMessageStatus, by name or by number (ERROR = 0 … PLAYED = 5).
        var status = providerStatus.ToUpperInvariant() switch
        {
            "ERROR" or "0" => InboxMessageStatus.Failed,
            "PENDING" or "1" => InboxMessageStatus.Pending,
            "SERVER_ACK" or "2" => InboxMessageStatus.Sent,
            "DELIVERY_ACK" or "3" => InboxMessageStatus.Delivered,
            "READ" or "4" => InboxMessageStatus.Read,
            "PLAYED" or "5" => InboxMessageStatus.Played,
            "DELETED" => InboxMessageStatus.Deleted,
            _ => InboxMessageStatus.Unknown,
        };

        var fromMe = data.Bool("fromMe") ?? key?.Bool("fromMe") ?? false;
        return context.Status(id, eventType, instance, chatId, isGroup, fromMe, null, status, providerStatus, participant, Payload.Raw(data))
            with { StatusError = status == InboxMessageStatus.Failed ? new StatusError { Title = providerStatus } : null };
    }

    // Only the known names are written into error messages, never the body's own value.
    private static string EventName(string eventType) => eventType.Replace('_', '.').ToLowerInvariant() switch
    {
        "messages.upsert" => "messages.upsert",
        "send.message" => "send.message",
        "messages.update" => "messages.update",
        "messages.delete" => "messages.delete",
        "messages.edited" => "messages.edited",
        _ => "event",
    };
}
