namespace Inbox.Reliability.Events;

/// <summary>
/// Builds <see cref="InboxEvent.DedupeKey"/> values, so every provider adapter (and a host's own event source) forms
/// them the same way. Parts are joined with <c>|</c> as given.
/// </summary>
public static class InboxDedupeKey
{
    /// <summary><c>provider|instance|messageId</c>, plus <c>|edit:{editId}</c> for an edit that reuses the original message's id.</summary>
    public static string ForMessage(string provider, string instance, string messageId, string? editId = null)
    {
        Check(provider, instance, messageId);
        return editId is null ? $"{provider}|{instance}|{messageId}" : $"{provider}|{instance}|{messageId}|edit:{editId}";
    }

    /// <summary>
    /// <c>provider|instance|messageId|status</c>, where status is the lower-case name of <paramref name="status"/>
    /// (<c>unknown:{providerStatus}</c> when unmapped), plus <c>|{participant}</c> for one group member's receipt,
    /// so the receipts of different members are not duplicates of each other.
    /// </summary>
    public static string ForStatus(string provider, string instance, string messageId, InboxMessageStatus status, string? providerStatus = null, string? participant = null)
    {
        Check(provider, instance, messageId);
        var name = StatusName(status, providerStatus);
        return string.IsNullOrEmpty(participant) ? $"{provider}|{instance}|{messageId}|{name}" : $"{provider}|{instance}|{messageId}|{name}|{participant}";
    }

    /// <summary><c>provider|instance|connection|externalId</c>.</summary>
    public static string ForConnection(string provider, string instance, string externalId)
    {
        Check(provider, instance, externalId);
        return $"{provider}|{instance}|connection|{externalId}";
    }

    /// <summary><c>provider|instance|other|externalId</c>.</summary>
    public static string ForOther(string provider, string instance, string externalId)
    {
        Check(provider, instance, externalId);
        return $"{provider}|{instance}|other|{externalId}";
    }

    /// <summary>The status part of a status dedupe key: <c>sent</c>, <c>delivered</c>, <c>read</c>… or <c>unknown:{providerStatus}</c>.</summary>
    public static string StatusName(InboxMessageStatus status, string? providerStatus = null) => status switch
    {
        InboxMessageStatus.Pending => "pending",
        InboxMessageStatus.Sent => "sent",
        InboxMessageStatus.Delivered => "delivered",
        InboxMessageStatus.Read => "read",
        InboxMessageStatus.Played => "played",
        InboxMessageStatus.Failed => "failed",
        InboxMessageStatus.Deleted => "deleted",
        _ => string.IsNullOrEmpty(providerStatus) ? "unknown" : "unknown:" + providerStatus.ToLowerInvariant(),
    };

    private static void Check(string provider, string instance, string id)
    {
        ArgumentException.ThrowIfNullOrEmpty(provider);
        ArgumentException.ThrowIfNullOrEmpty(instance);
        ArgumentException.ThrowIfNullOrEmpty(id);
    }
}
