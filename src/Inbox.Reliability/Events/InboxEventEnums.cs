namespace Inbox.Reliability.Events;

/// <summary>What an <see cref="InboxEvent"/> reports.</summary>
public enum InboxEventKind
{
    /// <summary>A message in a chat: received, or sent by the connected number (<see cref="InboxEvent.FromMe"/>).</summary>
    Message = 0,

    /// <summary>A delivery status of a message (sent, delivered, read, failed...); <see cref="InboxEvent.ExternalId"/> is that message's id.</summary>
    Status = 1,

    /// <summary>The provider's session connected or disconnected.</summary>
    Connection = 2,

    /// <summary>
    /// Anything else the provider sent in a payload it recognizably sent (account updates, presence, group changes...).
    /// Kept, never dropped: <see cref="InboxEvent.ProviderEventType"/> and <see cref="InboxEvent.Raw"/> say what it was.
    /// </summary>
    Other = 3,
}

/// <summary>The content type of a message event.</summary>
public enum InboxMessageType
{
    /// <summary>Not recognized (system notices, protocol messages, types this version does not map). <see cref="InboxEvent.Raw"/> has the content.</summary>
    Unknown = 0,

    /// <summary>Plain text; <see cref="InboxEvent.Text"/> holds it.</summary>
    Text = 1,

    /// <summary>An image; see <see cref="InboxEvent.Media"/>.</summary>
    Image = 2,

    /// <summary>Audio or a voice note; see <see cref="InboxEvent.Media"/>.</summary>
    Audio = 3,

    /// <summary>A video; see <see cref="InboxEvent.Media"/>.</summary>
    Video = 4,

    /// <summary>A file; see <see cref="InboxEvent.Media"/> (with its file name when the provider gives one).</summary>
    Document = 5,

    /// <summary>A sticker; see <see cref="InboxEvent.Media"/>.</summary>
    Sticker = 6,

    /// <summary>A location; see <see cref="InboxEvent.Location"/>.</summary>
    Location = 7,

    /// <summary>One or more contact cards; see <see cref="InboxEvent.Contacts"/>.</summary>
    Contact = 8,

    /// <summary>A reaction to another message; see <see cref="InboxEvent.Reaction"/>.</summary>
    Reaction = 9,

    /// <summary>A reply to buttons or a list; <see cref="InboxEvent.Text"/> holds the chosen option's title.</summary>
    Interactive = 10,

    /// <summary>A poll; <see cref="InboxEvent.Text"/> holds its question.</summary>
    Poll = 11,
}

/// <summary>A message's delivery status, normalized across providers.</summary>
public enum InboxMessageStatus
{
    /// <summary>A status this version does not map; <see cref="InboxEvent.ProviderStatus"/> has the provider's value.</summary>
    Unknown = 0,

    /// <summary>Not yet accepted by the WhatsApp server (queued on the device or provider).</summary>
    Pending = 1,

    /// <summary>Accepted by the WhatsApp server.</summary>
    Sent = 2,

    /// <summary>Delivered to the recipient's device.</summary>
    Delivered = 3,

    /// <summary>Read (for Z-API's <c>READ_BY_ME</c>: read by the connected number; then <see cref="InboxEvent.FromMe"/> is false).</summary>
    Read = 4,

    /// <summary>A voice note or video was played.</summary>
    Played = 5,

    /// <summary>Failed; <see cref="InboxEvent.StatusError"/> says why as far as the provider tells.</summary>
    Failed = 6,

    /// <summary>Deleted (revoked).</summary>
    Deleted = 7,
}

/// <summary>A provider session's connection state.</summary>
public enum InboxConnectionState
{
    /// <summary>A state this version does not map; <see cref="ConnectionInfo.ProviderState"/> has the provider's value.</summary>
    Unknown = 0,

    /// <summary>Connected: messages flow.</summary>
    Connected = 1,

    /// <summary>Starting or reconnecting.</summary>
    Connecting = 2,

    /// <summary>
    /// Disconnected: stopped, failed, logged out, or waiting for the phone to be paired again (QR code);
    /// <see cref="ConnectionInfo.Reason"/> and <see cref="ConnectionInfo.ProviderState"/> say which.
    /// </summary>
    Disconnected = 3,
}
