namespace Inbox.Reliability.Storage;

/// <summary>
/// Ingest's first read in one round trip: implemented by storage packages where a round trip costs (PostgreSQL); otherwise
/// ingest reads the raw webhook (<see cref="IInboxStore.GetRawWebhookAsync"/>) and then its instance's captured webhooks.
/// </summary>
internal interface ICapturedBatchReads
{
    /// <summary>
    /// When raw webhook <paramref name="rawWebhookId"/> is still captured: the oldest <paramref name="limit"/> captured raw
    /// webhooks of its provider and instance, oldest first, with their bodies (as
    /// <see cref="IInboxStore.GetCapturedRawWebhooksAsync"/>); otherwise (ingested, failed or gone) an empty list.
    /// </summary>
    Task<IReadOnlyList<StoredRawWebhook>> GetCapturedBatchOfAsync(long rawWebhookId, int limit, CancellationToken cancellationToken = default);
}
