using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Unicode;
using Inbox.Reliability.Events;

namespace Inbox.Reliability.Providers.Internal;

/// <summary>Reads a webhook body into JSON, writes the sanitized <see cref="InboxEvent.Raw"/> and derives payload hashes.</summary>
internal static class Payload
{
    private static readonly JsonDocumentOptions DocumentOptions = new() { MaxDepth = 64 };
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, SkipValidation = false };

    // Property names whose values are file bytes, thumbnails, decryption keys or credentials: never copied into Raw.
    private static readonly HashSet<string> DroppedNames = new(StringComparer.OrdinalIgnoreCase)
    {
        "base64", "jpegThumbnail", "apikey", "mediaKey", "messageSecret",
    };

    private const int LongBase64 = 256;
    private const int LargeByteArray = 64;

    /// <summary>Parses the body as a JSON object, or throws <see cref="WebhookParseException"/> saying why not.</summary>
    public static JsonDocument ParseObject(WebhookRequest request, string title)
    {
        var body = request.Body;
        if (body.Span.StartsWith("\uFEFF"u8)) body = body[3..]; // a UTF-8 byte order mark, which the JSON reader rejects
        if (body.Span.Trim(" \t\r\n"u8).IsEmpty) throw new WebhookParseException($"{title} webhook: the body is empty.");
        if (!Utf8.IsValid(body.Span)) throw new WebhookParseException($"{title} webhook: the body is not valid UTF-8.");
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(body, DocumentOptions);
        }
        catch (JsonException ex)
        {
            // JsonException's own message quotes a byte of the body; only its position is reported.
            throw new WebhookParseException($"{title} webhook: the body is not valid JSON (line {ex.LineNumber + 1}, byte {ex.BytePositionInLine + 1}).");
        }

        if (document.RootElement.ValueKind != JsonValueKind.Object)
        {
            document.Dispose();
            throw new WebhookParseException($"{title} webhook: the body is JSON but not an object.");
        }

        return document;
    }

    /// <summary>
    /// The element as compact JSON without inlined base64, thumbnails, large byte arrays, media keys and api keys; null
    /// when the result is still longer than <see cref="InboxEvent.MaxRawLength"/>.
    /// </summary>
    public static string? Raw(JsonElement? element)
    {
        if (element is null) return null;
        var json = Write(element.Value, sanitize: true);
        return json.Length > InboxEvent.MaxRawLength ? null : json;
    }

    /// <summary>
    /// <c>sha256:</c> and 32 hex digits over <paramref name="prefix"/> and the element's compact JSON: the same for a
    /// provider's retry of the same payload, whatever its whitespace.
    /// </summary>
    public static string Hash(JsonElement element, string? prefix = null)
    {
        var json = Write(element, sanitize: false);
        var bytes = Encoding.UTF8.GetBytes((prefix ?? "") + "\n" + json);
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(bytes, hash);
        return "sha256:" + Convert.ToHexString(hash[..16]).ToLowerInvariant();
    }

    private static string Write(JsonElement element, bool sanitize)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
        {
            WriteValue(writer, element, sanitize);
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static void WriteValue(Utf8JsonWriter writer, JsonElement element, bool sanitize)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                if (sanitize && ByteCount(element) is > LargeByteArray and var objectBytes)
                {
                    writer.WriteStringValue($"[{objectBytes} bytes omitted]");
                    return;
                }

                writer.WriteStartObject();
                foreach (var property in element.EnumerateObject())
                {
                    var name = JsonRead.PropertyName(property);
                    if (sanitize && DroppedNames.Contains(name)) continue;
                    writer.WritePropertyName(name);
                    WriteValue(writer, property.Value, sanitize);
                }

                writer.WriteEndObject();
                return;
            case JsonValueKind.Array:
                if (sanitize && ByteCount(element) is > LargeByteArray and var arrayBytes)
                {
                    writer.WriteStringValue($"[{arrayBytes} bytes omitted]");
                    return;
                }

                writer.WriteStartArray();
                foreach (var item in element.EnumerateArray()) WriteValue(writer, item, sanitize);
                writer.WriteEndArray();
                return;
            case JsonValueKind.String:
                var text = JsonRead.GetString(element);
                writer.WriteStringValue(sanitize && LooksLikeBase64(text) ? $"[{text.Length} characters of base64 omitted]" : text);
                return;
            case JsonValueKind.Number:
                writer.WriteRawValue(element.GetRawText(), skipInputValidation: true);
                return;
            case JsonValueKind.True:
                writer.WriteBooleanValue(true);
                return;
            case JsonValueKind.False:
                writer.WriteBooleanValue(false);
                return;
            default:
                writer.WriteNullValue();
                return;
        }
    }

    /// <summary>How many bytes a Baileys byte field (index-keyed object or array of small numbers) holds; 0 when it is not one.</summary>
    private static int ByteCount(JsonElement element)
    {
        var count = 0;
        if (element.ValueKind == JsonValueKind.Array)
        {
            foreach (var item in element.EnumerateArray())
            {
                if (item.ValueKind != JsonValueKind.Number || !item.TryGetByte(out _)) return 0;
                count++;
            }

            return count;
        }

        foreach (var property in element.EnumerateObject())
        {
            var name = JsonRead.PropertyName(property);
            if (name.Length == 0 || !name.All(char.IsAsciiDigit) || property.Value.ValueKind != JsonValueKind.Number) return 0;
            count++;
        }

        return count;
    }

    private static bool LooksLikeBase64(string text)
    {
        if (text.StartsWith("data:", StringComparison.OrdinalIgnoreCase) && text.Contains(";base64,", StringComparison.OrdinalIgnoreCase)) return true;
        if (text.Length < LongBase64) return false;
        foreach (var c in text)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '+' or '/' or '=' or '-' or '_')) return false;
        }

        return true;
    }
}
