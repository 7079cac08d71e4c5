using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using Inbox.Reliability.Conformance;
using Inbox.Reliability.Storage;
using Microsoft.AspNetCore.Builder;

namespace Inbox.Reliability.AspNetCore.Tests;

/// <summary>The capture endpoint's answers to bad, odd and abusive input, each checked against what storage holds.</summary>
public sealed class WebhookEndpointTests : IAsyncLifetime
{
    private WebhookHost _host = null!;

    private int Limit => _host.Settings.MaxBodyBytes;

    public async Task InitializeAsync() => _host = await WebhookHost.StartAsync();

    public async Task DisposeAsync() => await _host.DisposeAsync();

    private static byte[] ZApiText(string messageId, string chat = "5511999990001", string text = "hello") =>
        Encoding.UTF8.GetBytes($$$"""{"type":"ReceivedCallback","instanceId":"I1","messageId":"{{{messageId}}}","phone":"{{{chat}}}","fromMe":false,"momment":1767290000000,"status":"RECEIVED","senderName":"Ana","isGroup":false,"text":{"message":"{{{text}}}"}}""");

    private async Task<CaptureAnswer> Post(string provider, string instance, byte[] body, string? contentType = "application/json", bool chunked = false)
    {
        using var response = await _host.PostAsync(provider, instance, body, contentType, chunked);
        return await CaptureAnswer.ReadAsync(response);
    }

