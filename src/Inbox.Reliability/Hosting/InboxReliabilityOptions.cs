namespace Inbox.Reliability;

/// <summary>Settings for the whole library. Set through <c>services.AddInboxReliability(o => ...)</c>.</summary>
public sealed class InboxReliabilityOptions
{
    /// <summary>
    /// The name this process uses as lease owner, shown in job lists and attempt history.
    /// Default: machine name and process id.
    /// </summary>
    public string WorkerName { get; set; } = $"{Environment.MachineName}:{Environment.ProcessId}";

    /// <summary>Apply storage migrations at startup. Default true; turn off when migrations are applied by a deploy step.</summary>
    public bool RunMigrations { get; set; } = true;

    /// <summary>
    /// Run this process's job workers. Default true. False makes it an enqueue-only host (a web tier): it captures webhooks
    /// and enqueues jobs (ingest, dispatch, media, the host's own queues) but claims none; the hosts sharing its database
    /// with this left true process them. Meant for PostgreSQL, where many hosts share one database. Migrations, the lease
    /// reaper and retention still run here.
    /// </summary>
    public bool ProcessJobs { get; set; } = true;

    /// <summary>The default attempts for jobs of queues with no handler registered in this process. Default 10.</summary>
    public int DefaultMaxAttempts { get; set; } = 10;

    /// <summary>How long completed and canceled jobs are kept. Default 7 days. Failed jobs are never deleted by retention.</summary>
    public TimeSpan Retention { get; set; } = TimeSpan.FromDays(7);

    /// <summary>How often retention runs. Default 1 hour.</summary>
    public TimeSpan RetentionInterval { get; set; } = TimeSpan.FromHours(1);

    /// <summary>How often expired leases are returned to pending. Default 5 seconds; it also runs at startup.</summary>
    public TimeSpan LeaseReaperInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// On shutdown, how long running handlers may take to finish before their tokens are canceled and their
    /// leases released (the jobs return to pending without counting the attempt). Default 10 seconds.
    /// Keep it below the host's <c>HostOptions.ShutdownTimeout</c>.
    /// </summary>
    public TimeSpan ShutdownGracePeriod { get; set; } = TimeSpan.FromSeconds(10);

    internal IEnumerable<string> Validate()
    {
        if (string.IsNullOrWhiteSpace(WorkerName) || WorkerName.Length > 200) yield return "AddInboxReliability: WorkerName must be 1 to 200 characters.";
        if (DefaultMaxAttempts < 1) yield return $"AddInboxReliability: DefaultMaxAttempts must be at least 1 (was {DefaultMaxAttempts}).";
        if (Retention <= TimeSpan.Zero) yield return $"AddInboxReliability: Retention must be positive (was {Retention}).";
        if (RetentionInterval <= TimeSpan.Zero) yield return $"AddInboxReliability: RetentionInterval must be positive (was {RetentionInterval}).";
        if (LeaseReaperInterval <= TimeSpan.Zero) yield return $"AddInboxReliability: LeaseReaperInterval must be positive (was {LeaseReaperInterval}).";
        if (ShutdownGracePeriod < TimeSpan.Zero) yield return $"AddInboxReliability: ShutdownGracePeriod must not be negative (was {ShutdownGracePeriod}).";
    }
}
