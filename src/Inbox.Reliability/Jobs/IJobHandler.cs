namespace Inbox.Reliability.Jobs;

/// <summary>
/// Runs the jobs of a queue. Register with <c>builder.AddJobHandler&lt;THandler&gt;("queue")</c>; a new DI scope
/// is created per job. Complete normally to complete the job; throw to retry it with backoff; throw
/// <see cref="FatalJobException"/> (or a type listed in <see cref="JobHandlerOptions.FatalExceptions"/>) to fail it at once.
/// </summary>
public interface IJobHandler
{
    /// <summary>Runs one job.</summary>
    /// <param name="job">The job.</param>
    /// <param name="cancellationToken">Signalled when the job is canceled, times out, loses its lease, or the host stops.</param>
    Task HandleAsync(JobContext job, CancellationToken cancellationToken);
}

/// <summary>A job handed to a handler.</summary>
public sealed class JobContext
{
    internal JobContext(long id, string queue, string? key, string payload, int attempt, int maxAttempts, string? dedupeKey, DateTimeOffset createdAt)
    {
        Id = id;
        Queue = queue;
        Key = key;
        Payload = payload;
        Attempt = attempt;
        MaxAttempts = maxAttempts;
        IdempotencyKey = dedupeKey ?? "job-" + id.ToString(System.Globalization.CultureInfo.InvariantCulture);
        CreatedAt = createdAt;
    }

    /// <summary>The job's id.</summary>
    public long Id { get; }

    /// <summary>The job's queue.</summary>
    public string Queue { get; }

    /// <summary>The job's ordering key, if any.</summary>
    public string? Key { get; }

    /// <summary>The job's payload.</summary>
    public string Payload { get; }

    /// <summary>This attempt's number, from 1.</summary>
    public int Attempt { get; }

    /// <summary>The most attempts the job may make.</summary>
    public int MaxAttempts { get; }

    /// <summary>
    /// A key that is the same on every attempt of this job: pass it to downstream systems so a re-run
    /// (at-least-once delivery) does not repeat a side effect. The dedupe key when one was given, else <c>job-{Id}</c>.
    /// </summary>
    public string IdempotencyKey { get; }

    /// <summary>When the job was enqueued.</summary>
    public DateTimeOffset CreatedAt { get; }

    /// <summary>Deserializes the JSON payload.</summary>
    public T? GetPayload<T>(System.Text.Json.JsonSerializerOptions? options = null) => System.Text.Json.JsonSerializer.Deserialize<T>(Payload, options);
}

/// <summary>Thrown by a handler to fail its job at once, without retrying: the job is dead-lettered with this message.</summary>
public class FatalJobException : Exception
{
    /// <summary>Creates the exception.</summary>
    public FatalJobException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public FatalJobException(string message) : base(message)
    {
    }

    /// <summary>Creates the exception with a message and the error that caused it.</summary>
    public FatalJobException(string message, Exception innerException) : base(message, innerException)
    {
    }
}
