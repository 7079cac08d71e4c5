using System.Text.Json;
using System.Text.Json.Nodes;
using Inbox.Reliability.Events;
using static Inbox.Reliability.Providers.Tests.TestSupport;

namespace Inbox.Reliability.Providers.Tests;

public class ZApiParsingTests
{
    private const string Folder = "z-api";
    private const string InstanceId = "3E0FAKEINSTANCE00000000000000001";

    [Fact]
    public void Text_fixture()
    {
        var e = Single(ParseFixture(Folder, "text"));
        Assert.Equal(InboxEventKind.Message, e.Kind);
        Assert.Equal("zapi", e.Provider);
        Assert.Equal("3EB0ZAPIFAKE00000001", e.ExternalId);
        Assert.Equal("zapi|inst-1|3EB0ZAPIFAKE00000001", e.DedupeKey);
        Assert.Equal("ReceivedCallback", e.ProviderEventType);
        Assert.Equal(InstanceId, e.ProviderInstanceId);
        Assert.Equal("5511999990001", e.ChatId);
        Assert.False(e.IsGroup);
        Assert.Equal("5511999990001", e.SenderId);
        Assert.Equal("Ana Souza", e.SenderName);
        Assert.False(e.FromMe);
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(1767290000000), e.OccurredAt);
        Assert.Equal(Utc(1767290000), e.OccurredAt);
        Assert.Equal(InboxMessageType.Text, e.MessageType);
        Assert.Equal("Olá! Vocês têm esse produto em azul?", e.Text);
        Assert.Null(e.ReplyToId);
        Assert.False(e.IsForwarded);
        Assert.False(e.IsEdit);
        Assert.Null(e.Media);
    }

    [Fact]
    public void Image_fixture()
    {
        var e = Single(ParseFixture(Folder, "image"));
        Assert.Equal(InboxMessageType.Image, e.MessageType);
        Assert.Equal("3EB0ZAPIFAKE00000002", e.ExternalId);
        Assert.Equal(Utc(1767290060), e.OccurredAt);
        Assert.Equal("Foto do produto", e.Caption);
        Assert.Equal("Foto do produto", e.Text);
        var media = Assert.IsType<MediaReference>(e.Media);
        Assert.Equal("https://storage.z-api.io/instances/3E0FAKE/3EB0ZAPIFAKE00000002.jpeg", media.Url);
        Assert.Equal("image/jpeg", media.MimeType);
        Assert.Null(media.MediaId);
        Assert.Equal("https://storage.z-api.io/instances/3E0FAKE/3EB0ZAPIFAKE00000002-thumb.jpeg", media.Properties["thumbnailUrl"]);
    }

    [Fact]
    public void Audio_fixture()
    {
        var e = Single(ParseFixture(Folder, "audio"));
        Assert.Equal(InboxMessageType.Audio, e.MessageType);
        Assert.Equal(Utc(1767290120), e.OccurredAt);
        Assert.Equal("https://storage.z-api.io/instances/3E0FAKE/3EB0ZAPIFAKE00000003.ogg", e.Media!.Url);
        Assert.Equal("audio/ogg; codecs=opus", e.Media.MimeType);
        Assert.Null(e.Text);
    }

    [Fact]
    public void Document_fixture_has_the_file_name()
    {
        var e = Single(ParseFixture(Folder, "document"));
        Assert.Equal(InboxMessageType.Document, e.MessageType);
        Assert.Equal("3EB0ZAPIFAKE00000004", e.ExternalId);
        Assert.Equal(Utc(1767290180), e.OccurredAt);
        Assert.Equal("https://storage.z-api.io/instances/3E0FAKE/comprovante.pdf", e.Media!.Url);
        Assert.Equal("comprovante.pdf", e.Media.FileName);
        Assert.Equal("application/pdf", e.Media.MimeType);
    }

    [Fact]
    public void Status_fixture()
    {
        var e = Single(ParseFixture(Folder, "status"));
        Assert.Equal(InboxEventKind.Status, e.Kind);
        Assert.Equal("3EB0ZAPIOUT000000001", e.ExternalId);
        Assert.Equal("zapi|inst-1|3EB0ZAPIOUT000000001|read", e.DedupeKey);
        Assert.Equal(InboxMessageStatus.Read, e.Status);
        Assert.Equal("READ", e.ProviderStatus);
        Assert.Equal("5511999990001", e.ChatId);
        Assert.True(e.FromMe);
        Assert.Equal(Utc(1767290230), e.OccurredAt);
        Assert.Null(e.StatusError);
    }

    [Fact]
    public void Delivery_fixture_is_a_sent_status_at_capture_time()
    {
        var e = Single(ParseFixture(Folder, "delivery"));
        Assert.Equal(InboxEventKind.Status, e.Kind);
        Assert.Equal("3EB0ZAPIOUT000000001", e.ExternalId);
        Assert.Equal(InboxMessageStatus.Sent, e.Status);
        Assert.Equal("zapi|inst-1|3EB0ZAPIOUT000000001|sent", e.DedupeKey);
        Assert.Equal("5511999990001", e.ChatId);
        Assert.True(e.FromMe);
        Assert.Equal(ReceivedAt, e.OccurredAt);
        Assert.Null(e.StatusError);
    }

    [Fact]
    public void Connected_fixture()
    {
        var e = Single(ParseFixture(Folder, "connected"));
        Assert.Equal(InboxEventKind.Connection, e.Kind);
        Assert.Equal(InboxConnectionState.Connected, e.Connection!.State);
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(1767291300000), e.OccurredAt);
        Assert.Equal(InstanceId, e.ProviderInstanceId);
        Assert.StartsWith("sha256:", e.ExternalId, StringComparison.Ordinal);
        Assert.Equal("zapi|inst-1|connection|" + e.ExternalId, e.DedupeKey);
        Assert.Null(e.ChatId);
    }

    [Fact]
    public void Disconnected_fixture_time_in_seconds_is_recognized()
    {
        var e = Single(ParseFixture(Folder, "disconnected"));
        Assert.Equal(InboxEventKind.Connection, e.Kind);
        Assert.Equal(InboxConnectionState.Disconnected, e.Connection!.State);
        Assert.Equal("Device has been disconnected", e.Connection.Reason);
        Assert.Equal(Utc(1767291000), e.OccurredAt);
    }

    [Fact]
    public void Status_with_three_ids_gives_three_events_with_their_own_keys()
    {
        var json = """{"instanceId":"I1","status":"RECEIVED","ids":["A1","A2","A3"],"momment":1767290230000,"phoneDevice":0,"phone":"5511999990001","type":"MessageStatusCallback","isGroup":false}""";
        var events = ZApiAdapter().Parse(Request("zapi", json));
        Assert.Equal(3, events.Count);
        Assert.Equal(["A1", "A2", "A3"], events.Select(e => e.ExternalId));
        Assert.Equal(["zapi|inst-1|A1|delivered", "zapi|inst-1|A2|delivered", "zapi|inst-1|A3|delivered"], events.Select(e => e.DedupeKey));
        Assert.All(events, e => Assert.Equal(InboxMessageStatus.Delivered, e.Status));
        Assert.All(events, e => Assert.Equal("RECEIVED", e.ProviderStatus));
        Assert.All(events, e => Assert.Equal(Utc(1767290230), e.OccurredAt));
    }

    [Theory]
    [InlineData("SENT", InboxMessageStatus.Sent, true)]
    [InlineData("RECEIVED", InboxMessageStatus.Delivered, true)]
    [InlineData("READ", InboxMessageStatus.Read, true)]
    [InlineData("READ_BY_ME", InboxMessageStatus.Read, false)]
    [InlineData("PLAYED", InboxMessageStatus.Played, true)]
    [InlineData("SOMETHING_NEW", InboxMessageStatus.Unknown, true)]
    public void Status_mapping(string providerStatus, InboxMessageStatus expected, bool fromMe)
    {
        var json = $$"""{"instanceId":"I1","status":"{{providerStatus}}","ids":["A1"],"momment":1767290230000,"phone":"5511999990001","type":"MessageStatusCallback"}""";
        var e = Single(ZApiAdapter().Parse(Request("zapi", json)));
        Assert.Equal(expected, e.Status);
        Assert.Equal(fromMe, e.FromMe);
    }

    [Fact]
    public void Status_without_ids_is_kept_as_other()
    {
        var e = Single(ZApiAdapter().Parse(Request("zapi", """{"instanceId":"I1","status":"READ","ids":[],"phone":"5511999990001","type":"MessageStatusCallback"}""")));
        Assert.Equal(InboxEventKind.Other, e.Kind);
        Assert.Equal("MessageStatusCallback", e.ProviderEventType);
    }

    [Fact]
    public void Delivery_with_error_is_failed()
    {
        var json = """{"phone":"5511999990001","zaapId":"Z1","messageId":"3EB0OUT2","type":"DeliveryCallback","instanceId":"I1","error":"Number is not on WhatsApp"}""";
        var e = Single(ZApiAdapter().Parse(Request("zapi", json)));
        Assert.Equal(InboxMessageStatus.Failed, e.Status);
        Assert.Equal("zapi|inst-1|3EB0OUT2|failed", e.DedupeKey);
        Assert.Equal("Number is not on WhatsApp", e.StatusError!.Message);
        Assert.Equal("DeliveryCallback", e.StatusError.Title);
    }

    [Fact]
    public void Group_message_reply_uses_group_chat_and_participant_sender()
    {
        var node = Load("text");
        node["isGroup"] = true;
        node["phone"] = "120363019502650977-group";
        node["participantPhone"] = "5511999990002";
        node["senderName"] = "Bruno";
        node["chatName"] = "Clientes VIP";
        node["referenceMessageId"] = "3EB0ZAPIOUT000000001";
        node["messageId"] = "3EB0ZAPIGRP00000001";
        var e = Single(ZApiAdapter().Parse(Request("zapi", node.ToJsonString())));
        Assert.True(e.IsGroup);
        Assert.Equal("120363019502650977-group", e.ChatId);
        Assert.Equal("5511999990002", e.SenderId);
        Assert.Equal("Bruno", e.SenderName);
        Assert.Equal("3EB0ZAPIOUT000000001", e.ReplyToId);
    }

    [Fact]
    public void Group_is_recognized_by_the_phone_suffix_alone()
    {
        var node = Load("text");
        node.Remove("isGroup");
        node["phone"] = "120363019502650977-group";
        node["participantPhone"] = "5511999990002";
        Assert.True(Single(ZApiAdapter().Parse(Request("zapi", node.ToJsonString()))).IsGroup);
    }

    [Fact]
    public void From_me_echo_is_sent_by_the_connected_phone()
    {
        var node = Load("text");
        node["fromMe"] = true;
        node["messageId"] = "3EB0ZAPIOUT000000009";
        var e = Single(ZApiAdapter().Parse(Request("zapi", node.ToJsonString())));
        Assert.True(e.FromMe);
        Assert.Equal("5511999990001", e.ChatId);
        Assert.Equal("5511999990000", e.SenderId);
    }

    [Fact]
    public void Edit_of_a_message_gets_its_own_dedupe_key()
    {
        var original = Single(ParseFixture(Folder, "text"));
        var node = Load("text");
        node["isEdit"] = true;
        node["momment"] = 1767290100000;
        node["text"] = new JsonObject { ["message"] = "Olá! Vocês têm esse produto em verde?" };
        var edit = Single(ZApiAdapter().Parse(Request("zapi", node.ToJsonString())));
        Assert.True(edit.IsEdit);
        Assert.Equal(original.ExternalId, edit.ExternalId);
        Assert.Equal("zapi|inst-1|3EB0ZAPIFAKE00000001|edit:1767290100000", edit.DedupeKey);
        Assert.NotEqual(original.DedupeKey, edit.DedupeKey);
    }

    [Fact]
    public void Other_content_types()
    {
        var video = Message("V1", new JsonObject { ["video"] = new JsonObject { ["videoUrl"] = "https://storage.z-api.io/v.mp4", ["caption"] = "olha", ["mimeType"] = "video/mp4" } });
        var sticker = Message("S1", new JsonObject { ["sticker"] = new JsonObject { ["stickerUrl"] = "https://storage.z-api.io/s.webp", ["mimeType"] = "image/webp" } });
        var location = Message("L1", new JsonObject { ["location"] = new JsonObject { ["longitude"] = -46.6333, ["latitude"] = -23.5505, ["address"] = "Praça da Sé", ["url"] = "https://maps.example/x" } });
        var contact = Message("C1", new JsonObject { ["contact"] = new JsonObject { ["displayName"] = "Bruno Lima", ["vCard"] = "BEGIN:VCARD\nVERSION:3.0\nFN:Bruno Lima\nTEL;type=CELL;waid=5511999990002:+55 11 99999-0002\nEND:VCARD", ["phones"] = new JsonArray("5511999990002") } });
        var reaction = Message("R1", new JsonObject { ["reaction"] = new JsonObject { ["value"] = "❤️", ["time"] = 1767290000000, ["reactionBy"] = "5511999990001", ["referencedMessage"] = new JsonObject { ["messageId"] = "3EB0ZAPIOUT000000001", ["fromMe"] = true, ["phone"] = "5511999990001" } } });
        var document = Message("D1", new JsonObject { ["document"] = new JsonObject { ["documentUrl"] = "https://storage.z-api.io/nota.pdf", ["mimeType"] = "application/pdf", ["fileName"] = "nota.pdf", ["caption"] = "segue a nota" } });

        Assert.Equal(InboxMessageType.Video, video.MessageType);
        Assert.Equal("olha", video.Caption);
        Assert.Equal("https://storage.z-api.io/v.mp4", video.Media!.Url);
        Assert.Equal(InboxMessageType.Sticker, sticker.MessageType);
        Assert.Equal("image/webp", sticker.Media!.MimeType);
        Assert.Equal(InboxMessageType.Location, location.MessageType);
        Assert.Equal(new LocationInfo(-23.5505, -46.6333) { Address = "Praça da Sé", Url = "https://maps.example/x" }, location.Location);
        Assert.Equal(InboxMessageType.Contact, contact.MessageType);
        var card = Assert.Single(contact.Contacts);
        Assert.Equal("Bruno Lima", card.Name);
        Assert.Equal(new ContactPhone("5511999990002", "5511999990002"), Assert.Single(card.Phones));
        Assert.Equal(InboxMessageType.Reaction, reaction.MessageType);
        Assert.Equal(new ReactionInfo("❤️", "3EB0ZAPIOUT000000001"), reaction.Reaction);
        Assert.Equal(InboxMessageType.Document, document.MessageType);
        Assert.Equal("nota.pdf", document.Media!.FileName);
        Assert.Equal("segue a nota", document.Caption);
    }

    [Fact]
    public void Unknown_callback_type_is_kept_as_other()
    {
        var e = Single(ZApiAdapter().Parse(Request("zapi", """{"type":"PresenceChatCallback","phone":"5511999990001","status":"COMPOSING","lastSeen":null,"instanceId":"I1"}""")));
        Assert.Equal(InboxEventKind.Other, e.Kind);
        Assert.Equal("PresenceChatCallback", e.ProviderEventType);
        Assert.Equal("I1", e.ProviderInstanceId);
        Assert.Contains("COMPOSING", e.Raw);
    }

    [Theory]
    [InlineData("""{"phone":"5511999990001"}""", "has no \"type\"")]
    [InlineData("""{"type":"ReceivedCallback","phone":"5511999990001"}""", "ReceivedCallback has no \"messageId\"")]
    [InlineData("""{"type":"ReceivedCallback","messageId":"X"}""", "ReceivedCallback has no \"phone\"")]
    [InlineData("""{"type":"MessageStatusCallback","ids":["X"],"status":"READ"}""", "MessageStatusCallback has no \"phone\"")]
    [InlineData("""{"type":"DeliveryCallback","phone":"5511"}""", "DeliveryCallback has no \"messageId\"")]
    public void Unknown_shapes_throw(string json, string expected)
    {
        var ex = Assert.Throws<WebhookParseException>(() => ZApiAdapter().Parse(Request("zapi", json)));
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }

    private static JsonObject Load(string name) => JsonNode.Parse(Fixture(Folder, name))!.AsObject();

    private static InboxEvent Message(string id, JsonObject content)
    {
        var node = Load("text");
        node.Remove("text");
        node["messageId"] = id;
        foreach (var (key, value) in content.ToList())
        {
            content.Remove(key);
            node[key] = value;
        }

        var e = Single(ZApiAdapter().Parse(Request("zapi", node.ToJsonString())));
        AssertWellFormed(e);
        return e;
    }
}