    private static void AssertRefused(CaptureAnswer answer, HttpStatusCode status)
    {
        Assert.Equal(status, answer.Status);
        Assert.Equal("application/json", answer.ContentType);
        Assert.Null(answer.Id);
        Assert.Null(answer.State);
        Assert.False(string.IsNullOrWhiteSpace(answer.Error));
        Assert.DoesNotContain(WebhookHost.Secrets, s => answer.Raw.Contains(s, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Malformed_json_is_stored_as_sent_then_marked_failed_with_a_reason()
    {
        var zapi = Encoding.UTF8.GetBytes("{\"type\":\"ReceivedCallback\",\"messageId\":");
        var meta = Encoding.UTF8.GetBytes("{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[}");
        foreach (var (provider, body) in new[] { ("zapi", zapi), ("meta", meta) })
        {
            var answer = await Post(provider, "inst-1", body);
            Assert.Equal((HttpStatusCode.OK, "stored"), (answer.Status, answer.State)); // capture does not parse: durable first
            Assert.Equal(body, (await _host.Store.GetRawWebhookAsync(answer.Id!.Value))!.Body.ToArray());
            await _host.WaitForRawStatusAsync(answer.Id.Value, RawWebhookStatus.Failed);
            var raw = (await _host.Store.GetRawWebhookAsync(answer.Id.Value))!;
            Assert.False(string.IsNullOrWhiteSpace(raw.Error));
            Assert.Equal(0, raw.EventCount);
        }

        Assert.Empty(_host.Recorder.Seen);
    }

    [Fact]
    public async Task Invalid_utf8_is_stored_byte_for_byte_then_marked_failed()
    {
        byte[] body = [(byte)'{', (byte)'"', 0xFF, 0xFE, 0xC3, 0x28, 0xED, 0xA0, 0x80, (byte)'"', (byte)':', 0x00, 0xF8, (byte)'}'];
        var answer = await Post("zapi", "inst-1", body, contentType: "application/json; charset=utf-8");
        Assert.Equal((HttpStatusCode.OK, "stored"), (answer.Status, answer.State));
        var raw = (await _host.Store.GetRawWebhookAsync(answer.Id!.Value))!;
        Assert.Equal(body, raw.Body.ToArray());
        Assert.Equal(SHA256.HashData(body), raw.Sha256);
        await _host.WaitForRawStatusAsync(raw.Id, RawWebhookStatus.Failed);
        Assert.False(string.IsNullOrWhiteSpace((await _host.Store.GetRawWebhookAsync(raw.Id))!.Error));
        Assert.Empty(_host.Recorder.Seen);
    }

    [Fact]
    public async Task An_empty_body_is_refused_with_400_with_or_without_content_length()
    {
        AssertRefused(await Post("zapi", "inst-1", []), HttpStatusCode.BadRequest);
        AssertRefused(await Post("zapi", "inst-1", [], chunked: true), HttpStatusCode.BadRequest);
        AssertRefused(await Post("meta", "inst-1", [], contentType: null), HttpStatusCode.BadRequest);
        Assert.Empty(await _host.AllRawAsync());
    }

    [Fact]
    public async Task A_body_over_the_limit_is_refused_with_413_and_one_at_the_limit_is_stored()
    {
        var atLimit = new byte[Limit];
        Random.Shared.NextBytes(atLimit);
        var overLimit = new byte[Limit + 1];
        Random.Shared.NextBytes(overLimit);

        AssertRefused(await Post("zapi", "inst-1", overLimit), HttpStatusCode.RequestEntityTooLarge);
        AssertRefused(await Post("zapi", "inst-1", overLimit, chunked: true), HttpStatusCode.RequestEntityTooLarge);
        AssertRefused(await Post("meta", "inst-1", new byte[Limit * 2], chunked: true), HttpStatusCode.RequestEntityTooLarge);

        var declared = await Post("zapi", "inst-1", atLimit);
        atLimit[0] ^= 1;
        var chunked = await Post("zapi", "inst-1", atLimit, chunked: true);
        Assert.Equal((HttpStatusCode.OK, "stored"), (declared.Status, declared.State));
        Assert.Equal((HttpStatusCode.OK, "stored"), (chunked.Status, chunked.State));
        Assert.Equal(atLimit, (await _host.Store.GetRawWebhookAsync(chunked.Id!.Value))!.Body.ToArray());
        Assert.Equal([chunked.Id.Value, declared.Id!.Value], (await _host.AllRawAsync()).Select(r => r.Id));
    }

    [Fact]
    public async Task An_oversized_content_length_is_answered_413_before_any_of_the_body_is_sent()
    {
        await using var client = await RawHttp.ConnectAsync(_host.Port);
        await client.SendAsync($"POST /webhooks/zapi/inst-1?secret={WebhookHost.ZApiSecret} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {Limit + 1}\r\n\r\n");
        var (status, head) = await client.ReadHeadAsync(TimeSpan.FromSeconds(20)); // not one body byte sent
        Assert.Equal(413, status);
        Assert.Contains("Connection: close", head, StringComparison.OrdinalIgnoreCase);
        Assert.Empty(await _host.AllRawAsync());
    }

    [Fact]
    public async Task An_oversized_chunked_body_is_answered_413_as_soon_as_it_passes_the_limit_without_reading_the_rest()
    {
        await using var client = await RawHttp.ConnectAsync(_host.Port);
        await client.SendAsync($"POST /webhooks/zapi/inst-1?secret={WebhookHost.ZApiSecret} HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n");
        var chunk = Encoding.ASCII.GetBytes(new string('x', 8 * 1024));
        for (var sent = 0; sent <= Limit; sent += chunk.Length) await client.SendChunkAsync(chunk);

        // The body never ends (no last chunk): the answer comes anyway, and the connection is not kept.
        var (status, head) = await client.ReadHeadAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(413, status);
        Assert.Contains("Connection: close", head, StringComparison.OrdinalIgnoreCase);
        Assert.Empty(await _host.AllRawAsync());
    }

    [Fact]
    public async Task A_request_with_both_content_length_and_chunked_framing_is_never_stored_truncated()
    {
        var body = ZApiText("BOTH-1");
        await using var client = await RawHttp.ConnectAsync(_host.Port);
        await client.SendAsync($"POST /webhooks/zapi/inst-1?secret={WebhookHost.ZApiSecret} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n");
        await client.SendChunkAsync(body);
        await client.SendAsync("0\r\n\r\n");
        var (status, _) = await client.ReadHeadAsync(TimeSpan.FromSeconds(20));

        // Chunked framing wins (RFC 9112 6.3) or the request is refused; a 10-byte prefix is never what gets stored.
        var rows = await _host.AllRawAsync();
        if (status == 200) Assert.Equal(body, (await _host.Store.GetRawWebhookAsync(Assert.Single(rows).Id))!.Body.ToArray());
        else Assert.Empty(rows);
        Assert.InRange(status, 200, 499);
    }

    [Fact]
    public async Task A_client_that_goes_away_mid_body_gets_nothing_stored()
    {
        var body = ZApiText("HALF-1");
        var head = $"POST /webhooks/zapi/inst-1?secret={WebhookHost.ZApiSecret} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n";

        // Content-Length promised, half sent, then closed; the same with a reset; then a chunked body cut mid-chunk.
        await using (var closed = await RawHttp.ConnectAsync(_host.Port))
        {
            await closed.SendAsync(head + $"Content-Length: {body.Length}\r\n\r\n");
            await closed.SendAsync(body[..(body.Length / 2)]);
        }

        await using (var reset = await RawHttp.ConnectAsync(_host.Port))
        {
            await reset.SendAsync(head + $"Content-Length: {body.Length}\r\n\r\n");
            await reset.SendAsync(body[..(body.Length / 2)]);
            reset.Abort();
        }

        await using (var chunked = await RawHttp.ConnectAsync(_host.Port))
        {
            await chunked.SendAsync(head + "Transfer-Encoding: chunked\r\n\r\n");
            await chunked.SendAsync([.. Encoding.ASCII.GetBytes(body.Length.ToString("x") + "\r\n"), .. body[..(body.Length / 2)]]);
        }

        // Kestrel is done with all three connections (so with their requests); the endpoint gave up on the ones that
        // reached it (a reset can arrive before the request does), and nothing was stored.
        await Eventually.TrueAsync(() => _host.Logs.Lines.Count(l => l.Category == "Microsoft.AspNetCore.Server.Kestrel.Connections" && l.EventId == 2) >= 3,
            "Kestrel to close the three connections");
        Assert.InRange(_host.Logs.OfInbox.Count(l => l.EventId is 2101 or 2103), 2, 3);
        Assert.Empty(await _host.AllRawAsync());

        // The full body afterwards is stored once: nothing half-written stood in its way.
        var answer = await Post("zapi", "inst-1", body);
        Assert.Equal((HttpStatusCode.OK, "stored"), (answer.Status, answer.State));
        Assert.Single(await _host.AllRawAsync());
    }

    [Fact]
    public async Task Unknown_provider_is_404_and_bad_instance_names_are_400_with_nothing_stored()
    {
        using (var response = await _host.Client.PostAsync("/webhooks/telegram/inst-1", new ByteArrayContent(ZApiText("U1"))))
        {
            AssertRefused(await CaptureAnswer.ReadAsync(response), HttpStatusCode.NotFound);
        }

        foreach (var instance in new[] { "bad%20name", "a$b", new string('x', 129), "%20", "caf%C3%A9", "a%2Fb", "semi;colon" })
        {
            var answer = await Post("zapi", instance, ZApiText("B1"));
            AssertRefused(answer, HttpStatusCode.BadRequest);
        }

        Assert.Empty(await _host.AllRawAsync());
    }

    [Fact]
    public async Task The_same_body_twice_is_stored_once_and_counted_and_its_message_reaches_the_handler_once()
    {
        var body = ZApiText("DUP-1");
        var first = await Post("zapi", "inst-1", body);
        var second = await Post("zapi", "inst-1", body);
        Assert.Equal((HttpStatusCode.OK, "stored"), (first.Status, first.State));
        Assert.Equal((HttpStatusCode.OK, "duplicate", first.Id), (second.Status, second.State, second.Id));
        var row = Assert.Single(await _host.AllRawAsync());
        Assert.Equal((first.Id!.Value, 1), (row.Id, row.Duplicates));

        // The same message in another body (a provider that re-serializes on retry): a second row, the event dedupes.
        var reformatted = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(body).Replace(",\"fromMe\"", ", \"fromMe\"", StringComparison.Ordinal));
        var third = await Post("zapi", "inst-1", reformatted);
        Assert.Equal((HttpStatusCode.OK, "stored"), (third.Status, third.State));
        Assert.NotEqual(first.Id, third.Id);

        await _host.WaitForRawStatusAsync(first.Id!.Value, RawWebhookStatus.Ingested);
        await _host.WaitForRawStatusAsync(third.Id!.Value, RawWebhookStatus.Ingested);
        await Eventually.TrueAsync(() => _host.Seen("zapi", "inst-1").Count > 0, "the message to reach the handler");
        var seen = Assert.Single(_host.Seen("zapi", "inst-1"));
        Assert.Equal("DUP-1", seen.Event.ExternalId);
        await Eventually.TrueAsync(async () => (await _host.Store.GetEventAsync(seen.EventId))?.DispatchStatus == EventDispatchStatus.Dispatched, "the event to be dispatched");
        Assert.Single(_host.Seen("zapi", "inst-1"));
        Assert.Equal(0, (await _host.Store.GetRawWebhookAsync(third.Id.Value))!.EventCount);
    }

    [Fact]
    public async Task Meta_handshake_echoes_the_challenge_for_the_right_token_and_refuses_a_wrong_one()
    {
        var url = "/webhooks/meta/phone-1?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=";
        using (var ok = await _host.Client.GetAsync(url + Uri.EscapeDataString(WebhookHost.MetaVerifyToken)))
        {
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
            Assert.Equal("text/plain", ok.Content.Headers.ContentType?.MediaType);
            Assert.Equal("1158201444", await ok.Content.ReadAsStringAsync());
        }

        using (var wrong = await _host.Client.GetAsync(url + "not-the-token"))
        {
            AssertRefused(await CaptureAnswer.ReadAsync(wrong), HttpStatusCode.Forbidden);
        }

        using (var missing = await _host.Client.GetAsync("/webhooks/meta/phone-1?hub.mode=subscribe&hub.challenge=1"))
        {
            AssertRefused(await CaptureAnswer.ReadAsync(missing), HttpStatusCode.Forbidden);
        }

        using (var markup = await _host.Client.GetAsync("/webhooks/meta/phone-1?hub.mode=subscribe&hub.challenge=%3Cscript%3E&hub.verify_token=" + WebhookHost.MetaVerifyToken))
        {
            AssertRefused(await CaptureAnswer.ReadAsync(markup), HttpStatusCode.Forbidden); // never reflected
        }

        using (var notAHandshake = await _host.Client.GetAsync("/webhooks/meta/phone-1"))
        {
            AssertRefused(await CaptureAnswer.ReadAsync(notAHandshake), HttpStatusCode.BadRequest);
        }

        using (var noHandshake = await _host.Client.GetAsync("/webhooks/zapi/inst-1?hub.mode=subscribe&hub.challenge=1&hub.verify_token=x"))
        {
            AssertRefused(await CaptureAnswer.ReadAsync(noHandshake), HttpStatusCode.MethodNotAllowed);
            Assert.Contains("POST", noHandshake.Content.Headers.Allow);
        }

        using (var unknown = await _host.Client.GetAsync("/webhooks/telegram/inst-1?hub.mode=subscribe&hub.challenge=1&hub.verify_token=x"))
        {
            AssertRefused(await CaptureAnswer.ReadAsync(unknown), HttpStatusCode.NotFound);
        }

        Assert.DoesNotContain(_host.Logs.OfInbox, l => l.Message.Contains(WebhookHost.MetaVerifyToken, StringComparison.Ordinal));
        Assert.Empty(await _host.AllRawAsync());
    }

    [Fact]
    public async Task Odd_requests_never_get_a_5xx_and_every_2xx_is_stored_as_sent()
    {
        var sent = new List<(CaptureAnswer Answer, byte[] Body)>();
        async Task<CaptureAnswer> Send(HttpRequestMessage request, byte[] body)
        {
            using (request)
            {
                using var response = await _host.Client.SendAsync(request);
                var answer = await CaptureAnswer.ReadAsync(response);
                sent.Add((answer, body));
                Assert.True((int)answer.Status < 500, $"{request.RequestUri}: {answer.Status} {answer.Raw}");
                return answer;
            }
        }

        HttpRequestMessage Z(byte[] body, string query = "?secret=" + WebhookHost.ZApiSecret) =>
            new(HttpMethod.Post, "/webhooks/zapi/inst-1" + query) { Content = new ByteArrayContent(body) };

        // No Content-Type, a made-up one, a form: all bytes, stored as they came.
        Assert.Equal(HttpStatusCode.OK, (await Send(Z(ZApiText("O1")), ZApiText("O1"))).Status);
        var odd = Z(ZApiText("O2"));
        odd.Content!.Headers.TryAddWithoutValidation("Content-Type", "???; charset=nope");
        Assert.Equal(HttpStatusCode.OK, (await Send(odd, ZApiText("O2"))).Status);
        var form = Z("a=1&b=%FF"u8.ToArray());
        form.Content!.Headers.ContentType = new MediaTypeHeaderValue("application/x-www-form-urlencoded");
        Assert.Equal(HttpStatusCode.OK, (await Send(form, "a=1&b=%FF"u8.ToArray())).Status);

        // Big and repeated headers, Expect: 100-continue, NUL bytes in the body, the secret in the header.
        var big = Z(ZApiText("O3"));
        big.Headers.Add("X-Filler", new string('a', 20_000));
        for (var i = 0; i < 50; i++) big.Headers.Add("X-Many-" + i, "v" + i);
        Assert.Equal(HttpStatusCode.OK, (await Send(big, ZApiText("O3"))).Status);
        var expect = Z([0, 0, 0, .. ZApiText("O4")]);
        expect.Headers.ExpectContinue = true;
        Assert.Equal(HttpStatusCode.OK, (await Send(expect, [0, 0, 0, .. ZApiText("O4")])).Status);
        var inHeader = Z(ZApiText("O5"), query: "");
        inHeader.Headers.Add("X-Webhook-Secret", WebhookHost.ZApiSecret);
        Assert.Equal(HttpStatusCode.OK, (await Send(inHeader, ZApiText("O5"))).Status);

        // Ambiguous authenticity is refused, not guessed: repeated values are joined, so they match nothing.
        var twoSignatures = WebhookHost.SignedPost("meta", "phone-1", ZApiText("O6"));
        twoSignatures.Headers.Add("X-Hub-Signature-256", "sha256=" + new string('0', 64));
        Assert.Equal(HttpStatusCode.Unauthorized, (await Send(twoSignatures, ZApiText("O6"))).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await Send(Z(ZApiText("O7"), "?secret=" + WebhookHost.ZApiSecret + "&secret=x"), ZApiText("O7"))).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await Send(Z(ZApiText("O8"), "?secret=%zz%&%%=%"), ZApiText("O8"))).Status);

        // Headers past Kestrel's own limit are refused by Kestrel (431), before the endpoint.
        using (var huge = Z(ZApiText("O9")))
        {
            huge.Headers.Add("X-Huge", new string('h', 64 * 1024));
            using var response = await _host.Client.SendAsync(huge);
            Assert.Equal(HttpStatusCode.RequestHeaderFieldsTooLarge, response.StatusCode);
        }

        var stored = sent.Where(s => s.Answer.Status == HttpStatusCode.OK).ToList();
        Assert.Equal(6, stored.Count);
        foreach (var (answer, body) in stored)
        {
            var raw = (await _host.Store.GetRawWebhookAsync(answer.Id!.Value))!;
            Assert.Equal(body, raw.Body.ToArray());
            Assert.DoesNotContain(raw.Headers.Keys, k => k.Equals("X-Webhook-Secret", StringComparison.OrdinalIgnoreCase) || k.StartsWith("X-Many", StringComparison.Ordinal));
        }

        Assert.Equal(6, (await _host.AllRawAsync()).Count);
    }

