using Inbox.Reliability.Events;

namespace Inbox.Reliability.Providers.Internal;

/// <summary>The content part of a message event, as read from a provider's message object.</summary>
internal sealed class MessageContent
{
    public InboxMessageType Type { get; set; }

    public string? Text { get; set; }

    public string? Caption { get; set; }

    public string? ReplyToId { get; set; }

    public bool IsForwarded { get; set; }

    public MediaReference? Media { get; set; }

    public LocationInfo? Location { get; set; }

    public IReadOnlyList<ContactCard> Contacts { get; set; } = [];

    public ReactionInfo? Reaction { get; set; }

    /// <summary>Sets a media message's caption (also its text).</summary>
    public void SetCaption(string? caption)
    {
        if (string.IsNullOrEmpty(caption)) return;
        Caption = caption;
        Text = caption;
    }
}

/// <summary>Reads contact cards' phone numbers from vCard text.</summary>
internal static class VCard
{
    /// <summary>The <c>TEL</c> lines of a vCard: the number as written and its <c>waid</c> parameter.</summary>
    public static IReadOnlyList<ContactPhone> Phones(string? vcard)
    {
        if (string.IsNullOrEmpty(vcard)) return [];
        var phones = new List<ContactPhone>();
        foreach (var rawLine in vcard.Split('\n'))
        {
            var line = rawLine.TrimEnd('\r').Trim();
            var dot = line.IndexOf('.', StringComparison.Ordinal);
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (dot >= 0 && (colon < 0 || dot < colon) && line.StartsWith("item", StringComparison.OrdinalIgnoreCase)) line = line[(dot + 1)..];
            colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon < 3 || !line.StartsWith("TEL", StringComparison.OrdinalIgnoreCase)) continue;
            var number = line[(colon + 1)..].Trim();
            string? waid = null;
            foreach (var parameter in line[..colon].Split(';'))
            {
                if (parameter.StartsWith("waid=", StringComparison.OrdinalIgnoreCase)) waid = parameter[5..].Trim();
            }

            if (number.Length > 0) phones.Add(new ContactPhone(number, string.IsNullOrEmpty(waid) ? null : waid));
            if (phones.Count >= 100) break;
        }

        return phones;
    }
}
