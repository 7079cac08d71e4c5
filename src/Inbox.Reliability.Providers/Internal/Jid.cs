namespace Inbox.Reliability.Providers.Internal;

/// <summary>Normalizes chat and sender ids (see the remarks of <c>InboxEvent</c>).</summary>
internal static class Jid
{
    /// <summary>
    /// <c>5511…@s.whatsapp.net</c>, <c>5511…@c.us</c> and their agent/device forms (<c>5511….0:12@…</c>) become the
    /// digits; a LID keeps its server without the device (<c>81…:3@lid</c> becomes <c>81…@lid</c>); other JIDs
    /// (<c>@g.us</c>, <c>@newsletter</c>, <c>@broadcast</c>) are kept with a lower-case server; anything without
    /// <c>@</c> (Meta and Z-API ids) is returned as given, trimmed.
    /// </summary>
    public static string? Normalize(string? id)
    {
        if (string.IsNullOrWhiteSpace(id)) return null;
        id = id.Trim();
        var at = id.LastIndexOf('@');
        if (at < 0) return id;
        var user = id[..at];
        var server = id[(at + 1)..].ToLowerInvariant();
        switch (server)
        {
            case "s.whatsapp.net" or "c.us" or "hosted":
                var cut = user.IndexOfAny(['.', ':']);
                if (cut >= 0) user = user[..cut];
                return user.Length == 0 ? null : user;
            case "lid" or "hosted.lid":
                var colon = user.IndexOf(':', StringComparison.Ordinal);
                if (colon >= 0) user = user[..colon];
                return user.Length == 0 ? null : user + "@" + server;
            default:
                return user.Length == 0 ? null : user + "@" + server;
        }
    }

    /// <summary>True for a group JID (<c>…@g.us</c>) or a Z-API group phone (<c>…-group</c>).</summary>
    public static bool IsGroup(string? id) =>
        id is not null && (id.EndsWith("@g.us", StringComparison.OrdinalIgnoreCase) || id.EndsWith("-group", StringComparison.OrdinalIgnoreCase));

    /// <summary>True for a LID (<c>…@lid</c>): a privacy id, not a phone number.</summary>
    public static bool IsLid(string? id) => id is not null && id.EndsWith("@lid", StringComparison.OrdinalIgnoreCase);
}
