using System.Text.Json.Nodes;
using Inbox.Reliability.Events;
using static Inbox.Reliability.Providers.Tests.TestSupport;

namespace Inbox.Reliability.Providers.Tests;

/// <summary>
/// W-API webhooks as far as they are described (a summary of its Postman collection): <c>webhookReceived</c> and
/// <c>webhookDelivery</c> with <c>{instanceId, connectedPhone, isGroup, messageId, fromMe, chat{id}, sender{id,pushName},
/// moment (s), msgContent}</c>, where <c>msgContent</c> is a Baileys message. The status, connection and presence
/// webhooks exist but their shapes are not described: they are kept as "other". Fake numbers and ids.
/// </summary>
public class WApiDocumentedShapesTests
{
    private const string InstanceId = "FAKE02-INST02-000002";
    private const string Connected = "5521988880000";
    private const string Contact = "5521988880001";
    private const string Member = "5521988880002";
    private const string GroupJid = "120363025246125486@g.us";
    private const long Moment = 1767300000; // seconds

    [Fact]
    public void Text_as_conversation()
    {
        var e = Parse(Received("3EB0WTXT000000000001", new JsonObject { ["conversation"] = "Tem horário amanhã?" }));
        Assert.Equal(InboxEventKind.Message, e.Kind);
        Assert.Equal(InboxMessageType.Text, e.MessageType);
        Assert.Equal("Tem horário amanhã?", e.Text);
        Assert.Equal("3EB0WTXT000000000001", e.ExternalId);
        Assert.Equal("wapi|inst-1|3EB0WTXT000000000001", e.DedupeKey);
        Assert.Equal("webhookReceived", e.ProviderEventType);
        Assert.Equal(InstanceId, e.ProviderInstanceId);
        Assert.Equal(Contact, e.ChatId);
        Assert.Equal(Contact, e.SenderId);
        Assert.Equal("Carla Dias", e.SenderName);
        Assert.False(e.FromMe);
        Assert.False(e.IsGroup);
        Assert.Null(e.Media);
        Assert.Equal(Utc(Moment), e.OccurredAt);
        Assert.Equal(TimeSpan.Zero, e.OccurredAt.Offset);
    }

    [Fact]
    public void Text_as_extended_text_with_a_reply()
    {
        var content = new JsonObject
        {
            ["extendedTextMessage"] = new JsonObject
            {
                ["text"] = "Pode ser às 15h",
                ["contextInfo"] = new JsonObject { ["stanzaId"] = "3EB0WOUT000000000001", ["participant"] = Connected + "@s.whatsapp.net", ["quotedMessage"] = new JsonObject { ["conversation"] = "Qual horário?" } },
            },
        };
        var e = Parse(Received("3EB0WTXT000000000002", content));
        Assert.Equal(InboxMessageType.Text, e.MessageType);
        Assert.Equal("Pode ser às 15h", e.Text);
        Assert.Equal("3EB0WOUT000000000001", e.ReplyToId);
    }

    [Fact]
    public void Image_with_caption_keeps_the_encrypted_reference_and_the_id_to_download_it()
    {
        var content = new JsonObject
        {
            ["imageMessage"] = new JsonObject
            {
                ["url"] = "https://mmg.whatsapp.net/o1/v/t62.7118-24/f2/m269/WIMG?ccb=9-4",
                ["mimetype"] = "image/jpeg",
                ["caption"] = "Foto da peça",
                ["fileLength"] = "91234",
                ["height"] = 1600,
                ["width"] = 1200,
                ["mediaKey"] = "c2VjcmV0LW1lZGlhLWtleS1ub3QtY29waWVk",
                ["directPath"] = "/o1/v/t62.7118-24/f2/m269/WIMG?ccb=9-4",
                ["jpegThumbnail"] = "",
                ["viewOnce"] = false,
            },
        };
        var e = Parse(Received("3EB0WIMG000000000001", content));
        Assert.Equal(InboxMessageType.Image, e.MessageType);
        Assert.Equal("Foto da peça", e.Caption);
        Assert.Equal("Foto da peça", e.Text);
        var media = Assert.IsType<MediaReference>(e.Media);
        Assert.Null(media.Url);
        Assert.Equal("3EB0WIMG000000000001", media.MediaId);
        Assert.Equal("image/jpeg", media.MimeType);
        Assert.Equal(91234, media.FileSize);
        Assert.Equal("https://mmg.whatsapp.net/o1/v/t62.7118-24/f2/m269/WIMG?ccb=9-4", media.Properties["encryptedUrl"]);
        Assert.Equal("/o1/v/t62.7118-24/f2/m269/WIMG?ccb=9-4", media.Properties["directPath"]);
        Assert.DoesNotContain("c2VjcmV0LW1lZGlhLWtleS1ub3QtY29waWVk", e.Raw, StringComparison.Ordinal);
    }

