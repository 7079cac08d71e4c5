using System.Text.Json;
using Inbox.Reliability.Events;
using Inbox.Reliability.Providers.Internal;
using Microsoft.Extensions.Options;

namespace Inbox.Reliability.Providers.WApi;

/// <summary>
/// W-API (w-api.app), from a third party's summary of its Postman collection (no official docs):
/// <c>webhookReceived</c> and <c>webhookDelivery</c> carry <c>{messageId, chat{id}, sender{id,pushName}, moment (s),
/// msgContent}</c> with Baileys content. Other events are kept as "other": their shapes are unknown. No signature
/// documented: a shared secret in the query string or a header.
/// </summary>
internal sealed class WApiWebhookProvider(IOptions<WApiOptions> options) : WebhookProviderBase
{
    private readonly SharedSecretSettings _auth = new(options.Value);

    public override string Name => WebhookProviderNames.WApi;

    protected override string Title => "W-API";

    public override WebhookAuthResult Authenticate(WebhookRequest request) => _auth.Authenticate(request);

    protected override string? EventType(JsonElement root) => root.Str("event");

    protected override void Parse(JsonElement root, EventContext context, List<InboxEvent> events)
    {
        var eventType = root.NonEmpty("event") ?? throw context.Error("the body has no \"event\", so it is not a W-API webhook.");
        var instanceId = root.NonEmpty("instanceId");
        if (eventType is not ("webhookReceived" or "webhookDelivery"))
        {
            events.Add(context.Other(Payload.Hash(root), eventType, instanceId, UnixTime.From(root.Long("moment")), root));
            return;
        }

        var id = root.NonEmpty("messageId") ?? throw context.Error($"{eventType} has no \"messageId\".");
        var chatRaw = root.Obj("chat")?.NonEmpty("id");
        var chatId = Jid.Normalize(chatRaw) ?? throw context.Error($"{eventType} has no \"chat.id\".");
        // A "@g.us" chat is a group whatever "isGroup" says; webhookDelivery reports the connected number's own messages.
        var isGroup = root.Bool("isGroup") == true || Jid.IsGroup(chatRaw);
        var fromMe = root.Bool("fromMe") == true || eventType == "webhookDelivery" || root.Bool("fromApi") == true;
        var sender = root.Obj("sender");
        var content = BaileysMessage.Read(root.Obj("msgContent"), null, null);
        if (content.Media is { } media)
        {
            // The CDN URL is encrypted; W-API's POST /message/download-media takes the chat and this message id.
            content.Media = media with { MediaId = id };
        }

        events.Add(new InboxEvent
        {
            Kind = InboxEventKind.Message,
            Provider = context.Provider,
            Instance = context.Instance,
            ExternalId = id,
            DedupeKey = context.MessageKey(id),
            ProviderEventType = eventType,
            ProviderInstanceId = instanceId,
            ChatId = chatId,
            IsGroup = isGroup,
            // The connected number sends what is from me; otherwise the sender, or the chat itself outside groups.
            SenderId = fromMe
                ? Jid.Normalize(root.Str("connectedPhone")) ?? Jid.Normalize(sender?.NonEmpty("id"))
                : Jid.Normalize(sender?.NonEmpty("id")) ?? (isGroup ? null : chatId),
            SenderName = sender?.NonEmpty("pushName"),
            FromMe = fromMe,
            OccurredAt = UnixTime.From(root.Long("moment")) ?? context.ReceivedAt,
            MessageType = content.Type,
            Text = content.Text,
            Caption = content.Caption,
            ReplyToId = content.ReplyToId,
            IsForwarded = content.IsForwarded,
            Media = content.Media,
            Location = content.Location,
            Contacts = content.Contacts,
            Reaction = content.Reaction,
            Raw = Payload.Raw(root),
        });
    }
}
