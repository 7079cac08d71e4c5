using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Inbox.Reliability.Dispatch;
using Inbox.Reliability.Events;
using Inbox.Reliability.Storage;

namespace Inbox.Reliability.SampleHost.Webhooks;

/// <summary>
/// The sample's event handler: one line per event (kind, provider/instance, chat, sender, type, text, status), and for a
/// message with media a second line with its state: stored (key, size, type, a fresh signed link), failed (the reason),
/// or pending (the chat's wait ran out: a placeholder now, a media update later). It never prints secrets, raw bodies or
/// base64 (the library's media errors carry no token either); the phone numbers in the fixtures are fake. Events arrive in per-chat order, at least once:
/// a real handler makes its side effect idempotent with <see cref="InboxEventContext.IdempotencyKey"/> (which differs
/// for a media update, so the update is not mistaken for a repeat).
/// </summary>
public sealed class PrintEventsHandler(DispatchedEvents dispatched) : IInboxEventHandler
{
    private const int MaxText = 48;
    private const int MaxError = 200;
    private const string Indent = "           ";

    /// <summary>How long the links printed for stored media stay valid.</summary>
    public static readonly TimeSpan LinkExpiry = TimeSpan.FromMinutes(10);

    /// <inheritdoc />
    public async Task HandleAsync(InboxEventContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        var text = new StringBuilder(Describe(context));
        if (context.Media.Status != MediaStatus.None)
        {
            // A link generated now, valid for LinkExpiry: never store one, ask again when it is needed.
            var link = context.Media.Status == MediaStatus.Stored ? await context.GetMediaUrlAsync(LinkExpiry, cancellationToken) : null;
            text.AppendLine().Append(DescribeMedia(context.Media, link));
        }

        Console.WriteLine(text.ToString()); // one write, so concurrent chats do not interleave the two lines
        dispatched.Add(context);
    }

    /// <summary>The media line printed under a message with media.</summary>
    public static string DescribeMedia(EventMedia media, Uri? link)
    {
        ArgumentNullException.ThrowIfNull(media);
        return media.Status switch
        {
            MediaStatus.Stored => string.Create(CultureInfo.InvariantCulture,
                $"{Indent}media stored: {media.Key}, {media.Size:N0} bytes, {Clean(media.MimeType, 40)}, sha256 {Clean(media.Sha256, 13)}\n{Indent}  link ({LinkExpiry.TotalMinutes:0} min): {link}"),
            MediaStatus.Failed => $"{Indent}media failed: {Clean(media.Error, MaxError)}",
            MediaStatus.Pending => $"{Indent}media pending: placeholder, update follows{(media.Error is { } last ? $" (last error: {Clean(last, MaxError - 40)})" : "")}",
            _ => $"{Indent}media {media.Status}",
        };
    }

    /// <summary>The line printed for an event.</summary>
    public static string Describe(InboxEventContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var e = context.Event;
        var line = new StringBuilder();
        line.Append(CultureInfo.InvariantCulture, $"event #{context.EventId,-3} {e.Kind,-10} {e.Provider + "/" + e.Instance,-16}");
        if (e.ChatId is not null) line.Append(CultureInfo.InvariantCulture, $" chat {Clean(e.ChatId, 32)}");
        if (e.SenderId is not null) line.Append(CultureInfo.InvariantCulture, $" from {Clean(e.SenderId, 32)}{(e.FromMe ? " (me)" : "")}");
        switch (e.Kind)
        {
            case InboxEventKind.Message:
                line.Append(CultureInfo.InvariantCulture, $" {e.MessageType}");
                if ((e.Text ?? e.Caption) is { Length: > 0 } text) line.Append(CultureInfo.InvariantCulture, $" \"{Clean(text, MaxText)}\"");
                break;
            case InboxEventKind.Status:
                line.Append(CultureInfo.InvariantCulture, $" status {e.Status} ({Clean(e.ProviderStatus, 24)})");
                if (e.StatusError is { } error) line.Append(CultureInfo.InvariantCulture, $" error {Clean(error.Code, 16)} {Clean(error.Title ?? error.Message, MaxText)}");
                break;
            case InboxEventKind.Connection:
                line.Append(CultureInfo.InvariantCulture, $" {e.Connection?.State} ({Clean(e.Connection?.ProviderState, 24)})");
                break;
            default:
                line.Append(CultureInfo.InvariantCulture, $" {Clean(e.ProviderEventType, 32)}");
                break;
        }

        if (context.IsMediaUpdate) line.Append(" [media update]");
        if (context.Attempt > 1) line.Append(CultureInfo.InvariantCulture, $" [attempt {context.Attempt}]");
        return line.ToString();
    }

    /// <summary>One line, at most <paramref name="max"/> characters, no control characters.</summary>
    private static string Clean(string? value, int max)
    {
        if (string.IsNullOrEmpty(value)) return "-";
        var chars = value.Select(c => char.IsControl(c) ? ' ' : c).ToArray();
        var text = new string(chars);
        return text.Length <= max ? text : string.Concat(text.AsSpan(0, max - 1), "…");
    }
}

/// <summary>
/// The events the handler saw, by provider: distinct event ids, so a redelivery (at least once) is not counted twice, and
/// media updates apart, since an update is the same event delivered again with its media, not another event.
/// </summary>
public sealed class DispatchedEvents
{
    private readonly ConcurrentDictionary<long, string> _events = new();
    private readonly ConcurrentDictionary<long, bool> _placeholders = new();
    private readonly ConcurrentDictionary<long, MediaStatus> _mediaUpdates = new();
    private int _deliveries;

    /// <summary>Every delivery of an event, redeliveries included, media updates excluded.</summary>
    public int Deliveries => Volatile.Read(ref _deliveries);

    /// <summary>Records a delivery.</summary>
    public void Add(InboxEventContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (context.IsMediaUpdate)
        {
            _mediaUpdates[context.EventId] = context.Media.Status;
            return;
        }

        Interlocked.Increment(ref _deliveries);
        _events.TryAdd(context.EventId, context.Event.Provider);
        if (context.Media.Status == MediaStatus.Pending) _placeholders.TryAdd(context.EventId, true);
    }

    /// <summary>The distinct events seen for a provider (media updates not counted).</summary>
    public int Count(string provider) => _events.Count(e => string.Equals(e.Value, provider, StringComparison.Ordinal));

    /// <summary>The ids of the distinct events seen.</summary>
    public IReadOnlyCollection<long> EventIds => _events.Keys.ToList();

    /// <summary>The events delivered with their media still pending (a placeholder): each gets a media update later.</summary>
    public IReadOnlyCollection<long> Placeholders => _placeholders.Keys.ToList();

    /// <summary>The events delivered again as a media update, with the media's final status.</summary>
    public IReadOnlyDictionary<long, MediaStatus> MediaUpdates => new Dictionary<long, MediaStatus>(_mediaUpdates);
}