    [Fact]
    public void Other_baileys_content_types()
    {
        var video = Parse(Received("3EB0WVID000000000001", new JsonObject { ["videoMessage"] = new JsonObject { ["mimetype"] = "video/mp4", ["caption"] = "veja" } }));
        var voice = Parse(Received("3EB0WAUD000000000001", new JsonObject { ["audioMessage"] = new JsonObject { ["mimetype"] = "audio/ogg; codecs=opus", ["ptt"] = true } }));
        var document = Parse(Received("3EB0WDOC000000000001", new JsonObject { ["documentMessage"] = new JsonObject { ["mimetype"] = "application/pdf", ["fileName"] = "os.pdf", ["caption"] = "ordem de serviço" } }));
        var sticker = Parse(Received("3EB0WSTK000000000001", new JsonObject { ["stickerMessage"] = new JsonObject { ["mimetype"] = "image/webp" } }));
        var location = Parse(Received("3EB0WLOC000000000001", new JsonObject { ["locationMessage"] = new JsonObject { ["degreesLatitude"] = -22.9, ["degreesLongitude"] = -43.2 } }));
        var contact = Parse(Received("3EB0WCTT000000000001", new JsonObject { ["contactMessage"] = new JsonObject { ["displayName"] = "Diego", ["vcard"] = "BEGIN:VCARD\nFN:Diego\nTEL;waid=5521988880003:+55 21 98888-0003\nEND:VCARD" } }));
        var reaction = Parse(Received("3EB0WRCT000000000001", new JsonObject { ["reactionMessage"] = new JsonObject { ["key"] = new JsonObject { ["id"] = "3EB0WOUT000000000002", ["fromMe"] = true }, ["text"] = "🙏" } }));

        Assert.Equal(InboxMessageType.Video, video.MessageType);
        Assert.Equal("veja", video.Caption);
        Assert.Equal(InboxMessageType.Audio, voice.MessageType);
        Assert.Equal("true", voice.Media!.Properties["voice"]);
        Assert.Equal(InboxMessageType.Document, document.MessageType);
        Assert.Equal("os.pdf", document.Media!.FileName);
        Assert.Equal("3EB0WDOC000000000001", document.Media.MediaId);
        Assert.Equal(InboxMessageType.Sticker, sticker.MessageType);
        Assert.Equal(InboxMessageType.Location, location.MessageType);
        Assert.Equal(new LocationInfo(-22.9, -43.2), location.Location);
        Assert.Equal(InboxMessageType.Contact, contact.MessageType);
        Assert.Equal("5521988880003", Assert.Single(Assert.Single(contact.Contacts).Phones).WaId);
        Assert.Equal(new ReactionInfo("🙏", "3EB0WOUT000000000002"), reaction.Reaction);
    }

    [Fact]
    public void Group_message_is_in_the_group_and_sent_by_the_member()
    {
        var node = Received("3EB0WGRP000000000001", new JsonObject { ["conversation"] = "bom dia" });
        node["isGroup"] = true;
        node["chat"] = new JsonObject { ["id"] = GroupJid };
        node["sender"] = new JsonObject { ["id"] = Member, ["pushName"] = "Fábio" };
        var e = Parse(node);
        Assert.True(e.IsGroup);
        Assert.Equal(GroupJid, e.ChatId);
        Assert.Equal(Member, e.SenderId);
        Assert.Equal("Fábio", e.SenderName);
    }

    [Fact]
    public void Group_chat_id_makes_a_group_even_when_the_flag_says_otherwise()
    {
        var node = Received("3EB0WGRP000000000002", new JsonObject { ["conversation"] = "oi" });
        node["isGroup"] = false;
        node["chat"] = new JsonObject { ["id"] = GroupJid };
        node["sender"] = new JsonObject { ["id"] = Member + "@s.whatsapp.net" };
        var e = Parse(node);
        Assert.True(e.IsGroup);
        Assert.Equal(Member, e.SenderId);
    }

    [Fact]
    public void Chat_and_sender_in_jid_form_are_normalized()
    {
        var node = Received("3EB0WJID000000000001", new JsonObject { ["conversation"] = "oi" });
        node["chat"] = new JsonObject { ["id"] = Contact + "@s.whatsapp.net" };
        node["sender"] = new JsonObject { ["id"] = Contact + ":3@s.whatsapp.net", ["pushName"] = "Carla" };
        var e = Parse(node);
        Assert.Equal(Contact, e.ChatId);
        Assert.Equal(Contact, e.SenderId);
    }

    [Fact]
    public void Message_from_me_sent_from_the_phone()
    {
        var node = Received("3EB0WOUT000000000003", new JsonObject { ["conversation"] = "Confirmado" });
        node["fromMe"] = true;
        node.Remove("sender");
        var e = Parse(node);
        Assert.True(e.FromMe);
        Assert.Equal(Contact, e.ChatId);
        Assert.Equal(Connected, e.SenderId);
    }

