using System.Collections.ObjectModel;

namespace Inbox.Reliability.Events;

/// <summary>
/// Where a message's media can be fetched from later, as the provider describes it. Only references: the bytes are
/// never kept in an event (base64 that some providers inline is dropped; <see cref="Properties"/> says it was there).
/// </summary>
public sealed record MediaReference
{
    /// <summary>
    /// A URL the media can be downloaded from, with the provider's credentials where it needs them: Meta <c>url</c>
    /// (bearer token, valid minutes; may be absent), Z-API storage URL (public, 30 days), WAHA <c>media.url</c>
    /// (<c>X-Api-Key</c>), Evolution <c>mediaUrl</c> (its S3 copy, when enabled). Null when the provider gives none
    /// that is usable as is (Evolution and W-API WhatsApp CDN URLs are encrypted; see <see cref="Properties"/>).
    /// </summary>
    public string? Url { get; init; }

    /// <summary>
    /// The id to ask the provider for the media with: Meta media id (<c>GET /{media-id}</c>, 7 days); for Evolution,
    /// W-API and WAHA the message id their download endpoints take. Null for Z-API (its URL is enough).
    /// </summary>
    public string? MediaId { get; init; }

    /// <summary>The MIME type the provider reports, e.g. <c>image/jpeg</c> or <c>audio/ogg; codecs=opus</c>.</summary>
    public string? MimeType { get; init; }

    /// <summary>
    /// The SHA-256 of the decrypted file as the provider gives it, base64 (Meta <c>sha256</c>; Evolution's
    /// <c>fileSha256</c> byte object converted to base64). Checked after download when present.
    /// </summary>
    public string? Sha256 { get; init; }

    /// <summary>The file name, when the provider gives one (documents mostly).</summary>
    public string? FileName { get; init; }

    /// <summary>The size in bytes, when the provider gives it.</summary>
    public long? FileSize { get; init; }

    /// <summary>
    /// Provider-specific details a downloader may need. Keys used: <c>hasBase64</c> (<c>"true"</c>: the raw webhook
    /// inlines the file as base64, Evolution), <c>encryptedUrl</c> and <c>directPath</c> (WhatsApp CDN, Evolution and
    /// W-API), <c>thumbnailUrl</c> (Z-API), <c>voice</c> (<c>"true"</c> for voice notes), <c>animated</c> (stickers),
    /// <c>notDownloaded</c> (<c>"true"</c>: WAHA did not download it, <c>hasMedia</c> with <c>media: null</c>),
    /// <c>providerError</c> (WAHA <c>media.error</c>). Never holds file bytes or keys.
    /// </summary>
    public IReadOnlyDictionary<string, string> Properties { get; init; } = ReadOnlyDictionary<string, string>.Empty;
}

/// <summary>A shared location.</summary>
/// <param name="Latitude">Degrees latitude.</param>
/// <param name="Longitude">Degrees longitude.</param>
public sealed record LocationInfo(double Latitude, double Longitude)
{
    /// <summary>The place's name, if given.</summary>
    public string? Name { get; init; }

    /// <summary>The place's address, if given.</summary>
    public string? Address { get; init; }

    /// <summary>A URL for the place, if given.</summary>
    public string? Url { get; init; }
}

/// <summary>A phone number on a shared contact card.</summary>
/// <param name="Number">The number as written on the card (may contain spaces, <c>+</c> and dashes).</param>
/// <param name="WaId">The WhatsApp id (digits) when the provider or the vCard's <c>waid</c> gives it.</param>
public sealed record ContactPhone(string Number, string? WaId);

/// <summary>A shared contact card.</summary>
public sealed record ContactCard
{
    /// <summary>The contact's display name.</summary>
    public string? Name { get; init; }

    /// <summary>The contact's phone numbers.</summary>
    public IReadOnlyList<ContactPhone> Phones { get; init; } = [];

    /// <summary>The vCard text, when the provider sends one.</summary>
    public string? VCard { get; init; }
}

/// <summary>A reaction to a message.</summary>
/// <param name="Emoji">The emoji. Empty when the reaction was removed.</param>
/// <param name="TargetMessageId">The id of the message reacted to, in the provider's id format.</param>
public sealed record ReactionInfo(string Emoji, string? TargetMessageId);

/// <summary>Why a message failed, as far as the provider says. Never holds secrets or message bodies.</summary>
public sealed record StatusError
{
    /// <summary>The provider's error code, e.g. Meta's <c>131047</c>.</summary>
    public string? Code { get; init; }

    /// <summary>A short title, e.g. Meta's <c>title</c>, or the provider's status name when it gives nothing else.</summary>
    public string? Title { get; init; }

    /// <summary>The provider's message.</summary>
    public string? Message { get; init; }

    /// <summary>More details (Meta <c>error_data.details</c>).</summary>
    public string? Details { get; init; }
}

/// <summary>A connection change of the provider's session.</summary>
/// <param name="State">The normalized state.</param>
/// <param name="ProviderState">The provider's own state value, e.g. Evolution <c>close</c> or WAHA <c>SCAN_QR_CODE</c>.</param>
public sealed record ConnectionInfo(InboxConnectionState State, string? ProviderState)
{
    /// <summary>Why, when the provider says: Z-API <c>error</c>, Evolution <c>statusReason</c>, WAHA's status name.</summary>
    public string? Reason { get; init; }
}
