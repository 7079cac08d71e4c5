using System.Security.Cryptography;
using Inbox.Reliability.Diagnostics;
using Inbox.Reliability.Events;
using Inbox.Reliability.Jobs;
using Inbox.Reliability.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Inbox.Reliability.Capture;

internal sealed class InboxCapture : IInboxCapture
{
    private static readonly HashSet<string> NeverKept = new(StringComparer.OrdinalIgnoreCase)
    {
        "Authorization", "Proxy-Authorization", "Cookie", "apikey", "Client-Token", "X-Api-Key", "X-Webhook-Secret",
    };

    private readonly IInboxStore _store;
    private readonly Dictionary<string, IWebhookProvider> _providers;
    private readonly InboxPipelineOptions _options;
    private readonly TimeProvider _time;
    private readonly QueueSignals _signals;
    private readonly ILogger _logger;
    private readonly HashSet<string> _warnedUnauthenticated = new(StringComparer.Ordinal);

    public InboxCapture(IInboxStore store, IEnumerable<IWebhookProvider> providers, IOptions<InboxPipelineOptions> options, TimeProvider time, QueueSignals signals, ILogger<InboxCapture> logger)
    {
        _store = store;
        _providers = new Dictionary<string, IWebhookProvider>(StringComparer.OrdinalIgnoreCase);
        foreach (var provider in providers) _providers.TryAdd(provider.Name, provider);
        _options = options.Value;
        _time = time;
        _signals = signals;
        _logger = logger;
    }

    public Task<CaptureResult> CaptureAsync(string provider, string instance, ReadOnlyMemory<byte> body, IReadOnlyDictionary<string, string> headers, CancellationToken cancellationToken = default)
    {
        if (!IsValidName(provider)) return Task.FromResult(new CaptureResult(CaptureStatus.UnknownProvider, Reason: "Unknown provider."));
        if (!IsValidName(instance)) return Task.FromResult(InvalidInstance());
        return CaptureAsync(new WebhookRequest(provider, instance, body, _time.GetUtcNow()) { Headers = headers }, cancellationToken);
    }

    public async Task<CaptureResult> CaptureAsync(WebhookRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var tags = new KeyValuePair<string, object?>("provider", request.Provider);
        if (!_providers.TryGetValue(request.Provider, out var adapter))
        {
            return Rejected(new CaptureResult(CaptureStatus.UnknownProvider, Reason: $"No webhook provider named \"{Truncate(request.Provider)}\" is registered."), tags);
        }

        if (!IsValidName(request.Instance)) return Rejected(InvalidInstance(), tags);
        if (request.Body.Length == 0) return Rejected(new CaptureResult(CaptureStatus.EmptyBody, Reason: "The body is empty."), tags);
        if (request.Body.Length > _options.MaxBodyBytes)
        {
            return Rejected(new CaptureResult(CaptureStatus.PayloadTooLarge, Reason: $"The body is {request.Body.Length} bytes; the limit is {_options.MaxBodyBytes}."), tags);
        }

        // Authenticity before anything is stored.
        var auth = adapter.Authenticate(request);
        if (!auth.IsAllowed)
        {
            CaptureLog.Unauthorized(_logger, adapter.Name, request.Instance, auth.Status, auth.Reason);
            return Rejected(new CaptureResult(CaptureStatus.Unauthorized, Reason: auth.Reason), tags);
        }

        if (auth.Status == WebhookAuthStatus.NotConfigured) WarnOnce(adapter.Name, auth.Reason);

        var sha = SHA256.HashData(request.Body.Span);
        var raw = new RawWebhook(adapter.Name, request.Instance, request.ReceivedAt, sha, request.Body, Header(request.Headers, "Content-Type"), KeptHeaders(request.Headers));
        var ingest = IngestJob(request.ReceivedAt);
        CaptureOutcome outcome;
        try
        {
            outcome = await _store.CaptureAsync(raw, ingest, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception ex)
        {
            CaptureLog.StorageUnavailable(_logger, adapter.Name, request.Instance, ex);
            InboxTelemetry.WebhooksFailed.Add(1, tags);
            return new CaptureResult(CaptureStatus.StorageUnavailable, Reason: "Storage is unavailable; retry later.");
        }

        if (outcome.Duplicate)
        {
            InboxTelemetry.WebhookDuplicates.Add(1, tags);
            return new CaptureResult(CaptureStatus.Duplicate, outcome.RawWebhookId);
        }

        InboxTelemetry.WebhooksCaptured.Add(1, tags);
        if (!outcome.IngestHandedOver) _signals.Set(InboxQueues.Ingest);
        return new CaptureResult(CaptureStatus.Stored, outcome.RawWebhookId);
    }

    public async Task<int> ReprocessRawAsync(RawWebhookQuery filter, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(filter);
        var now = _time.GetUtcNow();
        var count = await _store.ReprocessRawWebhooksAsync(filter, _ => IngestJob(now), cancellationToken).ConfigureAwait(false);
        if (count > 0) _signals.Set(InboxQueues.Ingest);
        return count;
    }

    /// <summary>
    /// One ingest job per raw webhook, without an ordering key: an ingest job parses every still-captured webhook of its
    /// instance, oldest first, in batches, so arrival order holds while jobs run in parallel (see IngestHandler).
    /// </summary>
    private static NewJob IngestJob(DateTimeOffset now) => new(InboxQueues.Ingest, "", null, now, null, 10, 0);

    public WebhookChallengeResult AnswerChallenge(WebhookChallengeRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (!IsValidName(request.Instance)) return WebhookChallengeResult.Rejected("The instance name must be 1 to 128 letters, digits, '-', '_' or '.'.");
        return _providers.TryGetValue(request.Provider, out var adapter) && adapter is IWebhookChallengeHandler handler
            ? handler.AnswerChallenge(request)
            : WebhookChallengeResult.NotAChallenge("This provider has no subscription handshake.");
    }

    private static CaptureResult Rejected(CaptureResult result, KeyValuePair<string, object?> tags)
    {
        InboxTelemetry.WebhooksRejected.Add(1, tags, new KeyValuePair<string, object?>("reason", result.Status.ToString()));
        return result;
    }

    private static CaptureResult InvalidInstance() =>
        new(CaptureStatus.InvalidInstance, Reason: "The instance name must be 1 to 128 letters, digits, '-', '_' or '.'.");

    /// <summary>Provider and instance names reach storage keys and media paths: letters, digits, '-', '_' and '.' only.</summary>
    internal static bool IsValidName(string? name)
    {
        if (string.IsNullOrEmpty(name) || name.Length > 128 || name is "." or "..") return false;
        foreach (var c in name)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.')) return false;
        }

        return true;
    }

    private IReadOnlyDictionary<string, string> KeptHeaders(IReadOnlyDictionary<string, string> headers)
    {
        var kept = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var (name, value) in headers)
        {
            if (_options.KeptHeaders.Contains(name) && !NeverKept.Contains(name) && value.Length <= 1024) kept[name] = value;
        }

        return kept;
    }

    private static string? Header(IReadOnlyDictionary<string, string> headers, string name) =>
        headers.TryGetValue(name, out var value) ? value : headers.FirstOrDefault(h => string.Equals(h.Key, name, StringComparison.OrdinalIgnoreCase)).Value;

    private static string Truncate(string value) => value.Length <= 40 ? value : value[..40] + "...";

    private void WarnOnce(string provider, string reason)
    {
        lock (_warnedUnauthenticated)
        {
            if (!_warnedUnauthenticated.Add(provider)) return;
        }

        CaptureLog.NotAuthenticated(_logger, provider, reason);
    }
}
