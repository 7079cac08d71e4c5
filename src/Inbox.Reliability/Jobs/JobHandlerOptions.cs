namespace Inbox.Reliability.Jobs;

/// <summary>How a queue's jobs are run. Set through <c>AddJobHandler&lt;T&gt;("queue", o => ...)</c>.</summary>
public sealed class JobHandlerOptions
{
    /// <summary>How many jobs of this queue run at once in this process. Default 8.</summary>
    public int Concurrency { get; set; } = 8;

    /// <summary>
    /// How many claimed jobs may wait in memory for a free handler slot, so the next jobs are at hand when a handler
    /// finishes. Their leases are held and renewed meanwhile; on shutdown they are released untouched. Default 16;
    /// 0 claims only for free slots (best when handlers are slow and other processes should take the work). While the
    /// queue has a backlog (the last claim was full), the next claim waits until a quarter of the buffer is free: fewer,
    /// larger claims, and the handlers still have three quarters in hand while it runs.
    /// </summary>
    public int Prefetch { get; set; } = 16;

    /// <summary>The most jobs claimed in one round trip to storage. Default 100.</summary>
    public int BatchSize { get; set; } = 100;

    /// <summary>How long a claimed job is leased before another worker may take it over. Default 30 seconds; renewed by heartbeats while the handler runs.</summary>
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often running jobs' leases are extended. Default: a third of <see cref="LeaseDuration"/>.</summary>
    public TimeSpan? HeartbeatInterval { get; set; }

    /// <summary>How long one attempt may run before its token is canceled and the attempt counts as failed (retryable). Default 5 minutes; <see cref="Timeout.InfiniteTimeSpan"/> for none.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>The default number of attempts for jobs of this queue that do not set their own. Default 10.</summary>
    public int MaxAttempts { get; set; } = 10;

    /// <summary>
    /// Delete a job as soon as it completes, with its attempt history, instead of keeping it until
    /// <c>InboxReliabilityOptions.Retention</c> (BullMQ's <c>removeOnComplete</c>; graphile-worker always does this).
    /// Nothing of a completed job remains to get, list or count (stats show it neither pending nor completed); failed and
    /// canceled jobs are kept as usual. Costs the database less per job: no completed rows to update and later purge.
    /// Default false.
    /// </summary>
    public bool RemoveOnComplete { get; set; }

    /// <summary>The delay before a retry.</summary>
    public RetryBackoffOptions Backoff { get; } = new();

    /// <summary>Exception types (and their subclasses) that fail the job at once, like <see cref="FatalJobException"/>.</summary>
    public IList<Type> FatalExceptions { get; } = new List<Type>();

    /// <summary>The shortest wait between polls when idle. Default 50 ms. Enqueues in this process wake the worker at once.</summary>
    public TimeSpan MinPollInterval { get; set; } = TimeSpan.FromMilliseconds(50);

    /// <summary>The longest wait between polls when idle (polling backs off up to it). Default 1 second.</summary>
    public TimeSpan MaxPollInterval { get; set; } = TimeSpan.FromSeconds(1);

    internal TimeSpan EffectiveHeartbeatInterval => HeartbeatInterval ?? LeaseDuration / 3;

    internal IEnumerable<string> Validate(string queue)
    {
        var at = $"AddJobHandler(\"{queue}\")";
        if (Concurrency < 1 || Concurrency > 1024) yield return $"{at}: Concurrency must be between 1 and 1024 (was {Concurrency}).";
        if (Prefetch < 0 || Prefetch > 10_000) yield return $"{at}: Prefetch must be between 0 and 10000 (was {Prefetch}).";
        if (BatchSize < 1 || BatchSize > 1000) yield return $"{at}: BatchSize must be between 1 and 1000 (was {BatchSize}).";
        if (LeaseDuration < TimeSpan.FromSeconds(1)) yield return $"{at}: LeaseDuration must be at least 1 second (was {LeaseDuration}).";
        if (EffectiveHeartbeatInterval <= TimeSpan.Zero || EffectiveHeartbeatInterval >= LeaseDuration)
            yield return $"{at}: HeartbeatInterval must be positive and shorter than LeaseDuration (was {EffectiveHeartbeatInterval} for a lease of {LeaseDuration}).";
        if (Timeout <= TimeSpan.Zero && Timeout != System.Threading.Timeout.InfiniteTimeSpan) yield return $"{at}: Timeout must be positive or Timeout.InfiniteTimeSpan (was {Timeout}).";
        if (MaxAttempts < 1) yield return $"{at}: MaxAttempts must be at least 1 (was {MaxAttempts}).";
        if (MinPollInterval <= TimeSpan.Zero || MaxPollInterval < MinPollInterval)
            yield return $"{at}: MinPollInterval must be positive and MaxPollInterval at least MinPollInterval (were {MinPollInterval} and {MaxPollInterval}).";
        foreach (var error in Backoff.Validate(at)) yield return error;
        foreach (var type in FatalExceptions)
        {
            if (!typeof(Exception).IsAssignableFrom(type)) yield return $"{at}: FatalExceptions holds {type.FullName}, which is not an Exception type.";
        }
    }
}

/// <summary>Exponential backoff with jitter: attempt n waits <c>min(Cap, Base * Factor^(n-1))</c>, shortened by a random part up to <see cref="Jitter"/>.</summary>
public sealed class RetryBackoffOptions
{
    /// <summary>The delay after the first failed attempt. Default 1 second.</summary>
    public TimeSpan Base { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How much each further attempt multiplies the delay. Default 2.</summary>
    public double Factor { get; set; } = 2;

    /// <summary>The longest delay. Default 1 hour.</summary>
    public TimeSpan Cap { get; set; } = TimeSpan.FromHours(1);

    /// <summary>The largest fraction (0 to 1) taken off each delay at random, so retries of many jobs spread out. Default 0.2.</summary>
    public double Jitter { get; set; } = 0.2;

    internal TimeSpan DelayFor(int attempt, double random)
    {
        var exponent = Math.Max(0, attempt - 1);
        var raw = Base.TotalMilliseconds * Math.Pow(Factor, exponent);
        var capped = double.IsFinite(raw) ? Math.Min(raw, Cap.TotalMilliseconds) : Cap.TotalMilliseconds;
        return TimeSpan.FromMilliseconds(capped * (1 - (Jitter * random)));
    }

    internal IEnumerable<string> Validate(string at)
    {
        if (Base < TimeSpan.Zero) yield return $"{at}: Backoff.Base must not be negative (was {Base}).";
        if (Factor < 1) yield return $"{at}: Backoff.Factor must be at least 1 (was {Factor}).";
        if (Cap < Base) yield return $"{at}: Backoff.Cap must be at least Backoff.Base (were {Cap} and {Base}).";
        if (Jitter is < 0 or > 1) yield return $"{at}: Backoff.Jitter must be between 0 and 1 (was {Jitter}).";
    }
}
