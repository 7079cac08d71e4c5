using System.Text;
using Inbox.Reliability.Events;
using static Inbox.Reliability.Providers.Tests.TestSupport;

namespace Inbox.Reliability.Providers.Tests;

public class AuthenticationTests
{
    private const string AppSecret = "meta-app-secret";
    private static readonly byte[] MetaBody = Fixture("meta-cloud", "text");
    private static readonly byte[] WahaBody = Fixture("waha", "text");

    private static Dictionary<string, string> Headers(params (string Key, string Value)[] headers) => headers.ToDictionary(h => h.Key, h => h.Value);

    // ---- Meta: X-Hub-Signature-256 ----

    [Fact]
    public void Meta_valid_signature()
    {
        var result = MetaAdapter().Authenticate(Request("meta", MetaBody, headers: Headers(("X-Hub-Signature-256", "sha256=" + HexHmacSha256(AppSecret, MetaBody)))));
        Assert.Equal(WebhookAuthStatus.Ok, result.Status);
        Assert.True(result.IsAllowed);
    }

    [Fact]
    public void Meta_header_name_is_case_insensitive_and_hex_may_be_upper_case()
    {
        var result = MetaAdapter().Authenticate(Request("meta", MetaBody, headers: Headers(("x-hub-signature-256", "sha256=" + HexHmacSha256(AppSecret, MetaBody).ToUpperInvariant()))));
        Assert.Equal(WebhookAuthStatus.Ok, result.Status);
    }

    [Fact]
    public void Meta_signature_over_another_body_or_with_another_secret_is_invalid()
    {
        var tampered = MetaBody.ToArray();
        tampered[^3] ^= 1;
        var signature = "sha256=" + HexHmacSha256(AppSecret, MetaBody);
        var r1 = MetaAdapter().Authenticate(Request("meta", tampered, headers: Headers(("X-Hub-Signature-256", signature))));
        var r2 = MetaAdapter().Authenticate(Request("meta", MetaBody, headers: Headers(("X-Hub-Signature-256", "sha256=" + HexHmacSha256("other-secret", MetaBody)))));
        Assert.Equal(WebhookAuthStatus.Invalid, r1.Status);
        Assert.Equal(WebhookAuthStatus.Invalid, r2.Status);
        Assert.False(r1.IsAllowed);
        Assert.Equal("X-Hub-Signature-256 does not match the body", r1.Reason);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(31)]
    [InlineData(63)]
    public void Meta_signature_differing_in_any_single_digit_is_invalid(int position)
    {
        // The whole MAC is compared (fixed-time), not a prefix: a difference in the first, middle or last digit is caught.
        var hex = HexHmacSha256(AppSecret, MetaBody).ToCharArray();
        hex[position] = hex[position] == '0' ? '1' : '0';
        var result = MetaAdapter().Authenticate(Request("meta", MetaBody, headers: Headers(("X-Hub-Signature-256", "sha256=" + new string(hex)))));
        Assert.Equal(WebhookAuthStatus.Invalid, result.Status);
    }

    [Fact]
    public void Meta_missing_signature()
    {
        var result = MetaAdapter().Authenticate(Request("meta", MetaBody, headers: Headers(("X-Hub-Signature", "sha1=abc"))));
        Assert.Equal(WebhookAuthStatus.Missing, result.Status);
        Assert.False(result.IsAllowed);
    }

