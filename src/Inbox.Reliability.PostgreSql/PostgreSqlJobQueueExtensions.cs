using System.Data;
using Inbox.Reliability.Jobs;
using Inbox.Reliability.PostgreSql;
using Inbox.Reliability.Storage;
using Npgsql;

namespace Inbox.Reliability;

/// <summary>Enqueue inside the host's own PostgreSQL transaction (transactional outbox).</summary>
public static class PostgreSqlJobQueueExtensions
{
    /// <summary>
    /// Enqueues a job inside <paramref name="transaction"/>: the job exists if and only if the transaction commits, so a
    /// business write and the job that follows it up can never get separated. Workers of every process are notified at
    /// commit (NOTIFY is transactional). Returns the job's id, which only means something once the transaction commits.
    /// </summary>
    /// <param name="queue">The job queue, configured with <c>UsePostgreSql</c>.</param>
    /// <param name="job">The job.</param>
    /// <param name="transaction">
    /// An open READ COMMITTED transaction on the database the storage uses. A keyed job locks its key until the transaction
    /// ends: keep such transactions short.
    /// </param>
    /// <param name="cancellationToken">Cancels the insert.</param>
    /// <exception cref="ArgumentException">The request is invalid, or the transaction is not READ COMMITTED.</exception>
    /// <exception cref="InvalidOperationException">The queue does not use PostgreSQL storage.</exception>
    public static async Task<EnqueueResult> EnqueueAsync(this IJobQueue queue, JobRequest job, NpgsqlTransaction transaction, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(job);
        var results = await queue.EnqueueBatchAsync([job], transaction, cancellationToken).ConfigureAwait(false);
        return results[0];
    }

    /// <summary>
    /// Enqueues jobs inside <paramref name="transaction"/>, in list order: they exist if and only if the transaction commits.
    /// See <see cref="EnqueueAsync(IJobQueue, JobRequest, NpgsqlTransaction, CancellationToken)"/>.
    /// </summary>
    /// <param name="queue">The job queue, configured with <c>UsePostgreSql</c>.</param>
    /// <param name="jobs">The jobs.</param>
    /// <param name="transaction">An open READ COMMITTED transaction on the database the storage uses.</param>
    /// <param name="cancellationToken">Cancels the insert.</param>
    /// <exception cref="ArgumentException">A request is invalid, or the transaction is not READ COMMITTED.</exception>
    /// <exception cref="InvalidOperationException">The queue does not use PostgreSQL storage.</exception>
    public static async Task<IReadOnlyList<EnqueueResult>> EnqueueBatchAsync(this IJobQueue queue, IReadOnlyList<JobRequest> jobs, NpgsqlTransaction transaction, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(queue);
        ArgumentNullException.ThrowIfNull(jobs);
        ArgumentNullException.ThrowIfNull(transaction);
        if (queue is not IJobQueueStorageAccess { Store: PostgreSqlJobStore store } access)
        {
            throw new InvalidOperationException("Enqueueing in an NpgsqlTransaction needs the PostgreSQL storage: configure it with services.AddInboxReliability().UsePostgreSql(...).");
        }

        var connection = transaction.Connection ?? throw new ArgumentException("The transaction is already committed or rolled back.", nameof(transaction));

        // Under REPEATABLE READ or SERIALIZABLE every statement sees the snapshot of the transaction's start, so the check
        // "does this key have a live job" could miss one committed meanwhile; per-key order needs READ COMMITTED.
        if (transaction.IsolationLevel is not (IsolationLevel.ReadCommitted or IsolationLevel.ReadUncommitted or IsolationLevel.Unspecified))
        {
            throw new ArgumentException($"Enqueueing in a transaction needs READ COMMITTED isolation (the transaction is {transaction.IsolationLevel}).", nameof(transaction));
        }

        var rows = access.Prepare(jobs);
        if (rows.Count == 0) return Array.Empty<EnqueueResult>();

        // The empty sender makes every process's listener wake its workers, this one's included: nothing can be signalled
        // in-process now, since the jobs only become visible when the host commits.
        return await store.InsertJobsAsync(connection, transaction, rows, "", cancellationToken).ConfigureAwait(false);
    }
}
