using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Inbox.Reliability.Providers.Internal;

/// <summary>
/// Tolerant reads over a parsed payload: a field of an unexpected type reads as absent instead of throwing, numbers
/// may come as strings (and longs as Baileys' <c>{low,high}</c>), and strings with lone surrogate escapes (which
/// JavaScript senders emit for a cut emoji) read with U+FFFD instead of failing.
/// </summary>
internal static class JsonRead
{
    /// <summary>The property's value, or null when <paramref name="element"/> is not an object, lacks it, or it is JSON null.</summary>
    public static JsonElement? Get(this JsonElement element, string name)
    {
        if (element.ValueKind != JsonValueKind.Object || !TryGetProperty(element, name, out var value)) return null;
        return value.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined ? null : value;
    }

    private static bool TryGetProperty(JsonElement element, string name, out JsonElement value)
    {
        try
        {
            return element.TryGetProperty(name, out value);
        }
        catch (InvalidOperationException)
        {
            // A sibling's name has a lone surrogate escape, which the built-in lookup cannot unescape: compare leniently.
            // Like TryGetProperty, the last of duplicate names wins.
            var found = false;
            value = default;
            foreach (var property in element.EnumerateObject())
            {
                if (!string.Equals(PropertyName(property), name, StringComparison.Ordinal)) continue;
                value = property.Value;
                found = true;
            }

            return found;
        }
    }

    /// <summary>Follows a path of property names.</summary>
    public static JsonElement? Get(this JsonElement element, string name1, string name2) => element.Get(name1)?.Get(name2);

    /// <summary>The property as an object.</summary>
    public static JsonElement? Obj(this JsonElement element, string name)
    {
        var value = element.Get(name);
        return value is { ValueKind: JsonValueKind.Object } ? value : null;
    }

    /// <summary>The property as an array.</summary>
    public static JsonElement? Arr(this JsonElement element, string name)
    {
        var value = element.Get(name);
        return value is { ValueKind: JsonValueKind.Array } ? value : null;
    }

    /// <summary>The property as a string; a number reads as its JSON text. Null for other kinds.</summary>
    public static string? Str(this JsonElement element, string name)
    {
        var value = element.Get(name);
        return value is null ? null : AsString(value.Value);
    }

    /// <summary>The property as a non-empty string, or null.</summary>
    public static string? NonEmpty(this JsonElement element, string name)
    {
        var value = element.Str(name);
        return string.IsNullOrEmpty(value) ? null : value;
    }

    /// <summary>A string or number element as text; null for other kinds.</summary>
    public static string? AsString(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => GetString(value),
        JsonValueKind.Number => value.GetRawText(),
        _ => null,
    };

    /// <summary>A boolean; also <c>"true"</c>/<c>"false"</c> strings and 1/0.</summary>
    public static bool? Bool(this JsonElement element, string name)
    {
        var value = element.Get(name);
        if (value is null) return null;
        switch (value.Value.ValueKind)
        {
            case JsonValueKind.True: return true;
            case JsonValueKind.False: return false;
            case JsonValueKind.String:
                var text = GetString(value.Value);
                if (string.Equals(text, "true", StringComparison.OrdinalIgnoreCase)) return true;
                if (string.Equals(text, "false", StringComparison.OrdinalIgnoreCase)) return false;
                return null;
            case JsonValueKind.Number:
                return value.Value.TryGetInt64(out var n) ? n != 0 : null;
            default: return null;
        }
    }

    /// <summary>An integer: a JSON number, a string of digits, or a Baileys long <c>{low, high, unsigned}</c>.</summary>
    public static long? Long(this JsonElement element, string name)
    {
        var value = element.Get(name);
        return value is null ? null : AsLong(value.Value);
    }

