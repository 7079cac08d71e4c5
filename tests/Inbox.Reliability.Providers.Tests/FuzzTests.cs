using System.Text;
using Inbox.Reliability.Events;
using Inbox.Reliability.Testing;
using Xunit.Abstractions;
using static Inbox.Reliability.Providers.Tests.TestSupport;

namespace Inbox.Reliability.Providers.Tests;

/// <summary>
/// Mutates the fixtures (byte flips, truncations, insertions, deletions, splices, JSON structure swaps) and feeds them
/// to the adapters: Parse must return well-formed events or throw <see cref="WebhookParseException"/>, nothing else.
/// </summary>
public class FuzzTests(ITestOutputHelper output)
{
    // Fixed so a failure reproduces; INBOX_FUZZ_SEED and INBOX_FUZZ_ITERATIONS explore further.
    private static readonly int Seed = int.TryParse(Environment.GetEnvironmentVariable("INBOX_FUZZ_SEED"), out var seed) ? seed : 20260101;
    private static readonly int Iterations = int.TryParse(Environment.GetEnvironmentVariable("INBOX_FUZZ_ITERATIONS"), out var n) && n > 0 ? n : 12_000;

    [Fact]
    public void Mutated_fixtures_parse_into_events_or_throw_only_WebhookParseException()
    {
        output.WriteLine($"Fuzz seed: {Seed}, iterations: {Iterations}");
        var random = new Random(Seed);
        var fixtures = AllFixtures().Select(f => (f.Provider, Body: Fixture(f.Provider, f.Name))).Concat(ComposedCorpus()).ToArray();
        var corpus = fixtures.Select(f => f.Body).ToArray();
        var adapters = new Dictionary<string, IWebhookProvider>
        {
            ["meta-cloud"] = MetaAdapter(), ["z-api"] = ZApiAdapter(), ["evolution"] = EvolutionAdapter(), ["waha"] = WahaAdapter(), ["w-api"] = WApiAdapter(),
        };
        var folders = adapters.Keys.ToArray();
        var parsed = 0;
        var rejected = 0;
        var events = 0;
        var perMutation = new Dictionary<PayloadMutation, int>();

        for (var i = 0; i < Iterations; i++)
        {
            var (folder, original) = fixtures[random.Next(fixtures.Length)];
            var mutation = (PayloadMutation)random.Next(Enum.GetValues<PayloadMutation>().Length);
            perMutation[mutation] = perMutation.GetValueOrDefault(mutation) + 1;
            var body = PayloadMutator.Mutate(random, mutation, original, corpus);

            // Mostly the fixture's own adapter; sometimes another one.
            var adapter = adapters[random.Next(5) == 0 ? folders[random.Next(folders.Length)] : folder];
            try
            {
                var result = adapter.Parse(Request(adapter.Name, body));
                Assert.NotEmpty(result);
                foreach (var e in result) AssertWellFormed(e);
                var again = adapter.Parse(Request(adapter.Name, body));
                Assert.Equal(result.Select(e => e.DedupeKey), again.Select(e => e.DedupeKey));
                parsed++;
                events += result.Count;
            }
            catch (WebhookParseException ex)
            {
                Assert.True(ex.Message.Length < 300 && ex.Message.All(c => c is >= ' ' and <= '~'), $"iteration {i}: parse error message is not a short ASCII sentence");
                rejected++;
            }
            catch (Exception ex) when (ex is not Xunit.Sdk.XunitException)
            {
                Assert.Fail($"Seed {Seed}, iteration {i}, {mutation} of a {folder} fixture through {adapter.Name}: {ex.GetType().Name}: {ex.Message}\n{ex.StackTrace}\nBody (base64): {Convert.ToBase64String(body)}");
            }
        }

        output.WriteLine($"Parsed: {parsed} ({events} events), rejected with WebhookParseException: {rejected}");
        output.WriteLine("Mutations: " + string.Join(", ", perMutation.OrderBy(p => p.Key).Select(p => $"{p.Key} {p.Value}")));
        Assert.Equal(Iterations, parsed + rejected);
        Assert.True(parsed > Iterations / 10, "too few mutations still parse; the fuzzer is not exercising the adapters");
        Assert.True(rejected > Iterations / 10, "too few mutations are rejected; the fuzzer is not exercising the error paths");
    }

