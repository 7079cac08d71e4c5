using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Inbox.Reliability.Dispatch;
using Inbox.Reliability.Events;

namespace Inbox.Reliability.SampleHost.Webhooks;

/// <summary>
/// The sample's event handler: one line per event (kind, provider/instance, chat, sender, type, text, status). It never
/// prints secrets or raw bodies; the phone numbers in the fixtures are fake. Events arrive in per-chat order, at least
/// once: a real handler makes its side effect idempotent with <see cref="InboxEventContext.IdempotencyKey"/>.
/// </summary>
public sealed class PrintEventsHandler(DispatchedEvents dispatched) : IInboxEventHandler
{
    private const int MaxText = 48;

    /// <inheritdoc />
    public Task HandleAsync(InboxEventContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        Console.WriteLine(Describe(context));
        dispatched.Add(context);
        return Task.CompletedTask;
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

/// <summary>The events the handler saw, by provider (distinct event ids, so a redelivery is not counted twice).</summary>
public sealed class DispatchedEvents
{
    private readonly ConcurrentDictionary<long, string> _events = new();
    private int _deliveries;

    /// <summary>Every delivery, redeliveries included.</summary>
    public int Deliveries => Volatile.Read(ref _deliveries);

    /// <summary>Records a delivery.</summary>
    public void Add(InboxEventContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        Interlocked.Increment(ref _deliveries);
        _events.TryAdd(context.EventId, context.Event.Provider);
    }

    /// <summary>The distinct events seen for a provider.</summary>
    public int Count(string provider) => _events.Count(e => string.Equals(e.Value, provider, StringComparison.Ordinal));

    /// <summary>The ids of the distinct events seen.</summary>
    public IReadOnlyCollection<long> EventIds => _events.Keys.ToList();
}
