using System.Collections.ObjectModel;
using System.Text.Json;
using Inbox.Reliability.Events;

namespace Inbox.Reliability.Providers.Internal;

/// <summary>What every event of one parse shares, and the builders for the kinds whose shape is the same for every provider.</summary>
internal sealed class EventContext(WebhookRequest request, string provider, string title)
{
    public string Provider { get; } = provider;

    public string Instance { get; } = request.Instance;

    public DateTimeOffset ReceivedAt { get; } = request.ReceivedAt;

    /// <summary>A parse error whose message names the provider and never contains body content.</summary>
    public WebhookParseException Error(string message) => new($"{title} webhook: {message}");

    public string MessageKey(string messageId, string? editId = null) => InboxDedupeKey.ForMessage(Provider, Instance, messageId, editId);

    public string StatusKey(string messageId, InboxMessageStatus status, string? providerStatus, string? participant) =>
        InboxDedupeKey.ForStatus(Provider, Instance, messageId, status, providerStatus, participant);

    public InboxEvent Other(string externalId, string? eventType, string? providerInstanceId, DateTimeOffset? occurredAt, JsonElement? raw) => new()
    {
        Kind = InboxEventKind.Other,
        Provider = Provider,
        Instance = Instance,
        ExternalId = externalId,
        DedupeKey = InboxDedupeKey.ForOther(Provider, Instance, externalId),
        ProviderEventType = eventType,
        ProviderInstanceId = providerInstanceId,
        OccurredAt = occurredAt ?? ReceivedAt,
        Raw = Payload.Raw(raw),
    };

    /// <summary>
    /// A status of a message: its dedupe key names the message, the status, the provider's status and the group participant
    /// it concerns (also its <see cref="InboxEvent.SenderId"/>). <paramref name="raw"/> is the item's JSON as
    /// <see cref="Payload.Raw"/> gives it (one string for the statuses of several ids).
    /// </summary>
    public InboxEvent Status(string messageId, string? eventType, string? providerInstanceId, string chatId, bool isGroup, bool fromMe, DateTimeOffset? occurredAt,
        InboxMessageStatus status, string? providerStatus, string? participant, string? raw) => new()
    {
        Kind = InboxEventKind.Status,
        Provider = Provider,
        Instance = Instance,
        ExternalId = messageId,
        DedupeKey = StatusKey(messageId, status, providerStatus, participant),
        ProviderEventType = eventType,
        ProviderInstanceId = providerInstanceId,
        ChatId = chatId,
        IsGroup = isGroup,
        SenderId = participant,
        FromMe = fromMe,
        OccurredAt = occurredAt ?? ReceivedAt,
        Status = status,
        ProviderStatus = providerStatus,
        Raw = raw,
    };

    public InboxEvent Connection(string externalId, string? eventType, string? providerInstanceId, DateTimeOffset? occurredAt, ConnectionInfo connection, JsonElement? raw) => new()
    {
        Kind = InboxEventKind.Connection,
        Provider = Provider,
        Instance = Instance,
        ExternalId = externalId,
        DedupeKey = InboxDedupeKey.ForConnection(Provider, Instance, externalId),
        ProviderEventType = eventType,
        ProviderInstanceId = providerInstanceId,
        OccurredAt = occurredAt ?? ReceivedAt,
        Connection = connection,
        Raw = Payload.Raw(raw),
    };

    /// <summary>A read-only copy of the non-empty entries.</summary>
    public static IReadOnlyDictionary<string, string> Properties(params (string Key, string? Value)[] entries)
    {
        Dictionary<string, string>? properties = null;
        foreach (var (key, value) in entries)
        {
            if (string.IsNullOrEmpty(value)) continue;
            (properties ??= new Dictionary<string, string>(StringComparer.Ordinal))[key] = value;
        }

        return properties is null ? ReadOnlyDictionary<string, string>.Empty : new ReadOnlyDictionary<string, string>(properties);
    }

    /// <summary>Merges more entries into a media reference's properties.</summary>
    public static IReadOnlyDictionary<string, string> Merge(IReadOnlyDictionary<string, string> existing, params (string Key, string? Value)[] entries)
    {
        var merged = new Dictionary<string, string>(existing, StringComparer.Ordinal);
        foreach (var (key, value) in entries)
        {
            if (!string.IsNullOrEmpty(value)) merged[key] = value;
        }

        return merged.Count == 0 ? ReadOnlyDictionary<string, string>.Empty : new ReadOnlyDictionary<string, string>(merged);
    }
}
