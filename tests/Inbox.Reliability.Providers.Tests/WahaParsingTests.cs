using System.Text.Json.Nodes;
using Inbox.Reliability.Events;
using static Inbox.Reliability.Providers.Tests.TestSupport;

namespace Inbox.Reliability.Providers.Tests;

public class WahaParsingTests
{
    private const string Folder = "waha";

    [Fact]
    public void Text_fixture()
    {
        var e = Single(ParseFixture(Folder, "text"));
        Assert.Equal(InboxEventKind.Message, e.Kind);
        Assert.Equal("waha", e.Provider);
        Assert.Equal("false_5511999990001@c.us_3EB0WAHAFAKE0000001", e.ExternalId);
        Assert.Equal("waha|inst-1|false_5511999990001@c.us_3EB0WAHAFAKE0000001", e.DedupeKey);
        Assert.Equal("message", e.ProviderEventType);
        Assert.Equal("loja-centro", e.ProviderInstanceId);
        Assert.Equal("5511999990001", e.ChatId);
        Assert.False(e.IsGroup);
        Assert.Equal("5511999990001", e.SenderId);
        Assert.Equal("Ana Souza", e.SenderName);
        Assert.False(e.FromMe);
        Assert.Equal(Utc(1767290000), e.OccurredAt);
        Assert.Equal(InboxMessageType.Text, e.MessageType);
        Assert.Equal("Olá! Vocês têm esse produto em azul?", e.Text);
        Assert.Null(e.ReplyToId);
        Assert.Null(e.Media);
    }

    [Fact]
    public void Image_fixture()
    {
        var e = Single(ParseFixture(Folder, "image"));
        Assert.Equal(InboxMessageType.Image, e.MessageType);
        Assert.Equal("false_5511999990001@c.us_3EB0WAHAFAKE0000002", e.ExternalId);
        Assert.Equal(Utc(1767290060), e.OccurredAt);
        Assert.Equal("Foto do produto", e.Caption);
        Assert.Equal("Foto do produto", e.Text);
        var media = Assert.IsType<MediaReference>(e.Media);
        Assert.Equal("https://waha.example.com/api/files/loja-centro/false_5511999990001@c.us_3EB0WAHAFAKE0000002.jpeg", media.Url);
        Assert.Equal("image/jpeg", media.MimeType);
        Assert.Null(media.FileName);
        Assert.Equal("false_5511999990001@c.us_3EB0WAHAFAKE0000002", media.MediaId);
        Assert.Empty(media.Properties);
    }

    [Fact]
    public void Text_reply_fixture()
    {
        var e = Single(ParseFixture(Folder, "text-reply"));
        Assert.Equal("false_5511999990001@c.us_3EB0WAHAFAKE0000005", e.ExternalId);
        Assert.Equal("Sim, confirmo o pedido.", e.Text);
        Assert.Equal("true_5511999990001@c.us_3EB0WAHAOUT00000001", e.ReplyToId);
        Assert.Equal(Utc(1767290240), e.OccurredAt);
    }

