using System.Security.Cryptography;
using System.Text.Json;
using Inbox.Reliability.Events;
using Inbox.Reliability.Providers.Internal;
using Microsoft.Extensions.Options;

namespace Inbox.Reliability.Providers.Meta;

/// <summary>
/// Meta WhatsApp Cloud API: <c>X-Hub-Signature-256</c> (HMAC-SHA256 of the raw body with the app secret), the
/// <c>hub.challenge</c> handshake, and <c>entry[].changes[].value.{messages,statuses}[]</c> batches (up to 1,000 items).
/// </summary>
internal sealed class MetaCloudApiWebhookProvider : WebhookProviderBase, IWebhookChallengeHandler
{
    private const string SignatureHeader = "X-Hub-Signature-256";
    private const int MaxChallengeLength = 256;

    private readonly string? _appSecret;
    private readonly IReadOnlyDictionary<string, string> _instanceAppSecrets;
    private readonly string? _verifyToken;
    private readonly IReadOnlyDictionary<string, string> _instanceVerifyTokens;
    private readonly bool _allowUnsigned;

    public MetaCloudApiWebhookProvider(IOptions<MetaCloudApiOptions> options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var o = options.Value;
        _appSecret = o.AppSecret;
        _instanceAppSecrets = WebhookAuth.Freeze(o.InstanceAppSecrets);
        _verifyToken = o.VerifyToken;
        _instanceVerifyTokens = WebhookAuth.Freeze(o.InstanceVerifyTokens);
        _allowUnsigned = o.AllowUnsignedWebhooks;
    }

    public override string Name => WebhookProviderNames.Meta;

    protected override string Title => "Meta Cloud API";

    public override WebhookAuthResult Authenticate(WebhookRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var secret = WebhookAuth.Resolve(request.Secret, _instanceAppSecrets, request.Instance, _appSecret);
        if (secret is null)
        {
            return _allowUnsigned
                ? WebhookAuthResult.NotConfigured("no app secret is configured for this instance and AllowUnsignedWebhooks is on; the signature is not checked")
                : WebhookAuthResult.Invalid("no app secret is configured for this instance, so X-Hub-Signature-256 cannot be verified");
        }

        return WebhookAuth.Hmac(request, secret, HashAlgorithmName.SHA256, SignatureHeader, "sha256=");
    }

