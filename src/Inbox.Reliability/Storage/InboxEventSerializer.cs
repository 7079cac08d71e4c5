using System.Text.Json;
using System.Text.Json.Serialization;
using Inbox.Reliability.Events;

namespace Inbox.Reliability.Storage;

/// <summary>For storage packages: the one JSON form of a stored <see cref="InboxEvent"/>, so every storage reads what another wrote.</summary>
public static class InboxEventSerializer
{
    private static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Converters = { new JsonStringEnumConverter() },
    };

    /// <summary>Serializes an event.</summary>
    public static string Serialize(InboxEvent inboxEvent) => JsonSerializer.Serialize(inboxEvent, Options);

    /// <summary>Deserializes an event written by <see cref="Serialize"/>.</summary>
    public static InboxEvent Deserialize(string json) =>
        JsonSerializer.Deserialize<InboxEvent>(json, Options) ?? throw new JsonException("The stored event is empty.");

    /// <summary>Serializes kept headers.</summary>
    public static string SerializeHeaders(IReadOnlyDictionary<string, string> headers) => JsonSerializer.Serialize(headers, Options);

    /// <summary>Deserializes kept headers.</summary>
    public static IReadOnlyDictionary<string, string> DeserializeHeaders(string? json) =>
        string.IsNullOrEmpty(json)
            ? new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
            : new Dictionary<string, string>(JsonSerializer.Deserialize<Dictionary<string, string>>(json, Options) ?? [], StringComparer.OrdinalIgnoreCase);
}