    /// <summary>Real-shaped payloads beyond the fixtures: batches, groups, LIDs, several ids, Baileys longs.</summary>
    private static IEnumerable<(string Provider, byte[] Body)> ComposedCorpus()
    {
        yield return ("meta-cloud", MetaParsingTests.Envelope(new
        {
            contacts = new[] { new { profile = new { name = "Bruno" }, wa_id = "5511999990002" } },
            messages = new object[]
            {
                new { from = "5511999990002", group_id = "120363000000000001", id = "wamid.G", timestamp = "1767290000", type = "text", text = new { body = "oi" }, context = new { from = "5511999990000", id = "wamid.O" } },
                new { from = "5511999990002", id = "wamid.L", timestamp = "1767290002", type = "location", location = new { latitude = -23.5, longitude = -46.6, name = "Loja" } },
                new { from = "5511999990002", id = "wamid.C", timestamp = "1767290003", type = "contacts", contacts = new[] { new { name = new { formatted_name = "B" }, phones = new[] { new { phone = "+55", wa_id = "55" } } } } },
                new { from = "5511999990002", id = "wamid.R", timestamp = "1767290004", type = "reaction", reaction = new { message_id = "wamid.O", emoji = "👍" } },
            },
            statuses = new object[]
            {
                new { id = "wamid.F", status = "failed", timestamp = "1767290700", recipient_id = "5511999990001", errors = new[] { new { code = 131047, title = "t", message = "m", error_data = new { details = "d" } } } },
                new { id = "wamid.G2", status = "read", timestamp = "1767290701", recipient_id = "120363000000000001", recipient_type = "group", recipient_participant_id = "5511999990002" },
            },
        }));
        yield return ("z-api", Encoding.UTF8.GetBytes("""{"instanceId":"I1","status":"READ_BY_ME","ids":["A1","A2","A3"],"momment":1767290230000,"phone":"120363019502650977-group","type":"MessageStatusCallback","isGroup":true,"participantPhone":"5511999990002"}"""));
        yield return ("z-api", Encoding.UTF8.GetBytes("""{"type":"ReceivedCallback","messageId":"R1","phone":"5511999990001","fromMe":false,"momment":1767290000000,"isEdit":true,"reaction":{"value":"❤️","referencedMessage":{"messageId":"O1"}},"contact":{"displayName":"B","vCard":"BEGIN:VCARD\nTEL;waid=55:+55\nEND:VCARD","phones":["55"]}}"""));
        yield return ("evolution", Encoding.UTF8.GetBytes("""{"event":"messages.upsert","instance":"x","sender":"5511999990000@s.whatsapp.net","data":[{"key":{"remoteJid":"81000000000001@lid","remoteJidAlt":"5511999990001@s.whatsapp.net","addressingMode":"lid","fromMe":false,"id":"E1"},"pushName":"Ana","message":{"documentWithCaptionMessage":{"message":{"documentMessage":{"url":"https://mmg.whatsapp.net/x","mimetype":"application/pdf","fileName":"a.pdf","caption":"c","fileLength":{"low":705032704,"high":1,"unsigned":true},"fileSha256":{"0":1,"1":2}}}}},"contextInfo":{"stanzaId":"O1"},"messageType":"documentWithCaptionMessage","messageTimestamp":{"low":1767290000,"high":0,"unsigned":false}},{"key":{"remoteJid":"120363025246125486@g.us","participant":"81000000000002@lid","participantAlt":"5511999990002@s.whatsapp.net","fromMe":false,"id":"E2"},"message":{"contactsArrayMessage":{"contacts":[{"displayName":"B","vcard":"BEGIN:VCARD\nitem1.TEL;waid=55:+55\nEND:VCARD"}]}},"messageType":"contactsArrayMessage","messageTimestamp":1767290001}]}"""));
        yield return ("waha", Encoding.UTF8.GetBytes("""{"id":"evt_1","timestamp":1767290230000,"event":"message.ack","session":"s","payload":{"id":"true_120363025246125486@g.us_X_5511999990000@c.us","from":"120363025246125486@g.us","to":"120363025246125486@g.us","participant":"5511999990002@c.us","fromMe":true,"ack":-1,"ackName":"ERROR"}}"""));
    }
}
