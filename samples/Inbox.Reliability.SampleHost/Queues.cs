using System.Text.Json;
using System.Text.Json.Serialization;

namespace Inbox.Reliability.SampleHost;

/// <summary>The sample's queue names: one queue per kind of work, one handler per queue.</summary>
public static class Queues
{
    /// <summary>Inbound chat messages, keyed by chat id: each chat's messages run one at a time, in order.</summary>
    public const string ChatMessages = "chat-messages";

    /// <summary>Delivery/read receipts to forward to the CRM. Unkeyed: they run in parallel.</summary>
    public const string Receipts = "receipts";

    /// <summary>Media (images, voice notes) to download from the provider's CDN. Unkeyed.</summary>
    public const string MediaDownloads = "media-downloads";

    /// <summary>Every queue of the sample, in display order.</summary>
    public static IReadOnlyList<string> All { get; } = [ChatMessages, Receipts, MediaDownloads];
}

/// <summary>The JSON settings of the sample's payloads (camelCase, enums as strings).</summary>
public static class SampleJson
{
    /// <summary>The options every payload is written and read with.</summary>
    public static JsonSerializerOptions Options { get; } = new(JsonSerializerDefaults.Web)
    {
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingDefault,
    };
}
