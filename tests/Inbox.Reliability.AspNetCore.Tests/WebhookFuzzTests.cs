using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Inbox.Reliability.Conformance;
using Inbox.Reliability.Storage;
using Inbox.Reliability.Testing;
using Xunit.Abstractions;

namespace Inbox.Reliability.AspNetCore.Tests;

/// <summary>
/// Mutated fixtures (byte flips, truncation, insertion, deletion, splices, JSON structure swaps, inflation past the limit)
/// sent concurrently through real HTTP with valid authenticity: no 5xx while storage is up, and every 2xx is on disk.
/// </summary>
[Collection(LoadCollection.Name)]
public sealed class WebhookFuzzTests(ITestOutputHelper output)
{
    // Fixed so a failure reproduces; INBOX_HTTP_FUZZ_SEED and INBOX_HTTP_FUZZ_ITERATIONS explore further.
    private static readonly int Seed = int.TryParse(Environment.GetEnvironmentVariable("INBOX_HTTP_FUZZ_SEED"), out var seed) ? seed : 20260315;
    private static readonly int Iterations = int.TryParse(Environment.GetEnvironmentVariable("INBOX_HTTP_FUZZ_ITERATIONS"), out var n) && n > 0 ? n : 10_000;
    private const int Concurrency = 16;
    private const int Limit = 16 * 1024;

    private enum Mutation { ByteFlip, Truncate, Insert, Delete, Splice, Structure, Inflate, Unchanged }

    private sealed record Case(int Index, string Provider, string Instance, byte[] Body, bool Chunked, string? ContentType, bool ValidAuth, Mutation Mutation);

    [Fact]
    public async Task Mutated_webhooks_sent_concurrently_never_get_a_5xx_and_every_2xx_is_stored_as_sent()
    {
        output.WriteLine($"HTTP fuzz seed: {Seed}, iterations: {Iterations}, concurrency: {Concurrency}");
        var cases = Generate(new Random(Seed)).ToList();
        await using var host = await WebhookHost.StartAsync(s => s.MaxBodyBytes = Limit);
        var answers = new ConcurrentDictionary<int, CaptureAnswer>();
        var clock = Stopwatch.StartNew();

        await Parallel.ForEachAsync(cases, new ParallelOptions { MaxDegreeOfParallelism = Concurrency }, async (c, _) =>
        {
            using var request = WebhookHost.SignedPost(c.Provider, c.Instance, c.Body, c.ContentType, c.Chunked);
            if (!c.ValidAuth) Forge(request);
            using var response = await host.Client.SendAsync(request);
            answers[c.Index] = await CaptureAnswer.ReadAsync(response);
        });
        output.WriteLine($"Sent {cases.Count} requests in {clock.Elapsed.TotalSeconds:F1} s");

        // Every answer is the one its input calls for; nothing is a 5xx.
        var statuses = new Dictionary<HttpStatusCode, int>();
        foreach (var c in cases)
        {
            var answer = answers[c.Index];
            statuses[answer.Status] = statuses.GetValueOrDefault(answer.Status) + 1;
            var expected = c.Body.Length == 0 ? HttpStatusCode.BadRequest
                : c.Body.Length > Limit ? HttpStatusCode.RequestEntityTooLarge
                : !c.ValidAuth ? HttpStatusCode.Unauthorized
                : HttpStatusCode.OK;
            Assert.True(expected == answer.Status,
                $"Seed {Seed}, case {c.Index} ({c.Mutation} for {c.Provider}, {c.Body.Length} bytes, chunked {c.Chunked}): expected {expected}, got {answer.Status} {answer.Raw}\nBody (base64): {Convert.ToBase64String(c.Body)}");
            if (answer.Status == HttpStatusCode.OK) Assert.True(answer.Id is not null && answer.State is "stored" or "duplicate", answer.Raw);
            else Assert.True(answer.Id is null && answer.Error is not null, answer.Raw);
        }

        output.WriteLine("Answers: " + string.Join(", ", statuses.OrderBy(s => s.Key).Select(s => $"{(int)s.Key} x{s.Value}")));
        output.WriteLine("Mutations: " + string.Join(", ", cases.GroupBy(c => c.Mutation).OrderBy(g => g.Key).Select(g => $"{g.Key} {g.Count()}")));

        // Every 2xx has its row: same id for the same bytes, the bytes as sent; and no row for anything else.
        var stored = cases.Where(c => answers[c.Index].Status == HttpStatusCode.OK).ToList();
        var byBody = stored.GroupBy(c => (c.Provider, c.Instance, Sha: Convert.ToHexString(SHA256.HashData(c.Body)))).ToList();
        foreach (var group in byBody)
        {
            var ids = group.Select(c => answers[c.Index].Id!.Value).Distinct().ToList();
            Assert.True(ids.Count == 1, $"the same body got several rows: {string.Join(", ", ids)}");
            var raw = await host.Store.GetRawWebhookAsync(ids[0]);
            Assert.NotNull(raw);
            Assert.Equal((group.Key.Provider, group.Key.Instance, group.Key.Sha), (raw.Provider, raw.Instance, Convert.ToHexString(raw.Sha256)));
            Assert.Equal(group.First().Body, raw.Body.ToArray());
            Assert.Equal(1, group.Count(c => answers[c.Index].State == "stored"));
        }

        var rows = await host.AllRawAsync();
        Assert.Equal(byBody.Count, rows.Count);
        Assert.Equal(stored.Count - byBody.Count, rows.Sum(r => r.Duplicates));
        Assert.True(stored.Count > Iterations / 2, "too few mutations were stored; the fuzzer is not exercising capture");
        output.WriteLine($"Rows: {rows.Count}, duplicates counted: {rows.Sum(r => r.Duplicates)}, checked in {clock.Elapsed.TotalSeconds:F1} s");

        Assert.DoesNotContain(host.Logs.OfInbox, l => l.Level >= Microsoft.Extensions.Logging.LogLevel.Error && l.EventId is 2002 or 2104);

        // And ingest digests all of it: every row ends ingested or failed with a reason, none stuck.
        await Eventually.TrueAsync(async () => (await host.Store.ListRawWebhooksAsync(new RawWebhookQuery { Status = RawWebhookStatus.Captured, Limit = 1 })).Count == 0,
            "every stored mutation to be ingested or failed", TimeSpan.FromSeconds(90));
        var failed = await host.Store.ListRawWebhooksAsync(new RawWebhookQuery { Status = RawWebhookStatus.Failed, Limit = int.MaxValue });
        Assert.All(failed, r => Assert.False(string.IsNullOrWhiteSpace(r.Error)));
        output.WriteLine($"Ingested: {rows.Count - failed.Count}, failed with a reason: {failed.Count}, in {clock.Elapsed.TotalSeconds:F1} s");
    }