    [Theory]
    [InlineData("sha1=")]
    [InlineData("sha512=")]
    [InlineData("")]
    [InlineData("SHA256:")]
    public void Meta_wrong_algorithm_prefix_is_invalid(string prefix)
    {
        var result = MetaAdapter().Authenticate(Request("meta", MetaBody, headers: Headers(("X-Hub-Signature-256", prefix + HexHmacSha256(AppSecret, MetaBody)))));
        Assert.Equal(WebhookAuthStatus.Invalid, result.Status);
        Assert.Contains("sha256=", result.Reason, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("sha256=abc")]
    [InlineData("sha256=zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz")]
    [InlineData("sha256=")]
    public void Meta_malformed_signature_is_invalid(string header)
    {
        var result = MetaAdapter().Authenticate(Request("meta", MetaBody, headers: Headers(("X-Hub-Signature-256", header))));
        Assert.Equal(WebhookAuthStatus.Invalid, result.Status);
    }

    [Fact]
    public void Meta_without_app_secret_rejects_unless_unsigned_webhooks_are_allowed()
    {
        var strict = MetaAdapter(o => o.AppSecret = null).Authenticate(Request("meta", MetaBody));
        Assert.Equal(WebhookAuthStatus.Invalid, strict.Status);
        var lax = MetaAdapter(o => { o.AppSecret = null; o.AllowUnsignedWebhooks = true; }).Authenticate(Request("meta", MetaBody));
        Assert.Equal(WebhookAuthStatus.NotConfigured, lax.Status);
        Assert.True(lax.IsAllowed);
    }

    [Fact]
    public void Meta_empty_app_secret_fails_closed()
    {
        // An empty HMAC key would let anyone compute a valid signature.
        var signature = "sha256=" + HexHmacSha256("", MetaBody);
        var result = MetaAdapter(o => o.AppSecret = "").Authenticate(Request("meta", MetaBody, headers: Headers(("X-Hub-Signature-256", signature))));
        Assert.Equal(WebhookAuthStatus.Invalid, result.Status);
        var fromCaller = MetaAdapter().Authenticate(Request("meta", MetaBody, headers: Headers(("X-Hub-Signature-256", signature)), secret: ""));
        Assert.Equal(WebhookAuthStatus.Invalid, fromCaller.Status);
    }

    [Fact]
    public void Meta_per_instance_secret_and_caller_secret_take_precedence()
    {
        var adapter = MetaAdapter(o => o.InstanceAppSecrets["app-2"] = "second-app-secret");
        var signed = Headers(("X-Hub-Signature-256", "sha256=" + HexHmacSha256("second-app-secret", MetaBody)));
        Assert.Equal(WebhookAuthStatus.Ok, adapter.Authenticate(Request("meta", MetaBody, instance: "app-2", headers: signed)).Status);
        Assert.Equal(WebhookAuthStatus.Invalid, adapter.Authenticate(Request("meta", MetaBody, instance: "inst-1", headers: signed)).Status);
        var byCaller = Headers(("X-Hub-Signature-256", "sha256=" + HexHmacSha256("resolved-by-host", MetaBody)));
        Assert.Equal(WebhookAuthStatus.Ok, adapter.Authenticate(Request("meta", MetaBody, instance: "app-2", headers: byCaller, secret: "resolved-by-host")).Status);
    }

    [Fact]
    public void Reasons_never_contain_secrets_or_signatures()
    {
        var signature = "sha256=" + HexHmacSha256("wrong", MetaBody);
        var results = new[]
        {
            MetaAdapter().Authenticate(Request("meta", MetaBody, headers: Headers(("X-Hub-Signature-256", signature)))),
            ZApiAdapter(o => o.WebhookSecret = "zapi-secret-value").Authenticate(Request("zapi", MetaBody, query: Headers(("secret", "guess-value")))),
            WahaAdapter(o => o.HmacKey = "waha-key-value").Authenticate(Request("waha", WahaBody, headers: Headers(("X-Webhook-Hmac", HexHmacSha512("x", WahaBody))))),
        };
        foreach (var result in results)
        {
            Assert.DoesNotContain(AppSecret, result.Reason, StringComparison.Ordinal);
            Assert.DoesNotContain(signature[7..], result.Reason, StringComparison.Ordinal);
            Assert.DoesNotContain("zapi-secret-value", result.Reason, StringComparison.Ordinal);
            Assert.DoesNotContain("guess-value", result.Reason, StringComparison.Ordinal);
            Assert.DoesNotContain("waha-key-value", result.Reason, StringComparison.Ordinal);
            Assert.DoesNotContain("Ana", result.Reason, StringComparison.Ordinal);
        }
    }

    // ---- WAHA: X-Webhook-Hmac (SHA-512) ----

    [Fact]
    public void Waha_valid_hmac_with_and_without_algorithm_header()
    {
        var adapter = WahaAdapter(o => o.HmacKey = "waha-key");
        var hmac = HexHmacSha512("waha-key", WahaBody);
        Assert.Equal(WebhookAuthStatus.Ok, adapter.Authenticate(Request("waha", WahaBody, headers: Headers(("X-Webhook-Hmac", hmac), ("X-Webhook-Hmac-Algorithm", "sha512")))).Status);
        Assert.Equal(WebhookAuthStatus.Ok, adapter.Authenticate(Request("waha", WahaBody, headers: Headers(("X-Webhook-Hmac", hmac)))).Status);
    }

    [Fact]
    public void Waha_wrong_missing_and_wrong_algorithm()
    {
        var adapter = WahaAdapter(o => o.HmacKey = "waha-key");
        var hmac = HexHmacSha512("waha-key", WahaBody);
        Assert.Equal(WebhookAuthStatus.Invalid, adapter.Authenticate(Request("waha", WahaBody, headers: Headers(("X-Webhook-Hmac", HexHmacSha512("other", WahaBody))))).Status);
        Assert.Equal(WebhookAuthStatus.Missing, adapter.Authenticate(Request("waha", WahaBody)).Status);
        var wrongAlgorithm = adapter.Authenticate(Request("waha", WahaBody, headers: Headers(("X-Webhook-Hmac", hmac), ("X-Webhook-Hmac-Algorithm", "sha256"))));
        Assert.Equal(WebhookAuthStatus.Invalid, wrongAlgorithm.Status);
        Assert.Contains("sha512", wrongAlgorithm.Reason, StringComparison.Ordinal);
        // A SHA-256 MAC (64 digits) is not accepted where SHA-512 (128 digits) is expected.
        Assert.Equal(WebhookAuthStatus.Invalid, adapter.Authenticate(Request("waha", WahaBody, headers: Headers(("X-Webhook-Hmac", HexHmacSha256("waha-key", WahaBody))))).Status);
    }

    [Fact]
    public void Waha_not_configured_is_allowed_and_says_so()
    {
        var result = WahaAdapter().Authenticate(Request("waha", WahaBody));
        Assert.Equal(WebhookAuthStatus.NotConfigured, result.Status);
        Assert.True(result.IsAllowed);
    }

    [Fact]
    public void Waha_empty_key_fails_closed_and_per_instance_keys_apply()
    {
        Assert.Equal(WebhookAuthStatus.Invalid, WahaAdapter(o => o.HmacKey = " ").Authenticate(Request("waha", WahaBody, headers: Headers(("X-Webhook-Hmac", HexHmacSha512(" ", WahaBody))))).Status);
        var adapter = WahaAdapter(o => o.InstanceHmacKeys["loja-2"] = "key-2");
        Assert.Equal(WebhookAuthStatus.Ok, adapter.Authenticate(Request("waha", WahaBody, instance: "loja-2", headers: Headers(("X-Webhook-Hmac", HexHmacSha512("key-2", WahaBody))))).Status);
        Assert.Equal(WebhookAuthStatus.NotConfigured, adapter.Authenticate(Request("waha", WahaBody, instance: "loja-3")).Status);
    }

    // ---- Shared secrets: Z-API, Evolution, W-API ----

    public static TheoryData<string> SharedSecretProviders => new() { "zapi", "evolution", "wapi" };

    private static IWebhookProvider SharedSecretAdapter(string name, Action<SharedSecretWebhookOptions> configure) => name switch
    {
        "zapi" => ZApiAdapter(configure),
        "evolution" => EvolutionAdapter(configure),
        _ => WApiAdapter(configure),
    };

    [Theory]
    [MemberData(nameof(SharedSecretProviders))]
    public void Shared_secret_in_query_or_header(string provider)
    {
        var adapter = SharedSecretAdapter(provider, o => o.WebhookSecret = "s3cret-value");
        var body = Encoding.UTF8.GetBytes("{}");
        Assert.Equal(WebhookAuthStatus.Ok, adapter.Authenticate(Request(provider, body, query: Headers(("secret", "s3cret-value")))).Status);
        Assert.Equal(WebhookAuthStatus.Ok, adapter.Authenticate(Request(provider, body, headers: Headers(("x-webhook-secret", "s3cret-value")))).Status);
        Assert.Equal(WebhookAuthStatus.Invalid, adapter.Authenticate(Request(provider, body, query: Headers(("secret", "s3cret-valuE")))).Status);
        Assert.Equal(WebhookAuthStatus.Missing, adapter.Authenticate(Request(provider, body)).Status);
        Assert.Equal(WebhookAuthStatus.Missing, adapter.Authenticate(Request(provider, body, query: Headers(("secret", ""))))!.Status);
    }

    [Theory]
    [InlineData("s3cret-valu")]
    [InlineData("s3cret-value-and-more")]
    [InlineData("S3CRET-VALUE")]
    [InlineData("s3cret-value ")]
    public void Shared_secret_prefixes_extensions_and_case_variants_do_not_match(string guess)
    {
        var adapter = ZApiAdapter(o => o.WebhookSecret = "s3cret-value");
        Assert.Equal(WebhookAuthStatus.Invalid, adapter.Authenticate(Request("zapi", [], query: Headers(("secret", guess)))).Status);
    }

    [Theory]
    [MemberData(nameof(SharedSecretProviders))]
    public void Shared_secret_not_configured_is_allowed_and_says_so(string provider)
    {
        var result = SharedSecretAdapter(provider, _ => { }).Authenticate(Request(provider, Encoding.UTF8.GetBytes("{}")));
        Assert.Equal(WebhookAuthStatus.NotConfigured, result.Status);
        Assert.True(result.IsAllowed);
    }

    [Fact]
    public void Shared_secret_empty_fails_closed()
    {
        var result = EvolutionAdapter(o => o.WebhookSecret = "").Authenticate(Request("evolution", [], query: Headers(("secret", ""))));
        Assert.Equal(WebhookAuthStatus.Invalid, result.Status);
    }

    [Fact]
    public void Shared_secret_custom_names_bearer_header_and_per_instance()
    {
        var adapter = EvolutionAdapter(o =>
        {
            o.WebhookSecret = "default-secret";
            o.InstanceSecrets["loja-centro"] = "centro-secret";
            o.SecretHeaderName = "Authorization";
            o.SecretQueryName = "token";
        });
        Assert.Equal(WebhookAuthStatus.Ok, adapter.Authenticate(Request("evolution", [], instance: "loja-centro", headers: Headers(("Authorization", "Bearer centro-secret")))).Status);
        Assert.Equal(WebhookAuthStatus.Invalid, adapter.Authenticate(Request("evolution", [], instance: "loja-centro", headers: Headers(("Authorization", "Bearer default-secret")))).Status);
        Assert.Equal(WebhookAuthStatus.Ok, adapter.Authenticate(Request("evolution", [], instance: "other", query: Headers(("token", "default-secret")))).Status);
        Assert.Equal(WebhookAuthStatus.Missing, adapter.Authenticate(Request("evolution", [], instance: "other", query: Headers(("secret", "default-secret")))).Status);
        Assert.Equal(WebhookAuthStatus.Ok, adapter.Authenticate(Request("evolution", [], instance: "other", query: Headers(("token", "host-secret")), secret: "host-secret")).Status);
    }

    [Fact]
    public void Header_only_configuration_ignores_the_query()
    {
        var adapter = WApiAdapter(o => { o.WebhookSecret = "abc-secret"; o.SecretQueryName = null; });
        Assert.Equal(WebhookAuthStatus.Missing, adapter.Authenticate(Request("wapi", [], query: Headers(("secret", "abc-secret")))).Status);
        Assert.Equal(WebhookAuthStatus.Ok, adapter.Authenticate(Request("wapi", [], headers: Headers(("X-Webhook-Secret", "abc-secret")))).Status);
    }

    // ---- Meta GET handshake ----

    private static WebhookChallengeRequest Challenge(string? mode, string? token, string? challenge, string instance = "inst-1", string? verifyToken = null)
    {
        var query = new Dictionary<string, string>();
        if (mode is not null) query["hub.mode"] = mode;
        if (token is not null) query["hub.verify_token"] = token;
        if (challenge is not null) query["hub.challenge"] = challenge;
        return new WebhookChallengeRequest("meta", instance, query) { VerifyToken = verifyToken };
    }

    [Fact]
    public void Meta_challenge_is_echoed_when_the_token_matches()
    {
        IWebhookProvider provider = MetaAdapter(o => o.VerifyToken = "my-verify-token");
        var handler = Assert.IsAssignableFrom<IWebhookChallengeHandler>(provider);
        var result = handler.AnswerChallenge(Challenge("subscribe", "my-verify-token", "1158201444"));
        Assert.Equal(WebhookChallengeStatus.Accepted, result.Status);
        Assert.Equal("1158201444", result.Challenge);
    }

    [Fact]
    public void Meta_challenge_is_rejected_otherwise()
    {
        var adapter = MetaAdapter(o => o.VerifyToken = "my-verify-token");
        Assert.Equal(WebhookChallengeStatus.Rejected, adapter.AnswerChallenge(Challenge("subscribe", "wrong", "1158201444")).Status);
        Assert.Equal(WebhookChallengeStatus.Rejected, adapter.AnswerChallenge(Challenge("subscribe", "my-verify-toke", "1158201444")).Status);
        Assert.Equal(WebhookChallengeStatus.Rejected, adapter.AnswerChallenge(Challenge("subscribe", null, "1158201444")).Status);
        Assert.Equal(WebhookChallengeStatus.Rejected, adapter.AnswerChallenge(Challenge("subscribe", "my-verify-token", "<script>alert(1)</script>")).Status);
        Assert.Equal(WebhookChallengeStatus.NotAChallenge, adapter.AnswerChallenge(Challenge("unsubscribe", "my-verify-token", "1")).Status);
        Assert.Equal(WebhookChallengeStatus.NotAChallenge, adapter.AnswerChallenge(Challenge(null, "my-verify-token", "1")).Status);
        Assert.Equal(WebhookChallengeStatus.NotAChallenge, adapter.AnswerChallenge(Challenge("subscribe", "my-verify-token", null)).Status);
        var notConfigured = MetaAdapter().AnswerChallenge(Challenge("subscribe", "anything", "1"));
        Assert.Equal(WebhookChallengeStatus.Rejected, notConfigured.Status);
        Assert.Null(notConfigured.Challenge);
        Assert.DoesNotContain("my-verify-token", adapter.AnswerChallenge(Challenge("subscribe", "wrong", "1")).Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Meta_challenge_per_instance_token()
    {
        var adapter = MetaAdapter(o => { o.VerifyToken = "default"; o.InstanceVerifyTokens["app-2"] = "second"; });
        Assert.Equal(WebhookChallengeStatus.Accepted, adapter.AnswerChallenge(Challenge("subscribe", "second", "42", "app-2")).Status);
        Assert.Equal(WebhookChallengeStatus.Rejected, adapter.AnswerChallenge(Challenge("subscribe", "default", "42", "app-2")).Status);
        Assert.Equal(WebhookChallengeStatus.Accepted, adapter.AnswerChallenge(Challenge("subscribe", "from-host", "42", "app-2", verifyToken: "from-host")).Status);
    }

    [Fact]
    public void Authenticate_never_throws_for_odd_headers()
    {
        var odd = Headers(("X-Hub-Signature-256", "sha256=" + new string('é', 64)), ("X-Webhook-Hmac", "\0\0"), ("X-Webhook-Secret", "\uD800"));
        foreach (var adapter in new IWebhookProvider[] { MetaAdapter(), WahaAdapter(o => o.HmacKey = "k"), ZApiAdapter(o => o.WebhookSecret = "s") })
        {
            Assert.False(adapter.Authenticate(Request(adapter.Name, [0xff, 0xfe], headers: odd)).IsAllowed);
        }
    }
}
