namespace Inbox.Reliability.Events;

/// <summary>
/// One normalized event from a provider webhook: a message, a delivery status, a connection change, or anything else
/// the provider sent. One raw webhook can hold many events (a Meta batch, a Z-API status with several ids); each has
/// its own <see cref="DedupeKey"/>. Produced by an <see cref="IWebhookProvider"/>; immutable.
/// </summary>
/// <remarks>
/// <para><b>Chat ids</b> (<see cref="ChatId"/>, also <see cref="SenderId"/>) are normalized so one chat always gets the
/// same string from one provider, because the chat is the ordering key: a 1:1 chat with a phone number is its digits
/// as the provider gives them (a WhatsApp JID such as <c>5511999990001@s.whatsapp.net</c>, <c>…@c.us</c> or
/// <c>5511999990001:12@s.whatsapp.net</c> becomes <c>5511999990001</c>); a group is the provider's group id as given
/// (<c>120363…@g.us</c> for Evolution and WAHA, <c>…-group</c> for Z-API, <c>group_id</c> for Meta); anything else
/// (a <c>…@lid</c> with no phone number alternative, <c>…@newsletter</c>, <c>status@broadcast</c>) is the JID as
/// given, without a device suffix.</para>
/// <para><b>Times</b> are UTC. Each provider's unit (seconds or milliseconds) is read as documented; a value that is
/// clearly in the other unit is recognized by magnitude. When the payload has no usable time the webhook's
/// <see cref="WebhookRequest.ReceivedAt"/> is used.</para>
/// </remarks>
public sealed record InboxEvent
{
    /// <summary>What the event reports.</summary>
    public required InboxEventKind Kind { get; init; }

    /// <summary>The provider's name, e.g. <c>meta</c>, <c>zapi</c>, <c>evolution</c>, <c>waha</c>, <c>wapi</c>.</summary>
    public required string Provider { get; init; }

    /// <summary>The instance the webhook arrived on (from the webhook URL, as given in <see cref="WebhookRequest.Instance"/>).</summary>
    public required string Instance { get; init; }

    /// <summary>
    /// The provider's id for what the event is about: the message id for messages, the id of the message the status is
    /// about for statuses. For connection and other events, an id derived from the payload so that a provider retry of
    /// the same payload gets the same id: the envelope id when the provider has one (WAHA <c>evt_…</c>), otherwise
    /// <c>sha256:</c> and 32 hex digits of the SHA-256 of the event's compact JSON.
    /// </summary>
    public required string ExternalId { get; init; }

    /// <summary>
    /// Unique per fact, so a provider retry is dropped as a duplicate: <c>provider|instance|externalId</c> for messages
    /// (plus <c>|edit:…</c> for edits that reuse the message id), <c>provider|instance|externalId|status</c> for statuses
    /// (plus <c>|participant</c> for a group member's receipt), <c>provider|instance|connection|externalId</c> and
    /// <c>provider|instance|other|externalId</c> otherwise. See <see cref="InboxDedupeKey"/>.
    /// </summary>
    public required string DedupeKey { get; init; }

    /// <summary>The provider's name for the event, e.g. <c>messages.upsert</c>, <c>ReceivedCallback</c>, <c>message.ack</c>, or Meta's change <c>field</c>.</summary>
    public string? ProviderEventType { get; init; }

    /// <summary>
    /// The provider's own id of the number or session, as found in the payload: Meta <c>metadata.phone_number_id</c>,
    /// Z-API and W-API <c>instanceId</c>, Evolution's instance name, WAHA's session.
    /// </summary>
    public string? ProviderInstanceId { get; init; }

    /// <summary>The chat (normalized, see the remarks): always set for messages and statuses, null for connection events.</summary>
    public string? ChatId { get; init; }

    /// <summary>True when <see cref="ChatId"/> is a group.</summary>
    public bool IsGroup { get; init; }

    /// <summary>
    /// Who sent the message (normalized like <see cref="ChatId"/>): the contact in a 1:1 chat, the member in a group, the
    /// connected number when <see cref="FromMe"/>. For statuses: the group member whose receipt it is, when the provider says.
    /// </summary>
    public string? SenderId { get; init; }

    /// <summary>The sender's display name, when the provider gives it.</summary>
    public string? SenderName { get; init; }

    /// <summary>
    /// True for a message sent by the connected number (from another device, the provider's API, or an echo); for a
    /// status, true when the message it is about was sent by the connected number.
    /// </summary>
    public bool FromMe { get; init; }

    /// <summary>When it happened, UTC.</summary>
    public required DateTimeOffset OccurredAt { get; init; }

    /// <summary>The content type of a message; <see cref="InboxMessageType.Unknown"/> for other kinds.</summary>
    public InboxMessageType MessageType { get; init; }

    /// <summary>The message's text: the body of a text message, or the caption of a media message.</summary>
    public string? Text { get; init; }

    /// <summary>The caption of a media message (also in <see cref="Text"/>).</summary>
    public string? Caption { get; init; }

    /// <summary>The id of the message this one replies to (quotes), in the provider's id format.</summary>
    public string? ReplyToId { get; init; }

    /// <summary>True when the provider marks the message as forwarded.</summary>
    public bool IsForwarded { get; init; }

    /// <summary>True when the provider marks the message as an edit of an earlier one.</summary>
    public bool IsEdit { get; init; }

    /// <summary>Where to fetch the message's media from; null when it has none.</summary>
    public MediaReference? Media { get; init; }

    /// <summary>The shared location of a location message.</summary>
    public LocationInfo? Location { get; init; }

    /// <summary>The shared contact cards of a contact message; empty otherwise.</summary>
    public IReadOnlyList<ContactCard> Contacts { get; init; } = [];

    /// <summary>The reaction of a reaction message.</summary>
    public ReactionInfo? Reaction { get; init; }

    /// <summary>The normalized status of a status event; null for other kinds.</summary>
    public InboxMessageStatus? Status { get; init; }

    /// <summary>The provider's status value as sent, e.g. <c>delivered</c>, <c>READ_BY_ME</c>, <c>DELIVERY_ACK</c> or WAHA's ack number.</summary>
    public string? ProviderStatus { get; init; }

    /// <summary>Why a message failed: always set when <see cref="Status"/> is <see cref="InboxMessageStatus.Failed"/>.</summary>
    public StatusError? StatusError { get; init; }

    /// <summary>The connection change of a connection event.</summary>
    public ConnectionInfo? Connection { get; init; }

    /// <summary>
    /// The JSON of just this event's part of the payload (a Meta message, status or change; Evolution's <c>data</c>; WAHA's
    /// <c>payload</c>; a Z-API or W-API callback), for other events and debugging. Inlined base64 (file contents,
    /// thumbnails), large byte arrays and <c>apikey</c> fields are left out; null when it would still be larger than
    /// <see cref="MaxRawLength"/> characters. The stored raw webhook keeps the full body.
    /// </summary>
    public string? Raw { get; init; }

    /// <summary>The largest <see cref="Raw"/> kept, in characters (64 KiB).</summary>
    public const int MaxRawLength = 64 * 1024;
}
