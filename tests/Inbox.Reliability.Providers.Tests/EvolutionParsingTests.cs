using System.Text.Json.Nodes;
using Inbox.Reliability.Events;
using static Inbox.Reliability.Providers.Tests.TestSupport;

namespace Inbox.Reliability.Providers.Tests;

public class EvolutionParsingTests
{
    private const string Folder = "evolution";

    [Fact]
    public void Text_fixture()
    {
        var e = Single(ParseFixture(Folder, "text"));
        Assert.Equal(InboxEventKind.Message, e.Kind);
        Assert.Equal("evolution", e.Provider);
        Assert.Equal("3EB0EVOFAKE000000001", e.ExternalId);
        Assert.Equal("evolution|inst-1|3EB0EVOFAKE000000001", e.DedupeKey);
        Assert.Equal("messages.upsert", e.ProviderEventType);
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
        Assert.DoesNotContain("APIKEY", e.Raw);
    }

    [Fact]
    public void Image_fixture_keeps_references_but_never_the_base64()
    {
        var e = Single(ParseFixture(Folder, "image"));
        Assert.Equal(InboxMessageType.Image, e.MessageType);
        Assert.Equal("3EB0EVOFAKE000000002", e.ExternalId);
        Assert.Equal(Utc(1767290060), e.OccurredAt);
        Assert.Equal("Foto do produto", e.Caption);
        Assert.Equal("Foto do produto", e.Text);
        var media = Assert.IsType<MediaReference>(e.Media);
        Assert.Equal("https://s3.example.com/evolution/6f1c2d3e/5511999990001@s.whatsapp.net/imageMessage/1767290061000_3EB0EVOFAKE000000002.jpeg", media.Url);
        Assert.Equal("3EB0EVOFAKE000000002", media.MediaId);
        Assert.Equal("image/jpeg", media.MimeType);
        Assert.Equal(48213, media.FileSize);
        Assert.Equal(Convert.ToBase64String(new byte[] { 171, 82, 112, 211 }), media.Sha256);
        Assert.Equal("true", media.Properties["hasBase64"]);
        Assert.StartsWith("https://mmg.whatsapp.net/", media.Properties["encryptedUrl"], StringComparison.Ordinal);
        Assert.StartsWith("/o1/v/t62.7118-24/", media.Properties["directPath"], StringComparison.Ordinal);

        Assert.NotNull(e.Raw);
        Assert.DoesNotContain("/9j/4AAQ", e.Raw);
        Assert.DoesNotContain("\"base64\"", e.Raw);
        Assert.DoesNotContain("jpegThumbnail", e.Raw);
        Assert.DoesNotContain("\"mediaKey\":", e.Raw);
        Assert.DoesNotContain("APIKEY", e.Raw);
        Assert.DoesNotContain(media.Properties.Values, v => v.Contains("/9j/", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("status-update", InboxMessageStatus.Read, "READ", "read")]
    [InlineData("status-update-delivered", InboxMessageStatus.Delivered, "DELIVERY_ACK", "delivered")]
    public void Status_fixtures(string name, InboxMessageStatus status, string providerStatus, string keyPart)
    {
        var e = Single(ParseFixture(Folder, name));
        Assert.Equal(InboxEventKind.Status, e.Kind);
        Assert.Equal("3EB0EVOOUT0000000001", e.ExternalId);
        Assert.Equal("evolution|inst-1|3EB0EVOOUT0000000001|" + keyPart, e.DedupeKey);
        Assert.Equal(status, e.Status);
        Assert.Equal(providerStatus, e.ProviderStatus);
        Assert.Equal("5511999990001", e.ChatId);
        Assert.True(e.FromMe);
        Assert.Null(e.SenderId);
        Assert.Equal(ReceivedAt, e.OccurredAt); // date_time is the server's local wall clock: not used.
        Assert.Equal("messages.update", e.ProviderEventType);
    }

    [Fact]
    public void Connection_fixture()
    {
        var e = Single(ParseFixture(Folder, "connection-update"));
        Assert.Equal(InboxEventKind.Connection, e.Kind);
        Assert.Equal(InboxConnectionState.Connected, e.Connection!.State);
        Assert.Equal("open", e.Connection.ProviderState);
        Assert.Equal("200", e.Connection.Reason);
        Assert.Equal("loja-centro", e.ProviderInstanceId);
        Assert.Equal("evolution|inst-1|connection|" + e.ExternalId, e.DedupeKey);
        Assert.DoesNotContain("APIKEY", e.Raw);
    }

    [Theory]
    [InlineData("open", InboxConnectionState.Connected)]
    [InlineData("connecting", InboxConnectionState.Connecting)]
    [InlineData("close", InboxConnectionState.Disconnected)]
    [InlineData("refused", InboxConnectionState.Disconnected)]
    [InlineData("weird", InboxConnectionState.Unknown)]
    public void Connection_states(string state, InboxConnectionState expected)
    {
        var node = Load("connection-update");
        node["data"]!["state"] = state;
        node["data"]!["statusReason"] = 401;
        var e = Single(EvolutionAdapter().Parse(Request("evolution", node.ToJsonString())));
        Assert.Equal(expected, e.Connection!.State);
        Assert.Equal("401", e.Connection.Reason);
    }

    [Fact]
    public void Two_connection_updates_at_different_times_are_not_duplicates_but_a_retry_is()
    {
        var first = Load("connection-update");
        var second = Load("connection-update");
        second["date_time"] = "2026-01-01T16:10:00.000Z";
        var a = Single(EvolutionAdapter().Parse(Request("evolution", first.ToJsonString())));
        var b = Single(EvolutionAdapter().Parse(Request("evolution", second.ToJsonString())));
        var retry = Single(EvolutionAdapter().Parse(Request("evolution", Fixture(Folder, "connection-update"))));
        Assert.NotEqual(a.DedupeKey, b.DedupeKey);
        Assert.Equal(a.DedupeKey, retry.DedupeKey);
    }

    [Fact]
    public void Extended_text_reply()
    {
        var node = Load("text");
        var data = node["data"]!;
        data["key"]!["id"] = "3EB0EVOREPLY0001";
        data["message"] = new JsonObject { ["extendedTextMessage"] = new JsonObject { ["text"] = "Sim, quero o azul", ["contextInfo"] = new JsonObject { ["stanzaId"] = "3EB0EVOOUT0000000001", ["participant"] = "5511999990000@s.whatsapp.net" } } };
        data["messageType"] = "extendedTextMessage";
        var e = Single(EvolutionAdapter().Parse(Request("evolution", node.ToJsonString())));
        Assert.Equal(InboxMessageType.Text, e.MessageType);
        Assert.Equal("Sim, quero o azul", e.Text);
        Assert.Equal("3EB0EVOOUT0000000001", e.ReplyToId);
    }

    [Fact]
    public void Reply_from_the_top_level_context_info()
    {
        var node = Load("text");
        node["data"]!["contextInfo"] = new JsonObject { ["stanzaId"] = "3EB0EVOOUT0000000001", ["isForwarded"] = true };
        var e = Single(EvolutionAdapter().Parse(Request("evolution", node.ToJsonString())));
        Assert.Equal("3EB0EVOOUT0000000001", e.ReplyToId);
        Assert.True(e.IsForwarded);
    }

    [Fact]
    public void Lid_chat_uses_the_phone_number_alternative_so_the_chat_id_is_stable()
    {
        var node = Load("text");
        node["data"]!["key"] = new JsonObject
        {
            ["remoteJid"] = "81000000000001@lid",
            ["remoteJidAlt"] = "5511999990001@s.whatsapp.net",
            ["addressingMode"] = "lid",
            ["fromMe"] = false,
            ["id"] = "3EB0EVOLID0000001",
        };
        var e = Single(EvolutionAdapter().Parse(Request("evolution", node.ToJsonString())));
        Assert.Equal("5511999990001", e.ChatId);
        Assert.Equal("5511999990001", e.SenderId);
        Assert.Equal(Single(ParseFixture(Folder, "text")).ChatId, e.ChatId);
    }

    [Fact]
    public void Lid_chat_without_alternative_keeps_the_lid()
    {
        var node = Load("text");
        node["data"]!["key"] = new JsonObject { ["remoteJid"] = "81000000000001@lid", ["fromMe"] = false, ["id"] = "3EB0EVOLID0000002" };
        var e = Single(EvolutionAdapter().Parse(Request("evolution", node.ToJsonString())));
        Assert.Equal("81000000000001@lid", e.ChatId);
    }

    [Fact]
    public void Group_message_with_participant()
    {
        var node = Load("text");
        node["data"]!["key"] = new JsonObject
        {
            ["remoteJid"] = "120363025246125486@g.us",
            ["fromMe"] = false,
            ["id"] = "3EB0EVOGRP0000001",
            ["participant"] = "5511999990002:12@s.whatsapp.net",
        };
        node["data"]!["pushName"] = "Bruno";
        var e = Single(EvolutionAdapter().Parse(Request("evolution", node.ToJsonString())));
        Assert.True(e.IsGroup);
        Assert.Equal("120363025246125486@g.us", e.ChatId);
        Assert.Equal("5511999990002", e.SenderId);
        Assert.Equal("Bruno", e.SenderName);
    }

    [Fact]
    public void Group_member_with_lid_uses_participant_alternative()
    {
        var node = Load("text");
        node["data"]!["key"] = new JsonObject
        {
            ["remoteJid"] = "120363025246125486@g.us",
            ["fromMe"] = false,
            ["id"] = "3EB0EVOGRP0000002",
            ["participant"] = "81000000000002@lid",
            ["participantAlt"] = "5511999990002@s.whatsapp.net",
        };
        Assert.Equal("5511999990002", Single(EvolutionAdapter().Parse(Request("evolution", node.ToJsonString()))).SenderId);
    }

    [Fact]
    public void From_me_message_is_sent_by_the_owner()
    {
        var node = Load("text");
        node["data"]!["key"]!["fromMe"] = true;
        node["data"]!["key"]!["id"] = "3EB0EVOOUT0000000002";
        var e = Single(EvolutionAdapter().Parse(Request("evolution", node.ToJsonString())));
        Assert.True(e.FromMe);
        Assert.Equal("5511999990001", e.ChatId);
        Assert.Equal("5511999990000", e.SenderId);
    }

    [Theory]
    [InlineData(48213, 0, 48213L)]
    [InlineData(705032704, 1, 5000000000L)]
    [InlineData(-1, 0, 4294967295L)]
    public void File_length_as_low_high_long(long low, long high, long expected)
    {
        var node = Load("image");
        node["data"]!["message"]!["imageMessage"]!["fileLength"] = new JsonObject { ["low"] = low, ["high"] = high, ["unsigned"] = true };
        Assert.Equal(expected, Single(EvolutionAdapter().Parse(Request("evolution", node.ToJsonString()))).Media!.FileSize);
    }

    [Fact]
    public void File_length_as_number_or_string()
    {
        var node = Load("image");
        node["data"]!["message"]!["imageMessage"]!["fileLength"] = "123456";
        Assert.Equal(123456, Single(EvolutionAdapter().Parse(Request("evolution", node.ToJsonString()))).Media!.FileSize);
        node["data"]!["message"]!["imageMessage"]!["fileLength"] = 654321;
        Assert.Equal(654321, Single(EvolutionAdapter().Parse(Request("evolution", node.ToJsonString()))).Media!.FileSize);
    }

    [Fact]
    public void Media_without_base64_or_s3_has_no_url_but_the_message_id_to_fetch_it()
    {
        var node = Load("image");
        node["data"]!["message"]!.AsObject().Remove("base64");
        node["data"]!["message"]!.AsObject().Remove("mediaUrl");
        var media = Single(EvolutionAdapter().Parse(Request("evolution", node.ToJsonString()))).Media!;
        Assert.Null(media.Url);
        Assert.Equal("3EB0EVOFAKE000000002", media.MediaId);
        Assert.False(media.Properties.ContainsKey("hasBase64"));
    }

    [Fact]
    public void Other_content_types()
    {
        var document = Message("documentMessage", new JsonObject { ["documentMessage"] = new JsonObject { ["url"] = "https://mmg.whatsapp.net/d", ["mimetype"] = "application/pdf", ["fileName"] = "nota.pdf", ["caption"] = "segue", ["fileLength"] = new JsonObject { ["low"] = 1000, ["high"] = 0, ["unsigned"] = true } } });
        var documentWithCaption = Message("documentWithCaptionMessage", new JsonObject { ["documentWithCaptionMessage"] = new JsonObject { ["message"] = new JsonObject { ["documentMessage"] = new JsonObject { ["mimetype"] = "application/pdf", ["fileName"] = "b.pdf", ["caption"] = "cap" } } } });
        var video = Message("videoMessage", new JsonObject { ["videoMessage"] = new JsonObject { ["mimetype"] = "video/mp4", ["caption"] = "olha" } });
        var audio = Message("audioMessage", new JsonObject { ["audioMessage"] = new JsonObject { ["mimetype"] = "audio/ogg; codecs=opus", ["ptt"] = true } });
        var sticker = Message("stickerMessage", new JsonObject { ["stickerMessage"] = new JsonObject { ["mimetype"] = "image/webp", ["isAnimated"] = false } });
        var location = Message("locationMessage", new JsonObject { ["locationMessage"] = new JsonObject { ["degreesLatitude"] = -23.5505, ["degreesLongitude"] = -46.6333, ["name"] = "Loja", ["address"] = "Praça da Sé" } });
        var contact = Message("contactMessage", new JsonObject { ["contactMessage"] = new JsonObject { ["displayName"] = "Bruno", ["vcard"] = "BEGIN:VCARD\nVERSION:3.0\nN:;Bruno;;;\nFN:Bruno\nitem1.TEL;waid=5511999990002:+55 11 99999-0002\nitem1.X-ABLabel:Celular\nEND:VCARD" } });
        var reaction = Message("reactionMessage", new JsonObject { ["reactionMessage"] = new JsonObject { ["key"] = new JsonObject { ["remoteJid"] = "5511999990001@s.whatsapp.net", ["fromMe"] = true, ["id"] = "3EB0EVOOUT0000000001" }, ["text"] = "👍", ["senderTimestampMs"] = new JsonObject { ["low"] = 1, ["high"] = 0, ["unsigned"] = false } } });
        var ephemeral = Message("ephemeralMessage", new JsonObject { ["ephemeralMessage"] = new JsonObject { ["message"] = new JsonObject { ["extendedTextMessage"] = new JsonObject { ["text"] = "some" } } } });
        var protocol = Message("protocolMessage", new JsonObject { ["protocolMessage"] = new JsonObject { ["type"] = 0 } });

        Assert.Equal(InboxMessageType.Document, document.MessageType);
        Assert.Equal("nota.pdf", document.Media!.FileName);
        Assert.Equal(1000, document.Media.FileSize);
        Assert.Equal("segue", document.Caption);
        Assert.Equal(InboxMessageType.Document, documentWithCaption.MessageType);
        Assert.Equal("b.pdf", documentWithCaption.Media!.FileName);
        Assert.Equal("cap", documentWithCaption.Caption);
        Assert.Equal(InboxMessageType.Video, video.MessageType);
        Assert.Equal("olha", video.Text);
        Assert.Equal(InboxMessageType.Audio, audio.MessageType);
        Assert.Equal("true", audio.Media!.Properties["voice"]);
        Assert.Equal(InboxMessageType.Sticker, sticker.MessageType);
        Assert.Equal(InboxMessageType.Location, location.MessageType);
        Assert.Equal(new LocationInfo(-23.5505, -46.6333) { Name = "Loja", Address = "Praça da Sé" }, location.Location);
        Assert.Equal(InboxMessageType.Contact, contact.MessageType);
        var card = Assert.Single(contact.Contacts);
        Assert.Equal("Bruno", card.Name);
        Assert.Equal(new ContactPhone("+55 11 99999-0002", "5511999990002"), Assert.Single(card.Phones));
        Assert.Equal(InboxMessageType.Reaction, reaction.MessageType);
        Assert.Equal(new ReactionInfo("👍", "3EB0EVOOUT0000000001"), reaction.Reaction);
        Assert.Equal(InboxMessageType.Text, ephemeral.MessageType);
        Assert.Equal("some", ephemeral.Text);
        Assert.Equal(InboxMessageType.Unknown, protocol.MessageType);
    }

    [Theory]
    [InlineData("ERROR", InboxMessageStatus.Failed)]
    [InlineData("PENDING", InboxMessageStatus.Pending)]
    [InlineData("SERVER_ACK", InboxMessageStatus.Sent)]
    [InlineData("DELIVERY_ACK", InboxMessageStatus.Delivered)]
    [InlineData("READ", InboxMessageStatus.Read)]
    [InlineData("PLAYED", InboxMessageStatus.Played)]
    [InlineData("DELETED", InboxMessageStatus.Deleted)]
    [InlineData("4", InboxMessageStatus.Read)]
    public void Status_mapping(string providerStatus, InboxMessageStatus expected)
    {
        var node = Load("status-update");
        node["data"]!["status"] = providerStatus;
        var e = Single(EvolutionAdapter().Parse(Request("evolution", node.ToJsonString())));
        Assert.Equal(expected, e.Status);
        if (expected == InboxMessageStatus.Failed) Assert.Equal("ERROR", e.StatusError!.Title);
    }

    [Fact]
    public void Group_status_receipt_carries_the_participant()
    {
        var node = Load("status-update");
        node["data"]!["remoteJid"] = "120363025246125486@g.us";
        node["data"]!["participant"] = "5511999990002@s.whatsapp.net";
        var e = Single(EvolutionAdapter().Parse(Request("evolution", node.ToJsonString())));
        Assert.True(e.IsGroup);
        Assert.Equal("120363025246125486@g.us", e.ChatId);
        Assert.Equal("5511999990002", e.SenderId);
        Assert.Equal("evolution|inst-1|3EB0EVOOUT0000000001|read|5511999990002", e.DedupeKey);
    }

    [Fact]
    public void Data_as_array_and_upper_case_event_name()
    {
        var first = Load("text")["data"]!.DeepClone();
        var second = Load("text")["data"]!.DeepClone();
        second["key"]!["id"] = "3EB0EVOFAKE000000099";
        var node = Load("text");
        node["event"] = "MESSAGES_UPSERT";
        node["data"] = new JsonArray(first, second);
        var events = EvolutionAdapter().Parse(Request("evolution", node.ToJsonString()));
        Assert.Equal(["3EB0EVOFAKE000000001", "3EB0EVOFAKE000000099"], events.Select(e => e.ExternalId));
    }

    [Fact]
    public void Unknown_events_are_kept_as_other_without_base64_or_apikey()
    {
        var json = """{"event":"qrcode.updated","instance":"loja-centro","data":{"qrcode":{"instance":"loja-centro","pairingCode":null,"code":"2@FAKE","base64":"data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="}},"destination":"https://hooks.example.com","date_time":"2026-01-01T16:08:20.000Z","sender":"5511999990000@s.whatsapp.net","server_url":"https://evo.example.com","apikey":"FAKE-INSTANCE-APIKEY-0001"}""";
        var e = Single(EvolutionAdapter().Parse(Request("evolution", json)));
        Assert.Equal(InboxEventKind.Other, e.Kind);
        Assert.Equal("qrcode.updated", e.ProviderEventType);
        Assert.Contains("2@FAKE", e.Raw);
        Assert.DoesNotContain("iVBOR", e.Raw);
        Assert.DoesNotContain("APIKEY", e.Raw);
    }

    [Theory]
    [InlineData("""{"instance":"x","data":{}}""", "has no \"event\"")]
    [InlineData("""{"event":"messages.upsert","instance":"x"}""", "messages.upsert has no \"data\" object")]
    [InlineData("""{"event":"messages.upsert","data":{"message":{}}}""", "messages.upsert data has no \"key\"")]
    [InlineData("""{"event":"messages.upsert","data":{"key":{"remoteJid":"5511@s.whatsapp.net"}}}""", "data.key has no \"id\"")]
    [InlineData("""{"event":"messages.upsert","data":[{"key":{"id":"A","remoteJid":"5511@s.whatsapp.net"}},3]}""", "data[1] is not an object")]
    [InlineData("""{"event":"messages.update","data":{"keyId":"A","remoteJid":"5511@s.whatsapp.net"}}""", "has no \"status\"")]
    public void Unknown_shapes_throw(string json, string expected)
    {
        var ex = Assert.Throws<WebhookParseException>(() => EvolutionAdapter().Parse(Request("evolution", json)));
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }

    private static JsonObject Load(string name) => JsonNode.Parse(Fixture(Folder, name))!.AsObject();

    private static InboxEvent Message(string messageType, JsonObject message)
    {
        var node = Load("text");
        node["data"]!["key"]!["id"] = "3EB0EVO" + messageType;
        node["data"]!["message"] = message;
        node["data"]!["messageType"] = messageType;
        var e = Single(EvolutionAdapter().Parse(Request("evolution", node.ToJsonString())));
        AssertWellFormed(e);
        return e;
    }
}