    public WebhookChallengeResult AnswerChallenge(WebhookChallengeRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (!request.Query.TryGetValue("hub.mode", out var mode)) return WebhookChallengeResult.NotAChallenge("hub.mode is missing");
        if (!string.Equals(mode, "subscribe", StringComparison.Ordinal)) return WebhookChallengeResult.NotAChallenge("hub.mode is not \"subscribe\"");
        if (!request.Query.TryGetValue("hub.challenge", out var challenge) || challenge.Length == 0) return WebhookChallengeResult.NotAChallenge("hub.challenge is missing");

        var expected = request.VerifyToken ?? (_instanceVerifyTokens.TryGetValue(request.Instance, out var token) ? token : _verifyToken);
        if (string.IsNullOrWhiteSpace(expected)) return WebhookChallengeResult.Rejected("no verify token is configured for this instance");
        if (!request.Query.TryGetValue("hub.verify_token", out var provided) || provided.Length == 0) return WebhookChallengeResult.Rejected("hub.verify_token is missing");
        if (!ConstantTime.SecretEquals(provided, expected)) return WebhookChallengeResult.Rejected("hub.verify_token does not match");

        // Meta's challenge is a number; anything else is not echoed, so the endpoint never reflects markup.
        if (challenge.Length > MaxChallengeLength || !challenge.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
            return WebhookChallengeResult.Rejected("hub.challenge is not a plain token");
        return WebhookChallengeResult.Accepted(challenge);
    }

    protected override string? EventType(JsonElement root) => root.Str("object");

    protected override void Parse(JsonElement root, EventContext context, List<InboxEvent> events)
    {
        if (root.Arr("entry") is not { } entries) throw context.Error("the body has no \"entry\" array, so it is not a WhatsApp Cloud API notification.");
        var i = -1;
        foreach (var entry in entries.EnumerateArray())
        {
            i++;
            if (entry.ValueKind != JsonValueKind.Object) throw context.Error($"entry[{i}] is not an object.");
            var entryId = entry.Str("id");
            var entryTime = UnixTime.From(entry.Long("time"));
            if (entry.Arr("changes") is not { } changes)
            {
                events.Add(context.Other(Payload.Hash(entry), "entry", entryId, entryTime, entry));
                continue;
            }

            var j = -1;
            foreach (var change in changes.EnumerateArray())
            {
                j++;
                var path = $"entry[{i}].changes[{j}]";
                if (change.ValueKind != JsonValueKind.Object) throw context.Error($"{path} is not an object.");
                var field = change.Str("field");
                var value = change.Obj("value");
                if (field == "messages" && value is { } checkedValue && NotAnArray(checkedValue) is { } name)
                {
                    throw context.Error($"{path}.value.{name} is not an array.");
                }

                if (field == "messages" && value is { } v && (v.Arr("messages") is not null || v.Arr("statuses") is not null))
                {
                    ParseMessagesValue(v, path + ".value", context, events);
                    if (v.Arr("errors") is { } errors && errors.GetArrayLength() > 0)
                    {
                        // Value-level errors beside messages or statuses: kept as their own event (keyed by the whole change), not dropped.
                        events.Add(context.Other(Payload.Hash(change, entryId + "|errors"), "errors", v.Obj("metadata")?.Str("phone_number_id") ?? entryId, entryTime, errors));
                    }
                }
                else
                {
                    // account_update, message_template_status_update, smb_message_echoes, value-level errors...: kept as is.
                    events.Add(context.Other(Payload.Hash(change, entryId), field, value?.Obj("metadata")?.Str("phone_number_id") ?? entryId, entryTime, change));
                }
            }
        }
    }

    /// <summary>The name of a <c>messages</c> or <c>statuses</c> property that is present but not an array.</summary>
    private static string? NotAnArray(JsonElement value)
    {
        foreach (var name in (string[])["messages", "statuses"])
        {
            if (value.Get(name) is { ValueKind: not JsonValueKind.Array }) return name;
        }

        return null;
    }

    private static void ParseMessagesValue(JsonElement value, string path, EventContext context, List<InboxEvent> events)
    {
        var phoneNumberId = value.Obj("metadata")?.Str("phone_number_id");
        var names = new Dictionary<string, string>(StringComparer.Ordinal);
        string? onlyName = null;
        var contactCount = 0;
        foreach (var contact in value.Items("contacts"))
        {
            contactCount++;
            var name = contact.Obj("profile")?.NonEmpty("name");
            if (name is null) continue;
            onlyName = name;
            if (contact.NonEmpty("wa_id") is { } waId) names[waId] = name;

            // Business-scoped user id: the only id of a user whose phone number is withheld (usernames).
            if (contact.NonEmpty("user_id") is { } userId) names[userId] = name;
        }

        var k = -1;
        foreach (var message in value.Items("messages"))
        {
            k++;
            var at = $"{path}.messages[{k}]";
            if (message.ValueKind != JsonValueKind.Object) throw context.Error($"{at} is not an object.");
            var id = message.NonEmpty("id") ?? throw context.Error($"{at} has no \"id\".");
            var from = message.NonEmpty("from") ?? message.NonEmpty("from_user_id") ?? throw context.Error($"{at} has no \"from\" (nor \"from_user_id\").");
            var groupId = message.NonEmpty("group_id");
            var type = message.Str("type");
            var content = ReadContent(message, type);
            var replyContext = message.Obj("context");
            events.Add(new InboxEvent
            {
                Kind = InboxEventKind.Message,
                Provider = context.Provider,
                Instance = context.Instance,
                ExternalId = id,
                DedupeKey = context.MessageKey(id),
                ProviderEventType = "messages",
                ProviderInstanceId = phoneNumberId,
                ChatId = groupId ?? from,
                IsGroup = groupId is not null,
                SenderId = from,
                SenderName = names.TryGetValue(from, out var name) ? name : contactCount == 1 ? onlyName : null,
                FromMe = false,
                OccurredAt = UnixTime.From(message.Long("timestamp")) ?? context.ReceivedAt,
                MessageType = content.Type,
                Text = content.Text,
                Caption = content.Caption,
                ReplyToId = replyContext?.NonEmpty("id"),
                IsForwarded = replyContext?.Bool("forwarded") == true || replyContext?.Bool("frequently_forwarded") == true,
                Media = content.Media,
                Location = content.Location,
                Contacts = content.Contacts,
                Reaction = content.Reaction,
                Raw = Payload.Raw(message),
            });
        }

        k = -1;
        foreach (var status in value.Items("statuses"))
        {
            k++;
            var at = $"{path}.statuses[{k}]";
            if (status.ValueKind != JsonValueKind.Object) throw context.Error($"{at} is not an object.");
            var id = status.NonEmpty("id") ?? throw context.Error($"{at} has no \"id\".");
            var providerStatus = status.NonEmpty("status") ?? throw context.Error($"{at} has no \"status\".");
            var recipient = status.NonEmpty("recipient_id") ?? status.NonEmpty("recipient_user_id") ?? throw context.Error($"{at} has no \"recipient_id\" (nor \"recipient_user_id\").");
            var isGroup = string.Equals(status.Str("recipient_type"), "group", StringComparison.OrdinalIgnoreCase);
            var participant = status.NonEmpty("recipient_participant_id");
            var normalized = providerStatus.ToLowerInvariant() switch
            {
                "sent" => InboxMessageStatus.Sent,
                "delivered" => InboxMessageStatus.Delivered,
                "read" => InboxMessageStatus.Read,
                "played" => InboxMessageStatus.Played,
                "failed" => InboxMessageStatus.Failed,
                "deleted" => InboxMessageStatus.Deleted,
                _ => InboxMessageStatus.Unknown,
            };
            events.Add(context.Status(id, "statuses", phoneNumberId, recipient, isGroup, fromMe: true, UnixTime.From(status.Long("timestamp")), normalized, providerStatus,
                participant, Payload.Raw(status)) with { StatusError = ReadError(status, normalized, providerStatus) });
        }
    }

    private static StatusError? ReadError(JsonElement status, InboxMessageStatus normalized, string providerStatus)
    {
        var error = status.Items("errors").FirstOrDefault(e => e.ValueKind == JsonValueKind.Object);
        if (error.ValueKind == JsonValueKind.Object)
        {
            return new StatusError
            {
                Code = error.Str("code"),
                Title = error.NonEmpty("title"),
                Message = error.NonEmpty("message"),
                Details = error.Obj("error_data")?.NonEmpty("details"),
            };
        }

        return normalized == InboxMessageStatus.Failed ? new StatusError { Title = providerStatus } : null;
    }

    private static MessageContent ReadContent(JsonElement message, string? type)
    {
        var content = new MessageContent();
        switch (type)
        {
            case "text":
                content.Type = InboxMessageType.Text;
                content.Text = message.Obj("text")?.Str("body");
                break;
            case "image":
                Media(InboxMessageType.Image, message.Obj(type), content);
                break;
            case "video":
                Media(InboxMessageType.Video, message.Obj(type), content);
                break;
            case "audio":
                Media(InboxMessageType.Audio, message.Obj(type), content);
                break;
            case "document":
                Media(InboxMessageType.Document, message.Obj(type), content);
                break;
            case "sticker":
                Media(InboxMessageType.Sticker, message.Obj(type), content);
                break;
            case "location":
                content.Type = InboxMessageType.Location;
                if (message.Obj("location") is { } location && location.Double("latitude") is { } latitude && location.Double("longitude") is { } longitude)
                {
                    content.Location = new LocationInfo(latitude, longitude)
                    {
                        Name = location.NonEmpty("name"),
                        Address = location.NonEmpty("address"),
                        Url = location.NonEmpty("url"),
                    };
                }

                break;
            case "contacts":
                content.Type = InboxMessageType.Contact;
                content.Contacts = message.Items("contacts").Where(c => c.ValueKind == JsonValueKind.Object).Take(100).Select(Card).ToArray();
                break;
            case "reaction":
                content.Type = InboxMessageType.Reaction;
                var reaction = message.Obj("reaction");
                content.Reaction = new ReactionInfo(reaction?.Str("emoji") ?? "", reaction?.NonEmpty("message_id"));
                break;
            case "button":
                content.Type = InboxMessageType.Interactive;
                content.Text = message.Obj("button")?.NonEmpty("text") ?? message.Obj("button")?.NonEmpty("payload");
                break;
            case "interactive":
                content.Type = InboxMessageType.Interactive;
                var interactive = message.Obj("interactive");
                content.Text = interactive?.Obj("button_reply")?.NonEmpty("title")
                    ?? interactive?.Obj("list_reply")?.NonEmpty("title")
                    ?? interactive?.Obj("nfm_reply")?.NonEmpty("body") // a Flow's reply; its answers are in response_json (Raw)
                    ?? interactive?.Obj("nfm_reply")?.NonEmpty("name");
                break;
            default:
                // order, system, unsupported, request_welcome, unknown...: kept as a message of unknown type; Raw has the content.
                content.Type = InboxMessageType.Unknown;
                content.Text = message.Obj("system")?.NonEmpty("body") ?? message.Obj("order")?.NonEmpty("text");
                break;
        }

        return content;
    }

    private static ContactCard Card(JsonElement contact)
    {
        var name = contact.Obj("name");
        var formatted = name?.NonEmpty("formatted_name");
        if (formatted is null && name is { } n)
        {
            var parts = new[] { n.NonEmpty("first_name"), n.NonEmpty("last_name") }.Where(p => p is not null);
            formatted = string.Join(' ', parts) is { Length: > 0 } joined ? joined : null;
        }

        var phones = new List<ContactPhone>();
        foreach (var phone in contact.Items("phones").Take(100))
        {
            var waId = phone.NonEmpty("wa_id");
            if ((phone.NonEmpty("phone") ?? waId) is { } number) phones.Add(new ContactPhone(number, waId));
        }

        return new ContactCard { Name = formatted, Phones = phones, VCard = contact.NonEmpty("vcard") };
    }

    private static void Media(InboxMessageType type, JsonElement? media, MessageContent content)
    {
        content.Type = type;
        if (media is not { } m) return;
        content.Media = new MediaReference
        {
            MediaId = m.NonEmpty("id"),
            Url = m.NonEmpty("url"),
            MimeType = m.NonEmpty("mime_type"),
            Sha256 = m.NonEmpty("sha256"),
            FileName = m.NonEmpty("filename"),
            Properties = EventContext.Properties(
                ("voice", m.Bool("voice") == true ? "true" : null),
                ("animated", m.Bool("animated") == true ? "true" : null)),
        };
        content.SetCaption(m.NonEmpty("caption"));
    }
}