    [Fact]
    public async Task Answers_and_logs_never_hold_the_body_or_a_secret()
    {
        const string marker = "BODY-MARKER-6a5e";
        var body = ZApiText("S1", text: marker);
        var answers = new List<CaptureAnswer>
        {
            await Post("zapi", "inst-1", body),
            await Post("meta", "inst-1", body),
            await Post("waha", "inst-1", body),
        };
        using (var wrong = new HttpRequestMessage(HttpMethod.Post, "/webhooks/evolution/inst-1?secret=" + marker) { Content = new ByteArrayContent(body) })
        {
            answers.Add(await CaptureAnswer.ReadAsync(await _host.Client.SendAsync(wrong)));
        }

        answers.Add(await Post("zapi", "inst-1", [.. body, .. new byte[Limit]]));
        answers.Add(await Post("zapi", "bad name", body));
        await _host.WaitForRawStatusAsync(answers[0].Id!.Value, RawWebhookStatus.Ingested);
        await _host.WaitForRawStatusAsync(answers[1].Id!.Value, RawWebhookStatus.Failed); // a Z-API body is not a Meta one
        await Eventually.TrueAsync(() => _host.Seen("zapi", "inst-1").Count == 1, "the event to reach the handler");

        Assert.Contains(answers, a => a.Status == HttpStatusCode.Unauthorized);
        // The library's own log lines. (ASP.NET Core's request logging, at Information, writes URLs with their query
        // string: docs/webhooks.md says to keep it at Warning when a secret travels in the URL.)
        var texts = answers.Select(a => a.Raw).Concat(_host.Logs.OfInbox.Select(l => l.Message + l.Exception)).ToList();
        Assert.Contains(_host.Logs.OfInbox, l => l.EventId == 2001); // the 401 was logged, without the secret
        Assert.DoesNotContain(texts, t => t.Contains(marker, StringComparison.Ordinal));
        Assert.DoesNotContain(texts, t => WebhookHost.Secrets.Any(s => t.Contains(s, StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Maps_only_when_the_pipeline_is_registered()
    {
        var builder = WebApplication.CreateSlimBuilder();
        await using var app = builder.Build();
        var error = Assert.Throws<InvalidOperationException>(() => app.MapInboxWebhooks("/webhooks"));
        Assert.Contains("AddInboxReliability", error.Message, StringComparison.Ordinal);
    }
}
