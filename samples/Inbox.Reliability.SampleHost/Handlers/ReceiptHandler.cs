using System.Net;
using Inbox.Reliability.Jobs;

namespace Inbox.Reliability.SampleHost.Handlers;

/// <summary>A WhatsApp status update for a message we sent.</summary>
/// <param name="Run">The demo run that enqueued it.</param>
/// <param name="MessageId">The WhatsApp message id (wamid) the receipt is about.</param>
/// <param name="Status">delivered, read, ...</param>
/// <param name="Simulate">Demo only: how the job should misbehave.</param>
public sealed record ReceiptPayload(string Run, string MessageId, string Status, Simulation? Simulate = null);

/// <summary>
/// Forwards a delivery/read receipt to a CRM. Receipts have no key, so they run in parallel (up to the queue's
/// Concurrency). Throwing an ordinary exception retries the job with backoff: the flaky receipts of the demo
/// fail their first attempt (the CRM answers 503) and succeed on the retry.
/// </summary>
public sealed class ReceiptHandler : IJobHandler
{
    /// <inheritdoc />
    public async Task HandleAsync(JobContext job, CancellationToken cancellationToken)
    {
        var receipt = job.GetPayload<ReceiptPayload>(SampleJson.Options) ?? throw new FatalJobException("The receipt payload is empty.");

        // The CRM call. A real handler passes job.IdempotencyKey along, so a re-run after a crash
        // (delivery is at-least-once) does not apply the same update twice.
        await Task.Delay(Random.Shared.Next(2, 10), cancellationToken);

        if (receipt.Simulate?.FailsOn(job.Attempt) == true)
        {
            throw new HttpRequestException(
                $"The CRM answered 503 Service Unavailable for the receipt of {receipt.MessageId} (simulated).", null, HttpStatusCode.ServiceUnavailable);
        }
    }
}
