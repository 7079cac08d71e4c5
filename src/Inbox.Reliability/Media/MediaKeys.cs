using System.Globalization;
using System.Text;

namespace Inbox.Reliability.Media;

/// <summary>
/// Media keys: <c>{instance}/{yyyy}/{MM}/{dd}/{eventId}.{ext}</c>, built only from sanitized parts, and the check every
/// store applies to a key before it touches a path or a bucket.
/// </summary>
public static class MediaKeys
{
    private const int MaxSegment = 100;

    private static readonly Dictionary<string, string> Extensions = new(StringComparer.OrdinalIgnoreCase)
    {
        ["image/jpeg"] = "jpg", ["image/jpg"] = "jpg", ["image/png"] = "png", ["image/webp"] = "webp", ["image/gif"] = "gif", ["image/heic"] = "heic",
        ["audio/ogg"] = "ogg", ["audio/opus"] = "opus", ["audio/mpeg"] = "mp3", ["audio/mp3"] = "mp3", ["audio/mp4"] = "m4a", ["audio/aac"] = "aac", ["audio/amr"] = "amr", ["audio/wav"] = "wav",
        ["video/mp4"] = "mp4", ["video/3gpp"] = "3gp", ["video/quicktime"] = "mov", ["video/webm"] = "webm",
        ["application/pdf"] = "pdf", ["text/plain"] = "txt", ["text/csv"] = "csv", ["application/zip"] = "zip",
        ["application/msword"] = "doc", ["application/vnd.openxmlformats-officedocument.wordprocessingml.document"] = "docx",
        ["application/vnd.ms-excel"] = "xls", ["application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"] = "xlsx",
        ["application/vnd.ms-powerpoint"] = "ppt", ["application/vnd.openxmlformats-officedocument.presentationml.presentation"] = "pptx",
        ["application/octet-stream"] = "bin",
    };

    /// <summary>
    /// The key of an event's media: <c>{instance}/{yyyy}/{MM}/{dd}/{eventId}.{ext}</c>, the date in UTC, the instance
    /// sanitized (characters outside <c>[A-Za-z0-9._-]</c> become <c>_</c>), the extension from the MIME type
    /// (<c>bin</c> when unknown or unsafe).
    /// </summary>
    public static string For(string instance, DateTimeOffset date, long eventId, string? mimeType)
    {
        var utc = date.UtcDateTime;
        return string.Create(CultureInfo.InvariantCulture, $"{Sanitize(instance)}/{utc:yyyy}/{utc:MM}/{utc:dd}/{eventId}.{ExtensionFor(mimeType)}");
    }

    /// <summary>The file extension for a MIME type (parameters ignored): a known one, else the subtype when it is short and safe, else <c>bin</c>.</summary>
    public static string ExtensionFor(string? mimeType)
    {
        if (string.IsNullOrWhiteSpace(mimeType)) return "bin";
        var type = mimeType.Split(';', 2)[0].Trim();
        if (Extensions.TryGetValue(type, out var known)) return known;
        var slash = type.IndexOf('/', StringComparison.Ordinal);
        if (slash < 0) return "bin";
        var sub = type[(slash + 1)..];
        var plus = sub.IndexOf('+', StringComparison.Ordinal); // image/svg+xml -> svg
        if (plus > 0) sub = sub[..plus];
        if (sub.StartsWith("x-", StringComparison.OrdinalIgnoreCase)) sub = sub[2..];
        return sub.Length is > 0 and <= 8 && sub.All(char.IsAsciiLetterOrDigit) ? sub.ToLowerInvariant() : "bin";
    }

    /// <summary>Makes one path segment safe: <c>[A-Za-z0-9._-]</c> only, not <c>.</c> or <c>..</c>, at most 100 characters.</summary>
    public static string Sanitize(string segment)
    {
        if (string.IsNullOrEmpty(segment)) return "_";
        var builder = new StringBuilder(Math.Min(segment.Length, MaxSegment));
        foreach (var c in segment)
        {
            if (builder.Length == MaxSegment) break;
            builder.Append(IsSafe(c) ? c : '_');
        }

        var result = builder.ToString();
        return result.Trim('.').Length == 0 ? result.Replace('.', '_') : result;
    }

    /// <summary>
    /// Checks a key: non-empty, at most 1,024 characters, segments of <c>[A-Za-z0-9._-]</c> separated by single
    /// <c>/</c>, no segment <c>.</c> or <c>..</c>, no leading or trailing <c>/</c>.
    /// </summary>
    /// <exception cref="ArgumentException">The key is not safe.</exception>
    public static void Validate(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (key.Length is 0 or > 1024) throw new ArgumentException("A media key must have 1 to 1,024 characters.", nameof(key));
        foreach (var segment in key.Split('/'))
        {
            if (segment.Length == 0 || segment == "." || segment == ".." || !segment.All(IsSafe))
            {
                throw new ArgumentException("A media key is made of segments of A-Z, a-z, 0-9, '.', '_' and '-' separated by '/', without '.' or '..' segments.", nameof(key));
            }
        }
    }

    private static bool IsSafe(char c) => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-';
}