    private static IEnumerable<Case> Generate(Random random)
    {
        var fixtures = Fixtures.All().Select(f => (Provider: Fixtures.Provider(f.Folder), Body: Fixtures.Read(f.Folder, f.Name))).ToArray();
        var corpus = fixtures.Select(f => f.Body).ToArray();
        string?[] contentTypes = ["application/json", "application/json; charset=utf-8", null, "text/plain", "application/x-www-form-urlencoded"];
        for (var i = 0; i < Iterations; i++)
        {
            var (provider, original) = fixtures[random.Next(fixtures.Length)];
            var mutation = (Mutation)random.Next(Enum.GetValues<Mutation>().Length);
            var body = Mutate(random, mutation, original, corpus);
            var instance = "fz-" + random.Next(4);
            yield return new Case(i, provider, instance, body, random.Next(4) == 0, contentTypes[random.Next(contentTypes.Length)], random.Next(25) != 0, mutation);
        }
    }

    /// <summary>Breaks the request's authenticity: a signature of other bytes, or a wrong secret.</summary>
    private static void Forge(HttpRequestMessage request)
    {
        if (request.Headers.Remove("X-Hub-Signature-256")) request.Headers.Add("X-Hub-Signature-256", "sha256=" + new string('a', 64));
        else if (request.Headers.Remove("X-Webhook-Hmac")) request.Headers.Add("X-Webhook-Hmac", new string('b', 128));
        else request.RequestUri = new Uri(request.RequestUri!.OriginalString.Split('?')[0] + "?secret=forged", UriKind.Relative);
    }

    /// <summary>The endpoint's own cases (inflated around the limit, unchanged); every other one comes from the shared mutator.</summary>
    private static byte[] Mutate(Random random, Mutation mutation, byte[] original, IReadOnlyList<byte[]> corpus)
    {
        switch (mutation)
        {
            case Mutation.Inflate:
                // Around the limit: just under, at, and past it.
                var size = Limit - 64 + random.Next(128) + (random.Next(4) == 0 ? Limit : 0);
                return [.. Enumerable.Repeat(original, size / original.Length + 1).SelectMany(b => b).Take(size)];
            case Mutation.Unchanged:
                return original;
            default:
                return PayloadMutator.Mutate(random, Enum.Parse<PayloadMutation>(mutation.ToString()), original, corpus);
        }
    }
}
