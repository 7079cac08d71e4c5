using System.Text;
using Inbox.Reliability.Events;
using static Inbox.Reliability.Providers.Tests.TestSupport;

namespace Inbox.Reliability.Providers.Tests;

public class RobustnessTests
{
    public static TheoryData<string> Folders => new() { "meta-cloud", "z-api", "evolution", "waha", "w-api" };

    public static IEnumerable<object[]> Fixtures => AllFixtures().Select(f => new object[] { f.Provider, f.Name });

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Every_fixture_parses_into_well_formed_events_deterministically(string folder, string name)
    {
        var first = ParseFixture(folder, name);
        var second = ParseFixture(folder, name);
        Assert.NotEmpty(first);
        Assert.All(first, AssertWellFormed);
        Assert.Equal(first.Select(e => e.DedupeKey), second.Select(e => e.DedupeKey));
        Assert.Equal(first, second, (a, b) => a with { Contacts = [], Media = null } == b with { Contacts = [], Media = null });
        Assert.All(first, e => Assert.DoesNotContain("APIKEY", e.Raw ?? "", StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Folders))]
    public void Garbage_throws_a_parse_exception_that_does_not_echo_the_body(string folder)
    {
        var adapter = ForFolder(folder);
        var bodies = new List<byte[]>
        {
            Array.Empty<byte>(),
            "   \r\n"u8.ToArray(),
            new byte[] { 0xC3, 0x28, 0x7B, 0x7D },
            Encoding.UTF8.GetBytes("SECRET-MARKER not json"),
            Encoding.UTF8.GetBytes("[\"SECRET-MARKER\"]"),
            Encoding.UTF8.GetBytes("\"SECRET-MARKER\""),
            Encoding.UTF8.GetBytes("{\"SECRET-MARKER\":"),
            Encoding.UTF8.GetBytes("{\"a\":1,}"),
            Encoding.UTF8.GetBytes(new string('[', 200) + new string(']', 200)),
            Encoding.UTF8.GetBytes("{\"SECRET-MARKER\":\"x\"}"),
            Encoding.UTF8.GetBytes("null"),
        };
        foreach (var body in bodies)
        {
            var ex = Assert.Throws<WebhookParseException>(() => adapter.Parse(Request(adapter.Name, body)));
            Assert.DoesNotContain("SECRET-MARKER", ex.Message, StringComparison.Ordinal);
            Assert.Null(ex.InnerException);
        }
    }

    [Theory]
    [InlineData("meta-cloud")]
    [InlineData("z-api")]
    [InlineData("evolution")]
    [InlineData("waha")]
    [InlineData("w-api")]
    public void Another_providers_payload_is_not_mistaken_for_this_ones(string folder)
    {
        var adapter = ForFolder(folder);
        var foreign = folder == "meta-cloud" ? Fixture("z-api", "text") : Fixture("meta-cloud", "text");
        Assert.Throws<WebhookParseException>(() => adapter.Parse(Request(adapter.Name, foreign)));
    }

    [Fact]
    public void Lone_surrogate_escapes_from_javascript_senders_do_not_lose_the_message()
    {
        // A provider that cut an emoji in half sends "\ud83d" alone; JSON allows it, UTF-16 does not.
        var json = Encoding.UTF8.GetString(Fixture("z-api", "text")).Replace("Olá! Vocês", "Olá \\ud83d! Vocês", StringComparison.Ordinal);
        var e = Single(ZApiAdapter().Parse(Request("zapi", json)));
        Assert.Equal("Olá \uFFFD! Vocês têm esse produto em azul?", e.Text);
        Assert.NotNull(e.Raw);
    }

    [Fact]
    public void Out_of_range_numbers_fall_back_instead_of_throwing()
    {
        var json = Encoding.UTF8.GetString(Fixture("z-api", "text")).Replace("1767290000000", "99999999999999999999999", StringComparison.Ordinal);
        Assert.Equal(ReceivedAt, Single(ZApiAdapter().Parse(Request("zapi", json))).OccurredAt);
        json = Encoding.UTF8.GetString(Fixture("z-api", "text")).Replace("1767290000000", "-5", StringComparison.Ordinal);
        Assert.Equal(ReceivedAt, Single(ZApiAdapter().Parse(Request("zapi", json))).OccurredAt);
        json = Encoding.UTF8.GetString(Fixture("meta-cloud", "text")).Replace("\"1767290000\"", "1e400", StringComparison.Ordinal);
        Assert.Equal(ReceivedAt, Single(MetaAdapter().Parse(Request("meta", json))).OccurredAt);
    }

    [Fact]
    public void Utf8_byte_order_mark_is_accepted()
    {
        var body = new byte[] { 0xEF, 0xBB, 0xBF }.Concat(Fixture("waha", "text")).ToArray();
        Assert.Equal("false_5511999990001@c.us_3EB0WAHAFAKE0000001", Single(WahaAdapter().Parse(Request("waha", body))).ExternalId);
    }

    [Fact]
    public void Dedupe_keys_are_unique_across_all_fixtures()
    {
        var keys = AllFixtures().SelectMany(f => ParseFixture(f.Provider, f.Name)).Select(e => e.DedupeKey).ToList();
        // status-update and status-update-delivered are different statuses of one message; everything else differs.
        Assert.Equal(keys.Count, keys.Distinct().Count());
    }
}