    /// <summary>An integer element (see <see cref="Long(JsonElement, string)"/>).</summary>
    public static long? AsLong(JsonElement value)
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.Number:
                if (value.TryGetInt64(out var n)) return n;
                if (value.TryGetDouble(out var d) && double.IsFinite(d) && d == Math.Floor(d) && Math.Abs(d) < 9e18) return (long)d;
                return null;
            case JsonValueKind.String:
                return long.TryParse(GetString(value), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var parsed) ? parsed : null;
            case JsonValueKind.Object:
                // protobuf.js Long, as Baileys serializes it: {"low": int32, "high": int32, "unsigned": bool}.
                var low = value.Get("low");
                var high = value.Get("high");
                if (low is null || high is null || !TryInt64(low.Value, out var lo) || !TryInt64(high.Value, out var hi)) return null;
                if (lo < int.MinValue || lo > uint.MaxValue || hi < int.MinValue || hi > uint.MaxValue) return null;
                return (long)(((ulong)(uint)hi << 32) | (uint)lo);
            default:
                return null;
        }
    }

    /// <summary>A finite floating-point number, from a number or a numeric string.</summary>
    public static double? Double(this JsonElement element, string name)
    {
        var value = element.Get(name);
        if (value is null) return null;
        double d;
        switch (value.Value.ValueKind)
        {
            case JsonValueKind.Number:
                if (!value.Value.TryGetDouble(out d)) return null;
                break;
            case JsonValueKind.String:
                if (!double.TryParse(GetString(value.Value), NumberStyles.Float, CultureInfo.InvariantCulture, out d)) return null;
                break;
            default:
                return null;
        }

        return double.IsFinite(d) ? d : null;
    }

    /// <summary>
    /// Bytes from a Baileys byte field: an index-keyed object <c>{"0":171,"1":82}</c>, an array of numbers, or a
    /// base64 string. Null when it is none of these.
    /// </summary>
    public static byte[]? Bytes(this JsonElement element, string name)
    {
        var value = element.Get(name);
        if (value is null) return null;
        var v = value.Value;
        switch (v.ValueKind)
        {
            case JsonValueKind.String:
                var text = GetString(v);
                if (text.Length == 0 || text.Length > 4096) return null;
                var buffer = new byte[text.Length];
                return Convert.TryFromBase64String(text, buffer, out var written) ? buffer[..written] : null;
            case JsonValueKind.Array:
                var list = new List<byte>();
                foreach (var item in v.EnumerateArray())
                {
                    if (!TryByte(item, out var b) || list.Count >= 4096) return null;
                    list.Add(b);
                }

                return list.ToArray();
            case JsonValueKind.Object:
                var bytes = new SortedDictionary<int, byte>();
                foreach (var property in v.EnumerateObject())
                {
                    if (!int.TryParse(PropertyName(property), NumberStyles.None, CultureInfo.InvariantCulture, out var index) || index < 0 || index >= 4096) return null;
                    if (!TryByte(property.Value, out var b)) return null;
                    bytes[index] = b;
                }

                if (bytes.Count == 0 || bytes.Keys.Last() != bytes.Count - 1) return null;
                return bytes.Values.ToArray();
            default:
                return null;
        }
    }

    private static bool TryInt64(JsonElement value, out long result)
    {
        result = 0;
        return value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out result);
    }

    private static bool TryByte(JsonElement value, out byte result)
    {
        result = 0;
        return value.ValueKind == JsonValueKind.Number && value.TryGetByte(out result);
    }

    /// <summary>The elements of an array property; empty when absent or not an array.</summary>
    public static IEnumerable<JsonElement> Items(this JsonElement element, string name)
    {
        var array = element.Arr(name);
        return array is null ? [] : array.Value.EnumerateArray();
    }

    /// <summary>A string element's value; lone surrogates become U+FFFD instead of throwing.</summary>
    public static string GetString(JsonElement value)
    {
        try
        {
            return value.GetString() ?? "";
        }
        catch (InvalidOperationException)
        {
            return Unescape(value.GetRawText());
        }
    }

    /// <summary>A property's name; lone surrogates become U+FFFD instead of throwing.</summary>
    public static string PropertyName(JsonProperty property)
    {
        try
        {
            return property.Name;
        }
        catch (InvalidOperationException)
        {
            // JsonProperty.ToString() is the raw "name": value text; the name is its leading string literal.
            return Unescape(property.ToString());
        }
    }

    /// <summary>Decodes the first JSON string literal of <paramref name="raw"/>, replacing unpaired surrogates with U+FFFD.</summary>
    internal static string Unescape(string raw)
    {
        var start = raw.IndexOf('"', StringComparison.Ordinal);
        var sb = new StringBuilder(raw.Length);
        for (var i = start + 1; start >= 0 && i < raw.Length; i++)
        {
            var c = raw[i];
            if (c == '"') break;
            if (c != '\\' || i + 1 >= raw.Length)
            {
                sb.Append(c);
                continue;
            }

            var e = raw[++i];
            switch (e)
            {
                case 'b': sb.Append('\b'); break;
                case 'f': sb.Append('\f'); break;
                case 'n': sb.Append('\n'); break;
                case 'r': sb.Append('\r'); break;
                case 't': sb.Append('\t'); break;
                case 'u' when i + 4 < raw.Length && ushort.TryParse(raw.AsSpan(i + 1, 4), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var code):
                    sb.Append((char)code);
                    i += 4;
                    break;
                default: sb.Append(e); break;
            }
        }

        var chars = sb.ToString().ToCharArray();
        for (var i = 0; i < chars.Length; i++)
        {
            if (char.IsHighSurrogate(chars[i]) && i + 1 < chars.Length && char.IsLowSurrogate(chars[i + 1])) i++;
            else if (char.IsSurrogate(chars[i])) chars[i] = '\uFFFD';
        }

        return new string(chars);
    }
}
