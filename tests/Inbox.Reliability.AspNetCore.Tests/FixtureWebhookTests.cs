using System.Net;
using System.Security.Cryptography;
using Inbox.Reliability.Conformance;
using Inbox.Reliability.Events;
using Inbox.Reliability.Storage;

namespace Inbox.Reliability.AspNetCore.Tests;

/// <summary>One host for the whole class: every fixture goes to its own instance, so their events never mix.</summary>
public sealed class SharedWebhookHost : IAsyncLifetime
{
    public WebhookHost Host { get; private set; } = null!;

    public async Task InitializeAsync() => Host = await WebhookHost.StartAsync();

    public async Task DisposeAsync() => await Host.DisposeAsync();
}

/// <summary>Every provider fixture, posted as the provider would (signed, or with the secret in the URL), through real HTTP.</summary>
public sealed class FixtureWebhookTests(SharedWebhookHost shared) : IClassFixture<SharedWebhookHost>
{
    private WebhookHost Host => shared.Host;

    public static TheoryData<string, string> AllFixtures => Fixtures.Theory();

    [Theory]
    [MemberData(nameof(AllFixtures))]
    public async Task A_fixture_posted_with_valid_authenticity_is_stored_and_its_events_reach_the_handler_once(string folder, string name)
    {
        var provider = Fixtures.Provider(folder);
        var instance = "fx-" + name;
        var body = Fixtures.Read(folder, name);

        using var response = await Host.PostAsync(provider, instance, body);
        var answer = await CaptureAnswer.ReadAsync(response);
        Assert.Equal((HttpStatusCode.OK, "stored", "application/json"), (answer.Status, answer.State, answer.ContentType));
        Assert.NotNull(answer.Id);

        // Durable when the answer came back: the row holds the bytes as sent, and no secret.
        var raw = await Host.Store.GetRawWebhookAsync(answer.Id.Value);
        Assert.NotNull(raw);
        Assert.Equal((provider, instance, "application/json"), (raw.Provider, raw.Instance, raw.ContentType));
        Assert.Equal(SHA256.HashData(body), raw.Sha256);
        Assert.Equal(body, raw.Body.ToArray());
        Assert.DoesNotContain(raw.Headers, h => WebhookHost.Secrets.Any(s => h.Value.Contains(s, StringComparison.Ordinal)));

        // Ingested into exactly the events the adapter makes of these bytes, each delivered once, all from this row.
        var expected = Host.Adapter(provider).Parse(new WebhookRequest(provider, instance, body, raw.ReceivedAt)).Select(e => e.DedupeKey).ToList();
        await Host.WaitForRawStatusAsync(raw.Id, RawWebhookStatus.Ingested);
        await Eventually.TrueAsync(() => Host.Seen(provider, instance).Count >= expected.Count, $"the {expected.Count} events of {folder}/{name} to reach the handler");
        var seen = Host.Seen(provider, instance);
        Assert.Equal(expected.Order(StringComparer.Ordinal), seen.Select(s => s.Event.DedupeKey).Order(StringComparer.Ordinal));
        Assert.All(seen, s => Assert.Equal(s.Event.DedupeKey, s.IdempotencyKey));
        foreach (var s in seen) Assert.Equal(raw.Id, (await Host.Store.GetEventAsync(s.EventId))!.RawWebhookId);
        Assert.Equal(expected.Count, (await Host.Store.GetRawWebhookAsync(raw.Id))!.EventCount);
    }

    [Theory]
    [MemberData(nameof(AllFixtures))]
    public async Task A_fixture_without_valid_authenticity_is_refused_with_401_and_not_stored(string folder, string name)
    {
        var provider = Fixtures.Provider(folder);
        var instance = "unauth-" + name;
        var body = Fixtures.Read(folder, name);

        // Signed or keyed for a different body / with a wrong secret, then with nothing at all.
        using var forged = WebhookHost.SignedPost(provider, instance, body);
        if (provider == "meta") forged.Headers.Remove("X-Hub-Signature-256");
        if (provider == "waha") forged.Headers.Remove("X-Webhook-Hmac");
        if (provider == "meta") forged.Headers.Add("X-Hub-Signature-256", "sha256=" + WebhookHost.HexHmacSha256("not-the-app-secret", body));
        if (provider == "waha") forged.Headers.Add("X-Webhook-Hmac", WebhookHost.HexHmacSha512(WebhookHost.WahaHmacKey, [.. body, (byte)' ']));
        if (forged.RequestUri!.OriginalString.Contains("?secret=", StringComparison.Ordinal))
            forged.RequestUri = new Uri(forged.RequestUri.OriginalString.Split('?')[0] + "?secret=wrong-secret", UriKind.Relative);
        var wrong = await CaptureAnswer.ReadAsync(await Host.Client.SendAsync(forged));

        using var bare = new HttpRequestMessage(HttpMethod.Post, $"/webhooks/{provider}/{instance}") { Content = new ByteArrayContent(body) };
        var missing = await CaptureAnswer.ReadAsync(await Host.Client.SendAsync(bare));

        foreach (var answer in new[] { wrong, missing })
        {
            Assert.Equal(HttpStatusCode.Unauthorized, answer.Status);
            Assert.False(string.IsNullOrWhiteSpace(answer.Error));
            Assert.Null(answer.Id);
            Assert.DoesNotContain(WebhookHost.Secrets, s => answer.Raw.Contains(s, StringComparison.Ordinal));
        }

        Assert.Empty(await Host.Store.ListRawWebhooksAsync(new RawWebhookQuery { Instance = instance }));
    }
}
