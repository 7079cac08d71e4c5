using System.Text.Json;
using Inbox.Reliability.Events;

namespace Inbox.Reliability.Providers.Internal;

/// <summary>The shared part of every adapter: parse the body, never return an empty list.</summary>
internal abstract class WebhookProviderBase : IWebhookProvider
{
    public abstract string Name { get; }

    /// <summary>The provider's name as written in messages, e.g. "Z-API".</summary>
    protected abstract string Title { get; }

    public abstract WebhookAuthResult Authenticate(WebhookRequest request);

    public IReadOnlyList<InboxEvent> Parse(WebhookRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        using var document = Payload.ParseObject(request, Title);
        var context = new EventContext(request, Name, Title);
        var events = new List<InboxEvent>();
        var root = document.RootElement;
        Parse(root, context, events);
        if (events.Count == 0)
        {
            // Recognized as this provider's envelope, but nothing in it is known: keep it as one "other" event.
            events.Add(context.Other(Payload.Hash(root), EventType(root), null, null, root));
        }

        return events;
    }

    /// <summary>Adds the events of a payload; throws <see cref="WebhookParseException"/> when it is not this provider's.</summary>
    protected abstract void Parse(JsonElement root, EventContext context, List<InboxEvent> events);

    /// <summary>The provider's event type field of the envelope, for the fallback "other" event.</summary>
    protected abstract string? EventType(JsonElement root);
}
