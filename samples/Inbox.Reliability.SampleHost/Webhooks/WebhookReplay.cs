using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Inbox.Reliability.Capture;
using Inbox.Reliability.Events;
using Inbox.Reliability.Jobs;
using Inbox.Reliability.Storage;

namespace Inbox.Reliability.SampleHost.Webhooks;

/// <summary>
/// <c>--replay</c>: plays the providers against the running app over real HTTP. Every payload in <c>Fixtures/&lt;provider&gt;/</c>
/// is posted with that provider's authentication, then posted again (a provider retry: same bytes, answered
/// <c>duplicate</c>), and one payload goes with a forged signature (answered 401, not stored). Then it waits until every raw
/// webhook is ingested or failed, every event is dispatched and every media has ended (stored or failed, its media update
/// delivered when the event went with a placeholder), and prints per provider what was captured, deduplicated and
/// dispatched, then what became of the media.
/// </summary>
public sealed class WebhookReplay(Uri baseAddress, WebhookSettings settings, IInboxStore store, IJobQueue queue, IEnumerable<IWebhookProvider> adapters, DispatchedEvents dispatched)
{
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    private readonly Dictionary<string, Tally> _tallies = WebhookSettings.Providers.ToDictionary(p => p, _ => new Tally(), StringComparer.Ordinal);
    private readonly List<string> _unexpected = [];

    /// <summary>Runs the replay and returns the exit code: 0 when everything went as expected, 1 otherwise.</summary>
    public async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var fixtures = LoadFixtures();
        Console.WriteLine(string.Create(Invariant, $"Replaying {fixtures.Count} payloads from {Path.Combine(AppContext.BaseDirectory, "Fixtures")} to {baseAddress}"));
        Console.WriteLine();
        var clock = Stopwatch.StartNew();
        using var client = new HttpClient { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(30) };

        // 1. Every payload once, as its provider sends it: each one is stored.
        foreach (var fixture in fixtures) await PostAsync(client, fixture, forge: false, expected: "stored", cancellationToken);

        // 2. Every payload again (a provider retrying a webhook whose 200 it did not see): the same bytes are stored once.
        foreach (var fixture in fixtures) await PostAsync(client, fixture, forge: false, expected: "duplicate", cancellationToken);

        // 3. One payload with a wrong signature: refused with 401, nothing stored (the library logs it as a warning).
        var forged = fixtures.FirstOrDefault(f => f.Provider == "meta") ?? fixtures[0];
        await PostAsync(client, forged, forge: true, expected: null, cancellationToken);
        var posted = clock.Elapsed;