    [Fact]
    public void Ack_fixture()
    {
        var e = Single(ParseFixture(Folder, "ack"));
        Assert.Equal(InboxEventKind.Status, e.Kind);
        Assert.Equal("true_5511999990001@c.us_3EB0WAHAOUT00000001", e.ExternalId);
        Assert.Equal("waha|inst-1|true_5511999990001@c.us_3EB0WAHAOUT00000001|read", e.DedupeKey);
        Assert.Equal(InboxMessageStatus.Read, e.Status);
        Assert.Equal("3", e.ProviderStatus);
        Assert.Equal("5511999990001", e.ChatId);
        Assert.True(e.FromMe);
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(1767290230000), e.OccurredAt);
        Assert.Null(e.StatusError);
    }

    [Fact]
    public void Session_status_fixture()
    {
        var e = Single(ParseFixture(Folder, "session-status"));
        Assert.Equal(InboxEventKind.Connection, e.Kind);
        Assert.Equal("evt_01kdx0fake0000000000000004", e.ExternalId);
        Assert.Equal("waha|inst-1|connection|evt_01kdx0fake0000000000000004", e.DedupeKey);
        Assert.Equal(InboxConnectionState.Connected, e.Connection!.State);
        Assert.Equal("WORKING", e.Connection.ProviderState);
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(1767291205010), e.OccurredAt);
        Assert.Equal("loja-centro", e.ProviderInstanceId);
    }

    [Theory]
    [InlineData("WORKING", InboxConnectionState.Connected)]
    [InlineData("STARTING", InboxConnectionState.Connecting)]
    [InlineData("STOPPED", InboxConnectionState.Disconnected)]
    [InlineData("FAILED", InboxConnectionState.Disconnected)]
    [InlineData("SCAN_QR_CODE", InboxConnectionState.Disconnected)]
    [InlineData("PASSKEY_REQUIRED", InboxConnectionState.Disconnected)]
    [InlineData("SOMETHING", InboxConnectionState.Unknown)]
    public void Session_states(string status, InboxConnectionState expected)
    {
        var node = Load("session-status");
        node["payload"]!["status"] = status;
        var e = Single(WahaAdapter().Parse(Request("waha", node.ToJsonString())));
        Assert.Equal(expected, e.Connection!.State);
        if (expected == InboxConnectionState.Disconnected) Assert.Equal(status, e.Connection.Reason);
    }

    [Theory]
    [InlineData(-1, InboxMessageStatus.Failed, "failed")]
    [InlineData(0, InboxMessageStatus.Pending, "pending")]
    [InlineData(1, InboxMessageStatus.Sent, "sent")]
    [InlineData(2, InboxMessageStatus.Delivered, "delivered")]
    [InlineData(3, InboxMessageStatus.Read, "read")]
    [InlineData(4, InboxMessageStatus.Played, "played")]
    public void Ack_mapping(int ack, InboxMessageStatus expected, string keyPart)
    {
        var node = Load("ack");
        node["payload"]!["ack"] = ack;
        node["payload"]!.AsObject().Remove("ackName");
        var e = Single(WahaAdapter().Parse(Request("waha", node.ToJsonString())));
        Assert.Equal(expected, e.Status);
        Assert.EndsWith("|" + keyPart, e.DedupeKey, StringComparison.Ordinal);
    }

    [Fact]
    public void Ack_error_is_failed_with_an_error()
    {
        var node = Load("ack");
        node["payload"]!["ack"] = -1;
        node["payload"]!["ackName"] = "ERROR";
        var e = Single(WahaAdapter().Parse(Request("waha", node.ToJsonString())));
        Assert.Equal(InboxMessageStatus.Failed, e.Status);
        Assert.Equal("-1", e.ProviderStatus);
        Assert.Equal("waha|inst-1|true_5511999990001@c.us_3EB0WAHAOUT00000001|failed", e.DedupeKey);
        var error = Assert.IsType<StatusError>(e.StatusError);
        Assert.Equal("-1", error.Code);
        Assert.Equal("ERROR", error.Title);
    }

    [Fact]
    public void Group_message_and_group_receipt()
    {
        var node = Load("text");
        node["payload"]!["id"] = "false_120363025246125486@g.us_3EB0WAHAGRP01_5511999990002@c.us";
        node["payload"]!["from"] = "120363025246125486@g.us";
        node["payload"]!["participant"] = "5511999990002@c.us";
        node["payload"]!["_data"] = new JsonObject { ["notifyName"] = "Bruno" };
        var e = Single(WahaAdapter().Parse(Request("waha", node.ToJsonString())));
        Assert.True(e.IsGroup);
        Assert.Equal("120363025246125486@g.us", e.ChatId);
        Assert.Equal("5511999990002", e.SenderId);
        Assert.Equal("Bruno", e.SenderName);

        var ack = Load("ack");
        ack["payload"]!["to"] = "120363025246125486@g.us";
        ack["payload"]!["from"] = "120363025246125486@g.us";
        ack["payload"]!["participant"] = "5511999990002@c.us";
        var receipt = Single(WahaAdapter().Parse(Request("waha", ack.ToJsonString())));
        Assert.True(receipt.IsGroup);
        Assert.Equal("5511999990002", receipt.SenderId);
        Assert.EndsWith("|read|5511999990002", receipt.DedupeKey, StringComparison.Ordinal);
    }

    [Fact]
    public void Message_any_from_me_is_in_the_recipients_chat()
    {
        var node = Load("text");
        node["event"] = "message.any";
        node["payload"]!["id"] = "true_5511999990001@c.us_3EB0WAHAOUT00000002";
        node["payload"]!["fromMe"] = true;
        node["payload"]!["from"] = "5511999990000@c.us";
        node["payload"]!["to"] = "5511999990001@c.us";
        node["payload"]!["source"] = "app";
        var e = Single(WahaAdapter().Parse(Request("waha", node.ToJsonString())));
        Assert.True(e.FromMe);
        Assert.Equal("message.any", e.ProviderEventType);
        Assert.Equal("5511999990001", e.ChatId);
        Assert.Equal("5511999990000", e.SenderId);
        Assert.Equal("Loja Centro", e.SenderName);
    }

    [Fact]
    public void Message_and_message_any_of_the_same_message_share_the_dedupe_key()
    {
        var node = Load("text");
        node["event"] = "message.any";
        node["id"] = "evt_other";
        Assert.Equal(Single(ParseFixture(Folder, "text")).DedupeKey, Single(WahaAdapter().Parse(Request("waha", node.ToJsonString()))).DedupeKey);
    }

    [Fact]
    public void Has_media_with_media_null_is_a_reference_to_fetch_later()
    {
        var node = Load("image");
        node["payload"]!["media"] = null;
        node["payload"]!["body"] = null;
        node["payload"]!["_data"] = new JsonObject { ["Info"] = new JsonObject { ["MediaType"] = "image" } };
        var e = Single(WahaAdapter().Parse(Request("waha", node.ToJsonString())));
        Assert.Equal(InboxMessageType.Image, e.MessageType);
        var media = Assert.IsType<MediaReference>(e.Media);
        Assert.Null(media.Url);
        Assert.Equal("false_5511999990001@c.us_3EB0WAHAFAKE0000002", media.MediaId);
        Assert.Equal("true", media.Properties["notDownloaded"]);
        Assert.Null(e.Text);
    }

    [Fact]
    public void Has_media_with_media_null_and_no_hint_is_unknown_with_a_reference()
    {
        var node = Load("image");
        node["payload"]!["media"] = null;
        var e = Single(WahaAdapter().Parse(Request("waha", node.ToJsonString())));
        Assert.Equal(InboxMessageType.Unknown, e.MessageType);
        Assert.NotNull(e.Media);
        Assert.Equal("Foto do produto", e.Caption);
    }

    [Fact]
    public void Media_error_is_kept()
    {
        var node = Load("image");
        node["payload"]!["media"]!["url"] = null;
        node["payload"]!["media"]!["error"] = "download failed";
        Assert.Equal("download failed", Single(WahaAdapter().Parse(Request("waha", node.ToJsonString()))).Media!.Properties["providerError"]);
    }

    [Theory]
    [InlineData("video/mp4", null, InboxMessageType.Video)]
    [InlineData("audio/ogg; codecs=opus", null, InboxMessageType.Audio)]
    [InlineData("application/pdf", "nota.pdf", InboxMessageType.Document)]
    [InlineData("image/webp", null, InboxMessageType.Sticker)]
    public void Media_types_from_the_mime_type(string mimeType, string? fileName, InboxMessageType expected)
    {
        var node = Load("image");
        node["payload"]!["media"]!["mimetype"] = mimeType;
        node["payload"]!["media"]!["filename"] = fileName;
        var e = Single(WahaAdapter().Parse(Request("waha", node.ToJsonString())));
        Assert.Equal(expected, e.MessageType);
        Assert.Equal(fileName, e.Media!.FileName);
        Assert.Equal(mimeType, e.Media.MimeType);
    }

    [Fact]
    public void Location_contacts_and_reactions()
    {
        var location = Load("text");
        location["payload"]!["body"] = null;
        location["payload"]!["location"] = new JsonObject { ["latitude"] = "-23.5505", ["longitude"] = "-46.6333", ["description"] = "Loja Centro" };
        var l = Single(WahaAdapter().Parse(Request("waha", location.ToJsonString())));
        Assert.Equal(InboxMessageType.Location, l.MessageType);
        Assert.Equal(new LocationInfo(-23.5505, -46.6333) { Name = "Loja Centro" }, l.Location);

        var contact = Load("text");
        contact["payload"]!["body"] = null;
        contact["payload"]!["vCards"] = new JsonArray("BEGIN:VCARD\nVERSION:3.0\nFN:Bruno Lima\nTEL;type=CELL;waid=5511999990002:+55 11 99999-0002\nEND:VCARD");
        var c = Single(WahaAdapter().Parse(Request("waha", contact.ToJsonString())));
        Assert.Equal(InboxMessageType.Contact, c.MessageType);
        Assert.Equal("Bruno Lima", Assert.Single(c.Contacts).Name);
        Assert.Equal("5511999990002", Assert.Single(c.Contacts[0].Phones).WaId);

        var reaction = Load("text");
        reaction["event"] = "message.reaction";
        reaction["payload"] = new JsonObject
        {
            ["id"] = "false_5511999990001@c.us_3EB0WAHAREACT01",
            ["from"] = "5511999990001@c.us",
            ["fromMe"] = false,
            ["to"] = "5511999990000@c.us",
            ["timestamp"] = 1767290300,
            ["reaction"] = new JsonObject { ["text"] = "🙏", ["messageId"] = "true_5511999990001@c.us_3EB0WAHAOUT00000001" },
        };
        var r = Single(WahaAdapter().Parse(Request("waha", reaction.ToJsonString())));
        Assert.Equal(InboxMessageType.Reaction, r.MessageType);
        Assert.Equal(new ReactionInfo("🙏", "true_5511999990001@c.us_3EB0WAHAOUT00000001"), r.Reaction);
        Assert.Equal(Utc(1767290300), r.OccurredAt);
    }

    [Fact]
    public void Unknown_event_is_kept_as_other_with_the_envelope_id()
    {
        var node = Load("session-status");
        node["event"] = "presence.update";
        node["id"] = "evt_presence_1";
        node["payload"] = new JsonObject { ["id"] = "5511999990001@c.us", ["presences"] = new JsonArray() };
        var e = Single(WahaAdapter().Parse(Request("waha", node.ToJsonString())));
        Assert.Equal(InboxEventKind.Other, e.Kind);
        Assert.Equal("evt_presence_1", e.ExternalId);
        Assert.Equal("waha|inst-1|other|evt_presence_1", e.DedupeKey);
        Assert.Equal("presence.update", e.ProviderEventType);
    }

    [Theory]
    [InlineData("""{"session":"x","payload":{}}""", "has no \"event\"")]
    [InlineData("""{"event":"message","session":"x"}""", "message has no \"payload\" object")]
    [InlineData("""{"event":"message","payload":{"from":"5511@c.us"}}""", "message payload has no \"id\"")]
    [InlineData("""{"event":"message.ack","payload":{"id":"A","from":"5511@c.us"}}""", "message.ack payload has no \"ack\"")]
    [InlineData("""{"event":"message.ack","payload":{"id":"A","ack":3}}""", "message.ack payload has no \"from\"")]
    public void Unknown_shapes_throw(string json, string expected)
    {
        var ex = Assert.Throws<WebhookParseException>(() => WahaAdapter().Parse(Request("waha", json)));
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }

    private static JsonObject Load(string name) => JsonNode.Parse(Fixture(Folder, name))!.AsObject();
}
