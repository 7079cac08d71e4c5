using System.Text.Json.Nodes;
using Inbox.Reliability.Events;
using static Inbox.Reliability.Providers.Tests.TestSupport;

namespace Inbox.Reliability.Providers.Tests;

public class WApiParsingTests
{
    private const string Folder = "w-api";

    [Fact]
    public void Text_fixture()
    {
        var e = Single(ParseFixture(Folder, "text"));
        Assert.Equal(InboxEventKind.Message, e.Kind);
        Assert.Equal("wapi", e.Provider);
        Assert.Equal("3EB0WAPIFAKE00000001", e.ExternalId);
        Assert.Equal("wapi|inst-1|3EB0WAPIFAKE00000001", e.DedupeKey);
        Assert.Equal("webhookReceived", e.ProviderEventType);
        Assert.Equal("FAKE01-INST01-000001", e.ProviderInstanceId);
        Assert.Equal("5511999990001", e.ChatId);
        Assert.False(e.IsGroup);
        Assert.Equal("5511999990001", e.SenderId);
        Assert.Equal("Ana Souza", e.SenderName);
        Assert.False(e.FromMe);
        Assert.Equal(Utc(1767290000), e.OccurredAt);
        Assert.Equal(InboxMessageType.Text, e.MessageType);
        Assert.Equal("Olá! Vocês têm esse produto em azul?", e.Text);
        Assert.Null(e.Media);
    }

    [Fact]
    public void Image_fixture()
    {
        var e = Single(ParseFixture(Folder, "image"));
        Assert.Equal(InboxMessageType.Image, e.MessageType);
        Assert.Equal("3EB0WAPIFAKE00000002", e.ExternalId);
        Assert.Equal(Utc(1767290060), e.OccurredAt);
        Assert.Equal("Foto do produto", e.Caption);
        var media = Assert.IsType<MediaReference>(e.Media);
        Assert.Null(media.Url); // the CDN URL is encrypted
        Assert.Equal("3EB0WAPIFAKE00000002", media.MediaId);
        Assert.Equal("image/jpeg", media.MimeType);
        Assert.Equal(48213, media.FileSize);
        Assert.Equal("https://mmg.whatsapp.net/o1/v/t62.7118-24/f1/m233/FAKE?ccb=9-4", media.Properties["encryptedUrl"]);
        Assert.DoesNotContain("SjINyA==", e.Raw); // the media key is not copied
    }

    [Fact]
    public void Conversation_group_reply_and_delivery_echo()
    {
        var node = Load("text");
        node["isGroup"] = true;
        node["chat"] = new JsonObject { ["id"] = "120363025246125486@g.us" };
        node["sender"] = new JsonObject { ["id"] = "5511999990002", ["pushName"] = "Bruno" };
        node["msgContent"] = new JsonObject { ["extendedTextMessage"] = new JsonObject { ["text"] = "ok", ["contextInfo"] = new JsonObject { ["stanzaId"] = "3EB0WAPIOUT01" } } };
        var e = Single(WApiAdapter().Parse(Request("wapi", node.ToJsonString())));
        Assert.True(e.IsGroup);
        Assert.Equal("120363025246125486@g.us", e.ChatId);
        Assert.Equal("5511999990002", e.SenderId);
        Assert.Equal("3EB0WAPIOUT01", e.ReplyToId);

        var delivery = Load("text");
        delivery["event"] = "webhookDelivery";
        delivery.Remove("fromMe");
        delivery["fromApi"] = true;
        delivery["msgContent"] = new JsonObject { ["conversation"] = "Olá Ana" };
        var d = Single(WApiAdapter().Parse(Request("wapi", delivery.ToJsonString())));
        Assert.True(d.FromMe);
        Assert.Equal("Olá Ana", d.Text);
    }

    [Fact]
    public void Unknown_events_are_kept_as_other()
    {
        var e = Single(WApiAdapter().Parse(Request("wapi", """{"event":"webhookStatus","instanceId":"FAKE01","status":"READ","moment":1767290230}""")));
        Assert.Equal(InboxEventKind.Other, e.Kind);
        Assert.Equal("webhookStatus", e.ProviderEventType);
        Assert.Equal(Utc(1767290230), e.OccurredAt);
    }

    [Theory]
    [InlineData("""{"instanceId":"x"}""", "has no \"event\"")]
    [InlineData("""{"event":"webhookReceived","chat":{"id":"5511"}}""", "webhookReceived has no \"messageId\"")]
    [InlineData("""{"event":"webhookReceived","messageId":"A"}""", "webhookReceived has no \"chat.id\"")]
    public void Unknown_shapes_throw(string json, string expected)
    {
        var ex = Assert.Throws<WebhookParseException>(() => WApiAdapter().Parse(Request("wapi", json)));
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }

    private static JsonObject Load(string name) => JsonNode.Parse(Fixture(Folder, name))!.AsObject();
}