        // 4. Wait for the pipeline: every raw webhook ingested or failed, every event dispatched, every media ended and every
        //    media update delivered (or a timeout).
        var (raws, settled) = await WaitForPipelineAsync(cancellationToken);
        Console.WriteLine();
        await SummaryAsync(fixtures, raws, settled, posted, clock.Elapsed, cancellationToken);
        return _unexpected.Count == 0 ? 0 : 1;
    }

    private List<Fixture> LoadFixtures()
    {
        var root = Path.Combine(AppContext.BaseDirectory, "Fixtures");
        var fixtures = new List<Fixture>();
        foreach (var provider in WebhookSettings.Providers)
        {
            var folder = Path.Combine(root, provider);
            if (!Directory.Exists(folder)) continue;
            foreach (var file in Directory.GetFiles(folder, "*.json").Order(StringComparer.Ordinal))
            {
                fixtures.Add(new Fixture(provider, Path.GetFileNameWithoutExtension(file), File.ReadAllBytes(file)));
            }
        }

        if (fixtures.Count == 0) throw new InvalidOperationException($"No fixtures found under {root}.");
        return fixtures;
    }

    private async Task PostAsync(HttpClient client, Fixture fixture, bool forge, string? expected, CancellationToken cancellationToken)
    {
        using var request = Request(fixture, forge);
        var tally = _tallies[fixture.Provider];
        tally.Posted++;
        int code;
        string? state = null, error = null;
        try
        {
            using var response = await client.SendAsync(request, cancellationToken);
            code = (int)response.StatusCode;
            (state, error) = ReadAnswer(await response.Content.ReadAsStringAsync(cancellationToken));
        }
        catch (HttpRequestException ex)
        {
            code = 0;
            error = ex.Message;
        }

        var what = forge ? "forged" : expected == "duplicate" ? "retry" : "";
        Console.WriteLine(string.Create(Invariant, $"POST {fixture.Provider + "/" + settings.Instance,-15} {what,-6} {fixture.Name + ".json",-30} -> {code} {state ?? error}"));

        if (code == 200 && state == "stored") tally.Stored++;
        else if (code == 200 && state == "duplicate") tally.Duplicate++;
        else if (code == 401) tally.Unauthorized++;
        else tally.Other++;

        var ok = forge ? code == 401 : code == 200 && state == expected;
        if (!ok)
        {
            _unexpected.Add(string.Create(Invariant,
                $"{fixture.Provider}/{fixture.Name}{(forge ? " (forged)" : "")}: expected {(forge ? "401" : "200 " + expected)}, got {code} {state ?? error}"));
        }
    }

    /// <summary>A POST as the provider sends it: Meta and WAHA sign the body, the others put the secret in the URL.</summary>
    private HttpRequestMessage Request(Fixture fixture, bool forge)
    {
        var query = settings.QuerySecret(fixture.Provider) is { } secret
            ? "?secret=" + Uri.EscapeDataString(forge ? "not-the-secret" : secret)
            : "";
        var request = new HttpRequestMessage(HttpMethod.Post, $"{WebhookSettings.Prefix.TrimStart('/')}/{fixture.Provider}/{settings.Instance}{query}")
        {
            Content = new ByteArrayContent(fixture.Body),
        };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        if (fixture.Provider == "meta")
        {
            var key = forge ? "not-the-app-secret" : settings.MetaAppSecret ?? "";
            request.Headers.Add("X-Hub-Signature-256", "sha256=" + Hex(HMACSHA256.HashData(Encoding.UTF8.GetBytes(key), fixture.Body)));
        }
        else if (fixture.Provider == "waha")
        {
            var key = forge ? "not-the-hmac-key" : settings.WahaHmacKey ?? "";
            request.Headers.Add("X-Webhook-Hmac", Hex(HMACSHA512.HashData(Encoding.UTF8.GetBytes(key), fixture.Body)));
            request.Headers.Add("X-Webhook-Hmac-Algorithm", "sha512");
        }

        return request;
    }

    private static string Hex(byte[] hash) => Convert.ToHexString(hash).ToLowerInvariant();

    private static (string? State, string? Error) ReadAnswer(string body)
    {
        try
        {
            using var json = JsonDocument.Parse(body);
            var root = json.RootElement;
            return (root.TryGetProperty("status", out var s) ? s.GetString() : null, root.TryGetProperty("error", out var e) ? e.GetString() : null);
        }
        catch (JsonException)
        {
            return (null, "(not JSON)");
        }
    }

    /// <summary>Polls until nothing is left to do in the pipeline, or <see cref="Timeout"/> passes.</summary>
    private async Task<(IReadOnlyList<StoredRawWebhook> Raws, bool Settled)> WaitForPipelineAsync(CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var raws = await store.ListRawWebhooksAsync(new RawWebhookQuery { Limit = int.MaxValue }, cancellationToken);
            var stats = await queue.GetStatsAsync(cancellationToken);
            var busy = stats.Where(s => s.Queue is InboxQueues.Ingest or InboxQueues.Dispatch or InboxQueues.Media).Sum(s => s.Pending + s.Processing);
            var media = await store.CountMediaAsync(cancellationToken);
            var updates = dispatched.MediaUpdates;
            var settled = busy == 0
                && raws.All(r => r.Status is RawWebhookStatus.Ingested or RawWebhookStatus.Failed)
                && WebhookSettings.Providers.All(p => dispatched.Count(p) >= raws.Where(r => r.Provider == p).Sum(r => r.EventCount))
                && media.GetValueOrDefault(MediaStatus.Pending) == 0
                && dispatched.Placeholders.All(updates.ContainsKey);
            if (settled) return (raws, true);
            if (clock.Elapsed > Timeout)
            {
                _unexpected.Add(string.Create(Invariant,
                    $"the pipeline did not settle within {Timeout.TotalSeconds:0} s ({busy} ingest/dispatch/media jobs pending or running, {media.GetValueOrDefault(MediaStatus.Pending)} media pending)"));
                return (raws, false);
            }

            await Task.Delay(100, cancellationToken);
        }
    }

    private async Task SummaryAsync(List<Fixture> fixtures, IReadOnlyList<StoredRawWebhook> raws, bool settled, TimeSpan posted, TimeSpan elapsed, CancellationToken cancellationToken)
    {
        // Dispatch as the store records it, for every event the handler saw (an event once, however often it was delivered:
        // a media update is the same event again), and the events with media.
        var dispatchedInStore = new Dictionary<string, int>(StringComparer.Ordinal);
        var withMedia = new List<StoredInboxEvent>();
        foreach (var id in dispatched.EventIds.Order())
        {
            if (await store.GetEventAsync(id, cancellationToken) is not { } e) continue;
            if (e.DispatchStatus == EventDispatchStatus.Dispatched)
                dispatchedInStore[e.Event.Provider] = dispatchedInStore.GetValueOrDefault(e.Event.Provider) + 1;
            if (e.Media.Status != MediaStatus.None) withMedia.Add(e);
        }

        Console.WriteLine(string.Create(Invariant,
            $"Replay summary: {fixtures.Count} payloads, posted in {posted.TotalSeconds:0.0} s, pipeline settled{(settled ? "" : " NOT")} at {elapsed.TotalSeconds:0.0} s"));
        Console.WriteLine();
        Console.WriteLine($"{"provider",-10} {"posted",7} {"stored",7} {"duplicate",10} {"401",5} {"other",6} {"ingested",9} {"failed",7} {"events",7} {"deduped",8} {"dispatched",11}");
        var total = new int[10];
        foreach (var provider in WebhookSettings.Providers)
        {
            var t = _tallies[provider];
            var ofProvider = raws.Where(r => r.Provider == provider).ToList();
            var events = ofProvider.Sum(r => r.EventCount);
            // Events the adapter makes of these payloads, minus the ones stored: dropped at ingest by their dedupe key
            // (the same fact in different bytes, e.g. a status repeated in another payload).
            var parsed = fixtures.Where(f => f.Provider == provider).Sum(f => ParsedEvents(f));
            var row = new[]
            {
                t.Posted, t.Stored, t.Duplicate, t.Unauthorized, t.Other,
                ofProvider.Count(r => r.Status == RawWebhookStatus.Ingested), ofProvider.Count(r => r.Status == RawWebhookStatus.Failed),
                events, Math.Max(0, parsed - events), dispatchedInStore.GetValueOrDefault(provider),
            };
            for (var i = 0; i < row.Length; i++) total[i] += row[i];
            Row(provider, row);

            if (dispatchedInStore.GetValueOrDefault(provider) != events)
                _unexpected.Add(string.Create(Invariant, $"{provider}: {events} events stored, {dispatchedInStore.GetValueOrDefault(provider)} dispatched"));
        }

        Console.WriteLine(new string('-', 10 + 7 + 7 + 10 + 5 + 6 + 9 + 7 + 7 + 8 + 11 + 10));
        Row("all", total);
        Console.WriteLine();
        Console.WriteLine("posted: requests sent; stored / duplicate: answered 200 \"stored\" / \"duplicate\" (a retry of the same bytes, stored once);");
        Console.WriteLine("401: refused (bad signature or secret), not stored; ingested / failed: raw webhooks parsed into events / kept with the reason;");
        Console.WriteLine("events: stored events; deduped: events dropped at ingest as already stored; dispatched: delivered to PrintEventsHandler.");
        Console.WriteLine();

        var failed = raws.Where(r => r.Status == RawWebhookStatus.Failed).ToList();
        if (failed.Count == 0) Console.WriteLine("Failed raw webhooks: none.");
        foreach (var raw in failed)
        {
            Console.WriteLine(string.Create(Invariant, $"Failed raw webhook {raw.Id} ({raw.Provider}/{raw.Instance}): {raw.Error}"));
            _unexpected.Add(string.Create(Invariant, $"raw webhook {raw.Id} ({raw.Provider}) failed"));
        }

        if (dispatched.Deliveries != dispatched.EventIds.Count)
            Console.WriteLine(string.Create(Invariant, $"Redeliveries: {dispatched.Deliveries - dispatched.EventIds.Count} (at least once: a handler can see an event again)."));

        await MediaSummaryAsync(withMedia, cancellationToken);

        if (_unexpected.Count == 0)
        {
            Console.WriteLine("Result: OK: every payload stored once, every retry answered \"duplicate\", the forged one refused, every event dispatched,");
            Console.WriteLine("        every media ended (stored or failed), every placeholder followed by its media update.");
            return;
        }

        Console.WriteLine(string.Create(Invariant, $"Result: {_unexpected.Count} unexpected:"));
        foreach (var problem in _unexpected) Console.WriteLine("  " + problem);
    }

    /// <summary>
    /// What became of the media: counts by status (the store's, <see cref="IInboxStore.CountMediaAsync"/>), the events that
    /// went with a placeholder and their media updates, and one line per media. Failed media are expected here (the
    /// fixtures' URLs are fake); a media still pending, or a placeholder without its update, is not.
    /// </summary>
    private async Task MediaSummaryAsync(List<StoredInboxEvent> withMedia, CancellationToken cancellationToken)
    {
        var counts = await store.CountMediaAsync(cancellationToken);
        var stored = counts.GetValueOrDefault(MediaStatus.Stored);
        var failed = counts.GetValueOrDefault(MediaStatus.Failed);
        var pending = counts.GetValueOrDefault(MediaStatus.Pending);
        var placeholders = dispatched.Placeholders;
        var updates = dispatched.MediaUpdates;
        Console.WriteLine();
        Console.WriteLine(string.Create(Invariant,
            $"Media: {stored + failed + pending} events with media: {stored} stored, {failed} failed, {pending} pending; {placeholders.Count} dispatched with a placeholder (still pending when the chat's wait ran out), then {updates.Count} media updates (the same events again: not counted as dispatched above)."));
        foreach (var e in withMedia)
        {
            var how = placeholders.Contains(e.Id) ? updates.ContainsKey(e.Id) ? "placeholder + update" : "placeholder, NO update" : "with the event";
            var what = e.Media.Status switch
            {
                MediaStatus.Stored => string.Create(Invariant, $"stored {e.Media.Key} ({e.Media.Size:N0} bytes)"),
                MediaStatus.Failed => "failed: " + Shorten(e.Media.Error, 90),
                _ => e.Media.Status.ToString().ToLowerInvariant(),
            };
            Console.WriteLine(string.Create(Invariant, $"  event #{e.Id,-3} {e.Event.Provider,-9} {e.Event.MessageType,-8} {how,-22} {what}"));
        }

        if (failed > 0) Console.WriteLine("  (failed is expected without internet: the fixtures' media URLs are fake; Meta and W-API also need a token.)");
        if (pending > 0) _unexpected.Add(string.Create(Invariant, $"{pending} media still pending"));
        foreach (var id in placeholders.Where(id => !updates.ContainsKey(id)))
            _unexpected.Add(string.Create(Invariant, $"event {id} went with a placeholder and got no media update"));
        Console.WriteLine();
    }

    private static string Shorten(string? text, int max) =>
        string.IsNullOrEmpty(text) ? "-" : text.Length <= max ? text : string.Concat(text.AsSpan(0, max - 1), "…");

    private int ParsedEvents(Fixture fixture)
    {
        var adapter = adapters.FirstOrDefault(a => a.Name == fixture.Provider);
        if (adapter is null) return 0;
        try
        {
            return adapter.Parse(new WebhookRequest(fixture.Provider, settings.Instance, fixture.Body, DateTimeOffset.UtcNow)).Count;
        }
        catch (WebhookParseException)
        {
            return 0;
        }
    }

    private static void Row(string name, int[] v) => Console.WriteLine(string.Create(Invariant,
        $"{name,-10} {v[0],7} {v[1],7} {v[2],10} {v[3],5} {v[4],6} {v[5],9} {v[6],7} {v[7],7} {v[8],8} {v[9],11}"));

    private sealed record Fixture(string Provider, string Name, byte[] Body);

    private sealed class Tally
    {
        public int Posted { get; set; }

        public int Stored { get; set; }

        public int Duplicate { get; set; }

        public int Unauthorized { get; set; }

        public int Other { get; set; }
    }
}
