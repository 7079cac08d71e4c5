using Inbox.Reliability.Jobs;

namespace Inbox.Reliability.Storage;

/// <summary>For storage packages: folds (queue, status, count) rows into <see cref="QueueStats"/>, one per queue, ordered by queue.</summary>
public static class StatsBuilder
{
    /// <summary>Builds the stats.</summary>
    public static IReadOnlyList<QueueStats> Build(IEnumerable<(string Queue, int Status, long Count)> counts)
    {
        ArgumentNullException.ThrowIfNull(counts);
        var byQueue = new SortedDictionary<string, QueueStats>(StringComparer.Ordinal);
        foreach (var (queue, status, count) in counts)
        {
            var stats = byQueue.TryGetValue(queue, out var s) ? s : new QueueStats { Queue = queue };
            byQueue[queue] = (JobStatus)status switch
            {
                JobStatus.Pending => stats with { Pending = stats.Pending + count },
                JobStatus.Processing => stats with { Processing = stats.Processing + count },
                JobStatus.Completed => stats with { Completed = stats.Completed + count },
                JobStatus.Failed => stats with { Failed = stats.Failed + count },
                _ => stats with { Canceled = stats.Canceled + count },
            };
        }

        return byQueue.Values.ToList();
    }
}
