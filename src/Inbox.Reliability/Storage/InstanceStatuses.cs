using Inbox.Reliability.Events;

namespace Inbox.Reliability.Storage;

/// <summary>How ingest moves an instance's status, the same in every storage.</summary>
internal static class InstanceStatuses
{
    /// <summary>
    /// Connection events set the status; any other event from a disconnected instance means the session is up again
    /// (providers only send while it is).
    /// </summary>
    public static InstanceStatus After(InstanceStatus current, InboxEvent e) => e.Kind switch
    {
        InboxEventKind.Connection when e.Connection?.State == InboxConnectionState.Connected => InstanceStatus.Connected,
        InboxEventKind.Connection when e.Connection?.State == InboxConnectionState.Disconnected => InstanceStatus.Disconnected,
        InboxEventKind.Connection => current,
        _ when current == InstanceStatus.Disconnected => InstanceStatus.Connected,
        _ => current,
    };
}
