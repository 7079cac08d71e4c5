using Inbox.Reliability.Events;
using Inbox.Reliability.Providers.Internal;

namespace Inbox.Reliability.Providers.Tests;

public class NormalizationTests
{
    [Theory]
    [InlineData("5511999990001@s.whatsapp.net", "5511999990001")]
    [InlineData("5511999990001@c.us", "5511999990001")]
    [InlineData("5511999990001:12@s.whatsapp.net", "5511999990001")]
    [InlineData("5511999990001.0:3@s.whatsapp.net", "5511999990001")]
    [InlineData("5511999990001", "5511999990001")]
    [InlineData(" 5511999990001 ", "5511999990001")]
    [InlineData("120363025246125486@g.us", "120363025246125486@g.us")]
    [InlineData("120363019502650977-group", "120363019502650977-group")]
    [InlineData("81000000000001@lid", "81000000000001@lid")]
    [InlineData("81000000000001:7@lid", "81000000000001@lid")]
    [InlineData("120363000000000009@newsletter", "120363000000000009@newsletter")]
    [InlineData("status@broadcast", "status@broadcast")]
    [InlineData("5511999990001@C.US", "5511999990001")]
    [InlineData("@s.whatsapp.net", null)]
    [InlineData("", null)]
    [InlineData(null, null)]
    public void Chat_ids_are_normalized(string? input, string? expected) => Assert.Equal(expected, Jid.Normalize(input));

    [Theory]
    [InlineData(1767290000L, 1767290000L)]
    [InlineData(1767290000000L, 1767290000L)]
    [InlineData(1767290000123L, 1767290000L)]
    public void Unix_times_in_seconds_or_milliseconds(long value, long expectedSeconds)
    {
        Assert.Equal(expectedSeconds, UnixTime.From(value)!.Value.ToUnixTimeSeconds());
        Assert.Equal(TimeSpan.Zero, UnixTime.From(value)!.Value.Offset);
    }

    [Theory]
    [InlineData(0L)]
    [InlineData(-1L)]
    [InlineData(long.MaxValue)]
    [InlineData(null)]
    public void Unusable_unix_times_are_null(long? value) => Assert.Null(UnixTime.From(value));

    [Fact]
    public void VCard_phones()
    {
        var phones = VCard.Phones("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Bruno\r\nitem1.TEL;waid=5511999990002:+55 11 99999-0002\r\nTEL;TYPE=HOME:+55 11 3333-0000\r\nEND:VCARD");
        Assert.Equal([new ContactPhone("+55 11 99999-0002", "5511999990002"), new ContactPhone("+55 11 3333-0000", null)], phones);
        Assert.Empty(VCard.Phones(null));
    }

    [Fact]
    public void Dedupe_keys()
    {
        Assert.Equal("zapi|i|M1", InboxDedupeKey.ForMessage("zapi", "i", "M1"));
        Assert.Equal("zapi|i|M1|edit:5", InboxDedupeKey.ForMessage("zapi", "i", "M1", "5"));
        Assert.Equal("meta|i|M1|read", InboxDedupeKey.ForStatus("meta", "i", "M1", InboxMessageStatus.Read));
        Assert.Equal("meta|i|M1|read|551", InboxDedupeKey.ForStatus("meta", "i", "M1", InboxMessageStatus.Read, participant: "551"));
        Assert.Equal("meta|i|M1|unknown:warning", InboxDedupeKey.ForStatus("meta", "i", "M1", InboxMessageStatus.Unknown, "WARNING"));
        Assert.Equal("waha|i|connection|evt_1", InboxDedupeKey.ForConnection("waha", "i", "evt_1"));
        Assert.Equal("waha|i|other|evt_1", InboxDedupeKey.ForOther("waha", "i", "evt_1"));
        Assert.Throws<ArgumentException>(() => InboxDedupeKey.ForMessage("zapi", "i", ""));
    }

    [Fact]
    public void Request_headers_and_query_are_case_insensitive_copies()
    {
        var headers = new Dictionary<string, string> { ["X-Hub-Signature-256"] = "a" };
        var request = new WebhookRequest("meta", "i", Array.Empty<byte>(), new DateTimeOffset(2026, 1, 1, 12, 0, 0, TimeSpan.FromHours(-3))) { Headers = headers };
        headers["X-Hub-Signature-256"] = "changed";
        Assert.Equal("a", request.Headers["x-hub-signature-256"]);
        Assert.Equal(new DateTimeOffset(2026, 1, 1, 15, 0, 0, TimeSpan.Zero), request.ReceivedAt);
        Assert.Equal(TimeSpan.Zero, request.ReceivedAt.Offset);
        Assert.Throws<ArgumentException>(() => new WebhookRequest("meta", " ", Array.Empty<byte>(), DateTimeOffset.UnixEpoch));
    }

    [Fact]
    public void Raw_is_the_element_and_never_long_base64_or_large_byte_arrays()
    {
        var bytes = string.Join(",", Enumerable.Range(0, 300).Select(i => $"\"{i}\":{i % 256}"));
        var base64 = Convert.ToBase64String(new byte[600]);
        var json = "{\"event\":\"messages.upsert\",\"instance\":\"x\",\"apikey\":\"KEY-1\",\"data\":{\"key\":{\"remoteJid\":\"5511@s.whatsapp.net\",\"fromMe\":false,\"id\":\"A\"},"
            + "\"message\":{\"imageMessage\":{\"mimetype\":\"image/jpeg\",\"jpegThumbnail\":{" + bytes + "},\"scansSidecar\":{" + bytes + "},\"caption\":\"c\"},\"base64\":\"" + base64 + "\"},"
            + "\"note\":\"" + base64 + "\",\"messageTimestamp\":1767290000}}";
        var e = TestSupport.Single(TestSupport.EvolutionAdapter().Parse(TestSupport.Request("evolution", json)));
        Assert.DoesNotContain(base64[..100], e.Raw, StringComparison.Ordinal);
        Assert.DoesNotContain("KEY-1", e.Raw, StringComparison.Ordinal);
        Assert.DoesNotContain("jpegThumbnail", e.Raw, StringComparison.Ordinal);
        Assert.Contains("\"scansSidecar\":\"[300 bytes omitted]\"", e.Raw, StringComparison.Ordinal);
        Assert.Contains("\"note\":\"[800 characters of base64 omitted]\"", e.Raw, StringComparison.Ordinal);
        Assert.Equal("true", e.Media!.Properties["hasBase64"]);
        Assert.True(e.Raw!.Length < 1000);
    }
}
