using System.Net;
using System.Security.Cryptography;
using System.Text;
using Inbox.Reliability.Capture;
using Inbox.Reliability.Conformance;
using Inbox.Reliability.Events;
using Microsoft.AspNetCore.Builder;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;

namespace Inbox.Reliability.AspNetCore.Tests;

/// <summary>The endpoint inside a host: the server's own limits, the host's conventions, and a storage outage.</summary>
public sealed class HostingTests
{
    private static byte[] ZApiText(string messageId) =>
        Encoding.UTF8.GetBytes($$$"""{"type":"ReceivedCallback","instanceId":"I1","messageId":"{{{messageId}}}","phone":"5511999990001","fromMe":false,"momment":1767290000000,"text":{"message":"m {{{messageId}}}"}}""");

    [Fact]
    public async Task The_endpoint_limit_holds_even_when_the_server_wide_limit_is_lower()
    {
        // Kestrel's server-wide limit is 1 KB here; the endpoint's own limit (256 KB) decides.
        await using var host = await WebhookHost.StartAsync(s => s.KestrelMaxRequestBodySize = 1024);
        var body = new byte[10 * 1024];
        RandomNumberGenerator.Fill(body);
        var declared = await CaptureAnswer.ReadAsync(await host.PostAsync("zapi", "inst-1", body));
        body[0] ^= 1;
        var chunked = await CaptureAnswer.ReadAsync(await host.PostAsync("zapi", "inst-1", body, chunked: true));
        Assert.Equal((HttpStatusCode.OK, "stored"), (declared.Status, declared.State));
        Assert.Equal((HttpStatusCode.OK, "stored"), (chunked.Status, chunked.State));
        Assert.Equal(body, (await host.Store.GetRawWebhookAsync(chunked.Id!.Value))!.Body.ToArray());
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, (await host.PostAsync("zapi", "inst-1", new byte[host.Settings.MaxBodyBytes + 1], chunked: true)).StatusCode);
    }

    [Fact]
    public async Task Conventions_added_by_the_host_apply_to_both_endpoints()
    {
        await using var host = await WebhookHost.StartAsync(s => s.Conventions = b => b.RequireHost("inbox.example"));
        var body = ZApiText("H1");
        using (var wrongHost = await host.PostAsync("zapi", "inst-1", body))
        {
            Assert.Equal(HttpStatusCode.NotFound, wrongHost.StatusCode);
        }

        using (var handshake = await host.Client.GetAsync($"/webhooks/meta/phone-1?hub.mode=subscribe&hub.challenge=7&hub.verify_token={WebhookHost.MetaVerifyToken}"))
        {
            Assert.Equal(HttpStatusCode.NotFound, handshake.StatusCode);
        }

        Assert.Empty(await host.AllRawAsync());
        using var request = WebhookHost.SignedPost("zapi", "inst-1", body);
        request.Headers.Host = "inbox.example";
        using var rightHost = await host.Client.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, rightHost.StatusCode);
        Assert.Single(await host.AllRawAsync());
    }

    [Fact]
    public async Task While_storage_is_down_webhooks_get_503_with_retry_after_and_the_providers_retries_are_stored_once()
    {
        await using var host = await WebhookHost.StartAsync(s => s.SqliteBusyTimeout = TimeSpan.FromMilliseconds(200));
        var bodies = Enumerable.Range(1, 8).Select(i => (Provider: i % 2 == 0 ? "meta" : "zapi", Body: i % 2 == 0 ? MetaText($"wamid.DOWN{i}") : ZApiText($"DOWN-{i}"))).ToList();

        // Another connection holds the database: every write fails after the busy timeout.
        await using (var locker = new SqliteConnection(host.ConnectionString))
        {
            await locker.OpenAsync();
            using (var begin = locker.CreateCommand())
            {
                begin.CommandText = "BEGIN EXCLUSIVE";
                await begin.ExecuteNonQueryAsync();
            }

            var down = await Task.WhenAll(bodies.Select(async b => await CaptureAnswer.ReadAsync(await host.PostAsync(b.Provider, "inst-1", b.Body))));
            foreach (var answer in down)
            {
                Assert.Equal(HttpStatusCode.ServiceUnavailable, answer.Status);
                Assert.Equal("7", answer.RetryAfter);
                Assert.Null(answer.Id);
                Assert.False(string.IsNullOrWhiteSpace(answer.Error));
            }

            using var rollback = locker.CreateCommand();
            rollback.CommandText = "ROLLBACK";
            await rollback.ExecuteNonQueryAsync();
        }

        Assert.Empty(await host.AllRawAsync());
        Assert.Contains(host.Logs.OfInbox, l => l.EventId == 2002); // capture's "storage unavailable", not an endpoint failure
        Assert.DoesNotContain(host.Logs.OfInbox, l => l.EventId == 2104);

        // The providers retry the same bodies: each stored once, then a second retry is a duplicate.
        var retried = await Task.WhenAll(bodies.Select(async b => await CaptureAnswer.ReadAsync(await host.PostAsync(b.Provider, "inst-1", b.Body))));
        Assert.All(retried, a => Assert.Equal((HttpStatusCode.OK, "stored"), (a.Status, a.State)));
        var rows = await host.AllRawAsync();
        Assert.Equal(bodies.Count, rows.Count);
        Assert.Equal(bodies.Select(b => Convert.ToHexString(SHA256.HashData(b.Body))).Order(), rows.Select(r => Convert.ToHexString(r.Sha256)).Order());
        Assert.All(rows, r => Assert.Equal(0, r.Duplicates));
        Assert.Equal(retried.Select(a => a.Id!.Value).Order(), rows.Select(r => r.Id).Order());

        var again = await CaptureAnswer.ReadAsync(await host.PostAsync(bodies[0].Provider, "inst-1", bodies[0].Body));
        Assert.Equal(("duplicate", retried[0].Id), (again.State, again.Id));

        await Eventually.TrueAsync(() => host.Recorder.Seen.Count >= bodies.Count, "every message to reach the handler after the outage");
        Assert.Equal(bodies.Count, host.Recorder.Seen.Select(s => s.Event.DedupeKey).Distinct().Count());
        Assert.Equal(bodies.Count, host.Recorder.Seen.Count);
    }

    [Fact]
    public async Task An_unexpected_failure_behind_the_endpoint_is_answered_503_with_retry_after_never_500()
    {
        await using var host = await WebhookHost.StartAsync(s => s.Services = services => services.AddSingleton<IInboxCapture, ThrowingCapture>());
        foreach (var chunked in new[] { false, true })
        {
            var answer = await CaptureAnswer.ReadAsync(await host.PostAsync("zapi", "inst-1", ZApiText("X1"), chunked: chunked));
            Assert.Equal((HttpStatusCode.ServiceUnavailable, "7"), (answer.Status, answer.RetryAfter));
            Assert.DoesNotContain("boom", answer.Raw, StringComparison.Ordinal);
        }

        using var handshake = await host.Client.GetAsync($"/webhooks/meta/phone-1?hub.mode=subscribe&hub.challenge=7&hub.verify_token={WebhookHost.MetaVerifyToken}");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, handshake.StatusCode);
        Assert.Equal(2, host.Logs.OfInbox.Count(l => l.EventId == 2104 && l.Exception!.Contains("boom", StringComparison.Ordinal)));
        Assert.Single(host.Logs.OfInbox, l => l.EventId == 2107);
    }

    private sealed class ThrowingCapture : IInboxCapture
    {
        public Task<CaptureResult> CaptureAsync(string provider, string instance, ReadOnlyMemory<byte> body, IReadOnlyDictionary<string, string> headers, CancellationToken cancellationToken = default) =>
            throw new InvalidOperationException("boom");

        public Task<CaptureResult> CaptureAsync(WebhookRequest request, CancellationToken cancellationToken = default) => throw new InvalidOperationException("boom");

        public WebhookChallengeResult AnswerChallenge(WebhookChallengeRequest request) => throw new InvalidOperationException("boom");

        public Task<int> ReprocessRawAsync(Inbox.Reliability.Storage.RawWebhookQuery filter, CancellationToken cancellationToken = default) => throw new InvalidOperationException("boom");
    }

    private static byte[] MetaText(string id) =>
        Encoding.UTF8.GetBytes($$$"""{"object":"whatsapp_business_account","entry":[{"id":"WABA","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"phone_number_id":"PN1"},"messages":[{"from":"5511888880000","id":"{{{id}}}","timestamp":"1767290000","type":"text","text":{"body":"x"}}]}}]}]}""");
}
