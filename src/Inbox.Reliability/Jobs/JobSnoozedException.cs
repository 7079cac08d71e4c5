namespace Inbox.Reliability.Jobs;

/// <summary>
/// Thrown by an internal handler to put its job back until <see cref="Until"/> without counting an attempt: a keyed job
/// stays its key's head, so the jobs behind it keep waiting (how dispatch holds a chat while a media download is pending).
/// </summary>
internal sealed class JobSnoozedException(DateTimeOffset until) : Exception("The job was put back until " + until.ToString("O", System.Globalization.CultureInfo.InvariantCulture) + ".")
{
    public DateTimeOffset Until { get; } = until;
}