    [Fact]
    public void Delivery_of_a_message_sent_through_the_api_is_from_me_whatever_the_flag_says()
    {
        var node = Received("3EB0WOUT000000000004", new JsonObject { ["conversation"] = "Olá Carla" });
        node["event"] = "webhookDelivery";
        node["fromMe"] = false;
        node["fromApi"] = true;
        node.Remove("sender");
        var e = Parse(node);
        Assert.Equal(InboxEventKind.Message, e.Kind);
        Assert.Equal("webhookDelivery", e.ProviderEventType);
        Assert.True(e.FromMe);
        Assert.Equal(Connected, e.SenderId);
        Assert.Equal("Olá Carla", e.Text);
    }

    [Fact]
    public void Unmapped_content_is_kept_as_an_unknown_message()
    {
        var e = Parse(Received("3EB0WUNK000000000001", new JsonObject { ["protocolMessage"] = new JsonObject { ["type"] = 0, ["key"] = new JsonObject { ["id"] = "3EB0WOUT000000000005" } } }));
        Assert.Equal(InboxEventKind.Message, e.Kind);
        Assert.Equal(InboxMessageType.Unknown, e.MessageType);
        Assert.Contains("protocolMessage", e.Raw, StringComparison.Ordinal);
    }

    [Fact]
    public void Retry_has_the_same_key_and_another_message_another_key()
    {
        var a = Parse(Received("3EB0WDUP000000000001", new JsonObject { ["conversation"] = "x" }));
        var retry = Parse(Received("3EB0WDUP000000000001", new JsonObject { ["conversation"] = "x" }));
        var b = Parse(Received("3EB0WDUP000000000002", new JsonObject { ["conversation"] = "x" }));
        Assert.Equal(a.DedupeKey, retry.DedupeKey);
        Assert.NotEqual(a.DedupeKey, b.DedupeKey);
    }

    [Theory]
    [InlineData("webhookStatus")]
    [InlineData("webhookConnected")]
    [InlineData("webhookDisconnected")]
    [InlineData("webhookChatPresence")]
    [InlineData("someFutureWebhook")]
    public void Webhooks_whose_shape_is_not_described_are_kept_as_other(string eventName)
    {
        var json = $$"""{"event":"{{eventName}}","instanceId":"{{InstanceId}}","connectedPhone":"{{Connected}}","moment":{{Moment}},"marker":"kept-as-other"}""";
        var e = Single(WApiAdapter().Parse(Request("wapi", json)));
        AssertWellFormed(e);
        Assert.Equal(InboxEventKind.Other, e.Kind);
        Assert.Equal(eventName, e.ProviderEventType);
        Assert.Equal(InstanceId, e.ProviderInstanceId);
        Assert.Equal(Utc(Moment), e.OccurredAt);
        Assert.Equal("wapi|inst-1|other|" + e.ExternalId, e.DedupeKey);
        Assert.Contains("kept-as-other", e.Raw, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"instanceId":"X","msgContent":{"conversation":"SECRET-BODY"}}""", "has no \"event\"")]
    [InlineData("""{"event":"webhookReceived","chat":{"id":"5521988880001"},"msgContent":{"conversation":"SECRET-BODY"}}""", "webhookReceived has no \"messageId\"")]
    [InlineData("""{"event":"webhookReceived","messageId":"X1","msgContent":{"conversation":"SECRET-BODY"}}""", "webhookReceived has no \"chat.id\"")]
    [InlineData("""{"event":"webhookDelivery","messageId":"X1","chat":{},"msgContent":{"conversation":"SECRET-BODY"}}""", "webhookDelivery has no \"chat.id\"")]
    public void Malformed_webhooks_say_what_is_missing_without_repeating_the_body(string json, string expected)
    {
        var ex = Assert.Throws<WebhookParseException>(() => WApiAdapter().Parse(Request("wapi", json)));
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("SECRET-BODY", ex.Message, StringComparison.Ordinal);
    }

    /// <summary>A webhookReceived as described, with the given <c>msgContent</c>.</summary>
    private static JsonObject Received(string messageId, JsonObject msgContent) => new()
    {
        ["event"] = "webhookReceived",
        ["instanceId"] = InstanceId,
        ["connectedPhone"] = Connected,
        ["isGroup"] = false,
        ["messageId"] = messageId,
        ["fromMe"] = false,
        ["chat"] = new JsonObject { ["id"] = Contact, ["profilePicture"] = "https://pps.whatsapp.net/v/fake.jpg" },
        ["sender"] = new JsonObject { ["id"] = Contact, ["profilePicture"] = "https://pps.whatsapp.net/v/fake.jpg", ["pushName"] = "Carla Dias", ["verifiedBizName"] = "" },
        ["moment"] = Moment,
        ["msgContent"] = msgContent,
    };

    private static InboxEvent Parse(JsonObject node)
    {
        var e = Single(WApiAdapter().Parse(Request("wapi", node.ToJsonString())));
        AssertWellFormed(e);
        return e;
    }
}
