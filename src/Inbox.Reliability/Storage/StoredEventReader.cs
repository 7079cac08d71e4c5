using System.Data.Common;
using System.Globalization;

namespace Inbox.Reliability.Storage;

/// <summary>
/// Reads a stored event from the columns every storage selects in this order: id, seq, raw_id, body, dispatch_status,
/// created_at, media_status, media_key, media_size, media_mime, media_sha256, media_error, dispatch_attempts.
/// </summary>
internal static class StoredEventReader
{
    /// <summary>Reads the current row; <paramref name="createdAt"/> converts the storage's created_at column.</summary>
    public static StoredInboxEvent Read(DbDataReader reader, Func<DbDataReader, int, DateTimeOffset> createdAt) =>
        new(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), InboxEventSerializer.Deserialize(reader.GetString(3)), (EventDispatchStatus)Int(reader, 4))
        {
            CreatedAt = createdAt(reader, 5),
            Media = new EventMedia(
                (MediaStatus)Int(reader, 6),
                Text(reader, 7),
                reader.IsDBNull(8) ? null : reader.GetInt64(8),
                Text(reader, 9),
                Text(reader, 10),
                Text(reader, 11)),
            DispatchAttempts = Int(reader, 12),
        };

    private static int Int(DbDataReader reader, int ordinal) => Convert.ToInt32(reader.GetValue(ordinal), CultureInfo.InvariantCulture);

    private static string? Text(DbDataReader reader, int ordinal) => reader.IsDBNull(ordinal) ? null : reader.GetString(ordinal);
}
