using System.Text.Json.Nodes;
using Inbox.Reliability.Events;
using static Inbox.Reliability.Providers.Tests.TestSupport;

namespace Inbox.Reliability.Providers.Tests;

/// <summary>
/// Evolution API v2 (Baileys channel) webhooks as its code sends them: the envelope <c>{event, instance, data,
/// destination, date_time, sender, server_url, apikey}</c> with <c>messages.upsert</c>/<c>send.message</c> (prepared
/// Baileys messages), <c>messages.update</c>, <c>messages.delete</c>, <c>messages.edited</c>, <c>connection.update</c>,
/// <c>qrcode.updated</c> and others. Fake numbers and ids.
/// </summary>
public class EvolutionDocumentedShapesTests
{
    private const string InstanceName = "loja-norte";
    private const string Owner = "5521988880000";
    private const string Contact = "5521988880001";
    private const string Member = "5521988880002";
    private const string GroupJid = "120363025246125486@g.us";
    private const long Timestamp = 1767300000; // seconds
    private const string ApiKey = "FAKE-EVOLUTION-APIKEY-9999";
    private const string Base64Image = "/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAP//////////////////////////////////////////////////////////////////////////////////////2wBDAf//////////////////////////////////////////////////////////////////////////////////////wAARCAABAAEDASIAAhEBAxEB/8QAFAABAAAAAAAAAAAAAAAAAAAAA//EABQQAQAAAAAAAAAAAAAAAAAAAAD/xAAUAQEAAAAAAAAAAAAAAAAAAAAA/8QAFBEBAAAAAAAAAAAAAAAAAAAAAP/aAAwDAQACEQMRAD8AP//Z";

    // ---- messages.upsert: content ----

    [Fact]
    public void Conversation_text()
    {
        var e = Upsert(Message("3EB0C0NV000000000001", new JsonObject { ["conversation"] = "Vocês abrem sábado?" }, "conversation"));
        Assert.Equal(InboxEventKind.Message, e.Kind);
        Assert.Equal(InboxMessageType.Text, e.MessageType);
        Assert.Equal("Vocês abrem sábado?", e.Text);
        Assert.Equal("3EB0C0NV000000000001", e.ExternalId);
        Assert.Equal("evolution|inst-1|3EB0C0NV000000000001", e.DedupeKey);
        Assert.Equal("messages.upsert", e.ProviderEventType);
        Assert.Equal(InstanceName, e.ProviderInstanceId);
        Assert.Equal(Contact, e.ChatId);
        Assert.Equal(Contact, e.SenderId);
        Assert.Equal("Carla Dias", e.SenderName);
        Assert.False(e.IsGroup);
        Assert.False(e.FromMe);
        Assert.Null(e.ReplyToId);
        Assert.Equal(Utc(Timestamp), e.OccurredAt);
        Assert.Equal(TimeSpan.Zero, e.OccurredAt.Offset);
        Assert.DoesNotContain(ApiKey, e.Raw, StringComparison.Ordinal);
    }

    [Fact]
    public void Extended_text_reply_with_quoted_message()
    {
        var message = new JsonObject
        {
            ["extendedTextMessage"] = new JsonObject
            {
                ["text"] = "Sim, esse",
                ["contextInfo"] = new JsonObject
                {
                    ["stanzaId"] = "3EB0OUT0000000000001",
                    ["participant"] = Owner + "@s.whatsapp.net",
                    ["quotedMessage"] = new JsonObject { ["conversation"] = "Quer o modelo azul?" },
                },
            },
        };
        var e = Upsert(Message("3EB0EXT0000000000001", message, "extendedTextMessage"));
        Assert.Equal(InboxMessageType.Text, e.MessageType);
        Assert.Equal("Sim, esse", e.Text);
        Assert.Equal("3EB0OUT0000000000001", e.ReplyToId);
    }

    [Fact]
    public void Reply_normalized_to_conversation_with_the_context_beside_the_message()
    {
        var data = Message("3EB0EXT0000000000002", new JsonObject { ["conversation"] = "Sim, esse" }, "conversation");
        data["contextInfo"] = new JsonObject
        {
            ["stanzaId"] = "3EB0OUT0000000000002",
            ["participant"] = Owner + "@s.whatsapp.net",
            ["quotedMessage"] = new JsonObject { ["conversation"] = "Quer o modelo azul?" },
            ["forwardingScore"] = 0,
        };
        var e = Upsert(data);
        Assert.Equal("Sim, esse", e.Text);
        Assert.Equal("3EB0OUT0000000000002", e.ReplyToId);
        Assert.False(e.IsForwarded);
    }

    [Fact]
    public void Image_with_caption_base64_and_s3_url_keeps_references_but_never_the_bytes()
    {
        var message = new JsonObject
        {
            ["imageMessage"] = new JsonObject
            {
                ["url"] = "https://mmg.whatsapp.net/o1/v/t62.7118-24/f2/m269/IMG?ccb=9-4&oh=X&oe=Y&_nc_sid=e6ed6c&mms3=true",
                ["mimetype"] = "image/jpeg",
                ["caption"] = "Comprovante",
                ["fileSha256"] = ByteObject(32, 7),
                ["fileLength"] = new JsonObject { ["low"] = 91234, ["high"] = 0, ["unsigned"] = true },
                ["height"] = 1600,
                ["width"] = 1200,
                ["mediaKey"] = ByteObject(32, 9),
                ["fileEncSha256"] = ByteObject(32, 11),
                ["directPath"] = "/o1/v/t62.7118-24/f2/m269/IMG?ccb=9-4&oh=X&oe=Y&_nc_sid=e6ed6c",
                ["mediaKeyTimestamp"] = new JsonObject { ["low"] = 1767299990, ["high"] = 0, ["unsigned"] = false },
                ["jpegThumbnail"] = Base64Image,
                ["contextInfo"] = new JsonObject { ["stanzaId"] = "3EB0OUT0000000000003" },
            },
            ["messageContextInfo"] = new JsonObject { ["messageSecret"] = ByteObject(32, 13) },
            ["base64"] = Base64Image,
            ["mediaUrl"] = "https://s3.example.com/evolution/imageMessage/3EB0IMG0000000000001.jpeg",
        };
        var e = Upsert(Message("3EB0IMG0000000000001", message, "imageMessage"));
        Assert.Equal(InboxMessageType.Image, e.MessageType);
        Assert.Equal("Comprovante", e.Caption);
        Assert.Equal("Comprovante", e.Text);
        Assert.Equal("3EB0OUT0000000000003", e.ReplyToId);
        var media = Assert.IsType<MediaReference>(e.Media);
        Assert.Equal("https://s3.example.com/evolution/imageMessage/3EB0IMG0000000000001.jpeg", media.Url);
        Assert.Equal("3EB0IMG0000000000001", media.MediaId);
        Assert.Equal("image/jpeg", media.MimeType);
        Assert.Equal(91234, media.FileSize);
        Assert.Equal(Convert.ToBase64String(Enumerable.Range(7, 32).Select(i => (byte)i).ToArray()), media.Sha256);
        Assert.Equal("true", media.Properties["hasBase64"]);
        Assert.StartsWith("https://mmg.whatsapp.net/", media.Properties["encryptedUrl"], StringComparison.Ordinal);
        Assert.StartsWith("/o1/v/t62.7118-24/", media.Properties["directPath"], StringComparison.Ordinal);

        Assert.NotNull(e.Raw);
        Assert.DoesNotContain("/9j/4AAQ", e.Raw, StringComparison.Ordinal);
        Assert.DoesNotContain("\"mediaKey\"", e.Raw, StringComparison.Ordinal);
        Assert.DoesNotContain("\"messageSecret\"", e.Raw, StringComparison.Ordinal);
        Assert.DoesNotContain(ApiKey, e.Raw, StringComparison.Ordinal);
        Assert.DoesNotContain(media.Properties.Values, v => v.Contains("/9j/", StringComparison.Ordinal));
    }

    [Fact]
    public void Media_without_base64_or_s3_is_fetched_by_message_id()
    {
        var e = Upsert(Message("3EB0IMG0000000000002", new JsonObject { ["imageMessage"] = new JsonObject { ["url"] = "https://mmg.whatsapp.net/x", ["mimetype"] = "image/webp" } }, "imageMessage"));
        Assert.Null(e.Media!.Url);
        Assert.Equal("3EB0IMG0000000000002", e.Media.MediaId);
        Assert.False(e.Media.Properties.ContainsKey("hasBase64"));
        Assert.Null(e.Caption);
    }

    [Fact]
    public void Video_voice_note_document_and_sticker()
    {
        var video = Upsert(Message("3EB0VID0000000000001", new JsonObject { ["videoMessage"] = new JsonObject { ["url"] = "https://mmg.whatsapp.net/v", ["mimetype"] = "video/mp4", ["caption"] = "olha isso", ["seconds"] = 12 } }, "videoMessage"));
        var voice = Upsert(Message("3EB0AUD0000000000001", new JsonObject { ["audioMessage"] = new JsonObject { ["url"] = "https://mmg.whatsapp.net/a", ["mimetype"] = "audio/ogg; codecs=opus", ["seconds"] = 4, ["ptt"] = true }, ["base64"] = Base64Image }, "audioMessage"));
        var document = Upsert(Message("3EB0DOC0000000000001", new JsonObject { ["documentMessage"] = new JsonObject { ["url"] = "https://mmg.whatsapp.net/d", ["mimetype"] = "application/pdf", ["title"] = "orcamento", ["fileName"] = "orcamento.pdf", ["caption"] = "segue", ["fileLength"] = "20480", ["pageCount"] = 3 } }, "documentMessage"));
        var sticker = Upsert(Message("3EB0STK0000000000001", new JsonObject { ["stickerMessage"] = new JsonObject { ["url"] = "https://mmg.whatsapp.net/s", ["mimetype"] = "image/webp", ["isAnimated"] = true } }, "stickerMessage"));

        Assert.Equal(InboxMessageType.Video, video.MessageType);
        Assert.Equal("olha isso", video.Caption);
        Assert.Equal("video/mp4", video.Media!.MimeType);
        Assert.Equal(InboxMessageType.Audio, voice.MessageType);
        Assert.Equal("true", voice.Media!.Properties["voice"]);
        Assert.Equal("true", voice.Media.Properties["hasBase64"]);
        Assert.DoesNotContain("/9j/4AAQ", voice.Raw, StringComparison.Ordinal);
        Assert.Equal(InboxMessageType.Document, document.MessageType);
        Assert.Equal("orcamento.pdf", document.Media!.FileName);
        Assert.Equal(20480, document.Media.FileSize);
        Assert.Equal("segue", document.Caption);
        Assert.Equal(InboxMessageType.Sticker, sticker.MessageType);
        Assert.Equal("true", sticker.Media!.Properties["animated"]);
    }

    [Fact]
    public void Document_with_caption_wrapper()
    {
        var message = new JsonObject
        {
            ["documentWithCaptionMessage"] = new JsonObject
            {
                ["message"] = new JsonObject { ["documentMessage"] = new JsonObject { ["mimetype"] = "application/pdf", ["fileName"] = "nf.pdf", ["caption"] = "nota fiscal" } },
            },
        };
        var e = Upsert(Message("3EB0DOC0000000000002", message, "documentWithCaptionMessage"));
        Assert.Equal(InboxMessageType.Document, e.MessageType);
        Assert.Equal("nf.pdf", e.Media!.FileName);
        Assert.Equal("nota fiscal", e.Caption);
    }

    [Fact]
    public void Location_contact_and_contacts_array()
    {
        var location = Upsert(Message("3EB0LOC0000000000001", new JsonObject { ["locationMessage"] = new JsonObject { ["degreesLatitude"] = -22.9068, ["degreesLongitude"] = -43.1729, ["name"] = "Loja", ["address"] = "Av. Rio Branco, 1" } }, "locationMessage"));
        var contact = Upsert(Message("3EB0CTT0000000000001", new JsonObject { ["contactMessage"] = new JsonObject { ["displayName"] = "Diego", ["vcard"] = "BEGIN:VCARD\nVERSION:3.0\nN:;Diego;;;\nFN:Diego\nitem1.TEL;waid=5521988880003:+55 21 98888-0003\nitem1.X-ABLabel:Celular\nEND:VCARD" } }, "contactMessage"));
        var contacts = Upsert(Message("3EB0CTT0000000000002", new JsonObject
        {
            ["contactsArrayMessage"] = new JsonObject
            {
                ["displayName"] = "2 contatos",
                ["contacts"] = new JsonArray(
                    new JsonObject { ["displayName"] = "Diego", ["vcard"] = "BEGIN:VCARD\nFN:Diego\nTEL;waid=5521988880003:+55 21 98888-0003\nEND:VCARD" },
                    new JsonObject { ["displayName"] = "Eva", ["vcard"] = "BEGIN:VCARD\nFN:Eva\nTEL;waid=5521988880004:+55 21 98888-0004\nEND:VCARD" }),
            },
        }, "contactsArrayMessage"));

        Assert.Equal(InboxMessageType.Location, location.MessageType);
        Assert.Equal(new LocationInfo(-22.9068, -43.1729) { Name = "Loja", Address = "Av. Rio Branco, 1" }, location.Location);
        Assert.Equal(InboxMessageType.Contact, contact.MessageType);
        Assert.Equal(new ContactPhone("+55 21 98888-0003", "5521988880003"), Assert.Single(Assert.Single(contact.Contacts).Phones));
        Assert.Equal(InboxMessageType.Contact, contacts.MessageType);
        Assert.Equal(["Diego", "Eva"], contacts.Contacts.Select(c => c.Name));
    }

    [Fact]
    public void Reaction_and_its_removal()
    {
        JsonObject Reaction(string text) => new()
        {
            ["reactionMessage"] = new JsonObject
            {
                ["key"] = new JsonObject { ["remoteJid"] = Contact + "@s.whatsapp.net", ["fromMe"] = true, ["id"] = "3EB0OUT0000000000004" },
                ["text"] = text,
                ["senderTimestampMs"] = new JsonObject { ["low"] = 1767300000, ["high"] = 0, ["unsigned"] = false },
            },
        };
        var added = Upsert(Message("3EB0RCT0000000000001", Reaction("👍"), "reactionMessage"));
        var removed = Upsert(Message("3EB0RCT0000000000002", Reaction(""), "reactionMessage"));
        Assert.Equal(InboxMessageType.Reaction, added.MessageType);
        Assert.Equal(new ReactionInfo("👍", "3EB0OUT0000000000004"), added.Reaction);
        Assert.Equal(new ReactionInfo("", "3EB0OUT0000000000004"), removed.Reaction);
    }

    [Fact]
    public void Ephemeral_and_view_once_wrappers_are_unwrapped()
    {
        var ephemeral = Upsert(Message("3EB0EPH0000000000001", new JsonObject
        {
            ["ephemeralMessage"] = new JsonObject
            {
                ["message"] = new JsonObject { ["extendedTextMessage"] = new JsonObject { ["text"] = "some em 24h", ["contextInfo"] = new JsonObject { ["stanzaId"] = "3EB0OUT0000000000005", ["expiration"] = 86400 } } },
            },
        }, "ephemeralMessage"));
        var viewOnce = Upsert(Message("3EB0VON0000000000001", new JsonObject
        {
            ["viewOnceMessageV2"] = new JsonObject
            {
                ["message"] = new JsonObject { ["imageMessage"] = new JsonObject { ["mimetype"] = "image/jpeg", ["caption"] = "só uma vez", ["viewOnce"] = true } },
            },
        }, "viewOnceMessageV2"));

        Assert.Equal(InboxMessageType.Text, ephemeral.MessageType);
        Assert.Equal("some em 24h", ephemeral.Text);
        Assert.Equal("3EB0OUT0000000000005", ephemeral.ReplyToId);
        Assert.Equal(InboxMessageType.Image, viewOnce.MessageType);
        Assert.Equal("só uma vez", viewOnce.Caption);
        Assert.Equal("3EB0VON0000000000001", viewOnce.Media!.MediaId);
    }

    [Fact]
    public void Unmapped_content_is_kept_as_an_unknown_message()
    {
        var e = Upsert(Message("3EB0UNK0000000000001", new JsonObject { ["eventMessage"] = new JsonObject { ["name"] = "Inauguração" } }, "eventMessage"));
        Assert.Equal(InboxEventKind.Message, e.Kind);
        Assert.Equal(InboxMessageType.Unknown, e.MessageType);
        Assert.Contains("Inauguração", e.Raw, StringComparison.Ordinal);
    }

    // ---- messages.upsert: chats and senders ----

    [Fact]
    public void Group_message_with_participant()
    {
        var data = Message("3EB0GRP0000000000001", new JsonObject { ["conversation"] = "bom dia" }, "conversation", remoteJid: GroupJid);
        data["key"]!["participant"] = Member + "@s.whatsapp.net";
        data["pushName"] = "Fábio";
        var e = Upsert(data);
        Assert.True(e.IsGroup);
        Assert.Equal(GroupJid, e.ChatId);
        Assert.Equal(Member, e.SenderId);
        Assert.Equal("Fábio", e.SenderName);
    }

    [Fact]
    public void Group_member_with_lid_uses_the_phone_number_alternative()
    {
        var data = Message("3EB0GRP0000000000002", new JsonObject { ["conversation"] = "oi" }, "conversation", remoteJid: GroupJid);
        data["key"]!["participant"] = "81000000000002@lid";
        data["key"]!["participantAlt"] = Member + "@s.whatsapp.net";
        data["key"]!["addressingMode"] = "lid";
        Assert.Equal(Member, Upsert(data).SenderId);
    }

    [Fact]
    public void Group_member_with_lid_and_no_alternative_keeps_the_lid()
    {
        var data = Message("3EB0GRP0000000000003", new JsonObject { ["conversation"] = "oi" }, "conversation", remoteJid: GroupJid);
        data["key"]!["participant"] = "81000000000002:4@lid";
        Assert.Equal("81000000000002@lid", Upsert(data).SenderId);
    }

    [Fact]
    public void Lid_chat_uses_the_phone_number_alternative()
    {
        var data = Message("3EB0LID0000000000001", new JsonObject { ["conversation"] = "oi" }, "conversation", remoteJid: "81000000000001@lid");
        data["key"]!["remoteJidAlt"] = Contact + "@s.whatsapp.net";
        data["key"]!["addressingMode"] = "lid";
        var e = Upsert(data);
        Assert.Equal(Contact, e.ChatId);
        Assert.Equal(Contact, e.SenderId);
    }

    [Fact]
    public void Message_sent_from_the_phone_arrives_as_upsert_from_me()
    {
        var data = Message("3EB0OUT0000000000010", new JsonObject { ["conversation"] = "Pedido enviado" }, "conversation", fromMe: true);
        data["pushName"] = "Loja Norte";
        var e = Upsert(data);
        Assert.True(e.FromMe);
        Assert.Equal(Contact, e.ChatId);
        Assert.Equal(Owner, e.SenderId);
        Assert.Equal("messages.upsert", e.ProviderEventType);
    }

    [Fact]
    public void Message_sent_through_the_api_arrives_as_send_message_from_me()
    {
        var data = Message("3EB0OUT0000000000011", new JsonObject { ["conversation"] = "Olá Carla" }, "conversation", fromMe: true);
        data["status"] = "PENDING";
        data["source"] = "unknown";
        var e = Single(EvolutionAdapter().Parse(Request("evolution", Envelope("send.message", data))));
        AssertWellFormed(e);
        Assert.Equal(InboxEventKind.Message, e.Kind);
        Assert.True(e.FromMe);
        Assert.Equal(Owner, e.SenderId);
        Assert.Equal("send.message", e.ProviderEventType);
        Assert.Equal("Olá Carla", e.Text);
    }

    [Fact]
    public void Message_from_me_in_a_group_is_sent_by_the_owner()
    {
        var data = Message("3EB0OUT0000000000012", new JsonObject { ["conversation"] = "oi grupo" }, "conversation", remoteJid: GroupJid, fromMe: true);
        data["key"]!["participant"] = Owner + "@s.whatsapp.net";
        var e = Upsert(data);
        Assert.True(e.FromMe);
        Assert.Equal(GroupJid, e.ChatId);
        Assert.Equal(Owner, e.SenderId);
    }

    [Fact]
    public void Status_post_is_sent_by_its_poster()
    {
        var data = Message("3EB0STS0000000000001", new JsonObject { ["conversation"] = "Promoção hoje" }, "conversation", remoteJid: "status@broadcast");
        data["key"]!["participant"] = Contact + "@s.whatsapp.net";
        var e = Upsert(data);
        Assert.Equal("status@broadcast", e.ChatId);
        Assert.Equal(Contact, e.SenderId);
        Assert.False(e.IsGroup);
    }

    [Fact]
    public void Batch_of_messages_gives_one_event_each()
    {
        var a = Message("3EB0BAT0000000000001", new JsonObject { ["conversation"] = "um" }, "conversation");
        var b = Message("3EB0BAT0000000000002", new JsonObject { ["conversation"] = "dois" }, "conversation");
        b["messageTimestamp"] = new JsonObject { ["low"] = (int)(Timestamp + 5), ["high"] = 0, ["unsigned"] = false };
        var events = EvolutionAdapter().Parse(Request("evolution", Envelope("messages.upsert", new JsonArray(a, b))));
        Assert.Equal(2, events.Count);
        Assert.All(events, AssertWellFormed);
        Assert.Equal(["um", "dois"], events.Select(e => e.Text));
        Assert.Equal([Utc(Timestamp), Utc(Timestamp + 5)], events.Select(e => e.OccurredAt));
        Assert.Equal(2, events.Select(e => e.DedupeKey).Distinct().Count());
    }

    [Fact]
    public void Upper_case_event_names_from_webhook_by_events_are_read()
    {
        var e = Single(EvolutionAdapter().Parse(Request("evolution", Envelope("MESSAGES_UPSERT", Message("3EB0UPR0000000000001", new JsonObject { ["conversation"] = "x" }, "conversation")))));
        Assert.Equal(InboxEventKind.Message, e.Kind);
    }

    // ---- messages.update ----

    [Theory]
    [InlineData("ERROR", InboxMessageStatus.Failed, "failed")]
    [InlineData("PENDING", InboxMessageStatus.Pending, "pending")]
    [InlineData("SERVER_ACK", InboxMessageStatus.Sent, "sent")]
    [InlineData("DELIVERY_ACK", InboxMessageStatus.Delivered, "delivered")]
    [InlineData("READ", InboxMessageStatus.Read, "read")]
    [InlineData("PLAYED", InboxMessageStatus.Played, "played")]
    [InlineData("DELETED", InboxMessageStatus.Deleted, "deleted")]
    public void Status_by_name(string providerStatus, InboxMessageStatus expected, string keyPart)
    {
        var e = StatusEvent(StatusData("3EB0OUT0000000000020", JsonValue.Create(providerStatus)));
        Assert.Equal(InboxEventKind.Status, e.Kind);
        Assert.Equal(expected, e.Status);
        Assert.Equal(providerStatus, e.ProviderStatus);
        Assert.Equal("evolution|inst-1|3EB0OUT0000000000020|" + keyPart, e.DedupeKey);
        Assert.Equal(Contact, e.ChatId);
        Assert.True(e.FromMe);
        Assert.Equal(ReceivedAt, e.OccurredAt);
        Assert.Equal("messages.update", e.ProviderEventType);
        if (expected == InboxMessageStatus.Failed) Assert.Equal("ERROR", e.StatusError!.Title);
        else Assert.Null(e.StatusError);
    }

    [Theory]
    [InlineData(0, InboxMessageStatus.Failed)]
    [InlineData(1, InboxMessageStatus.Pending)]
    [InlineData(2, InboxMessageStatus.Sent)]
    [InlineData(3, InboxMessageStatus.Delivered)]
    [InlineData(4, InboxMessageStatus.Read)]
    [InlineData(5, InboxMessageStatus.Played)]
    public void Status_by_number(int providerStatus, InboxMessageStatus expected)
    {
        var e = StatusEvent(StatusData("3EB0OUT0000000000021", JsonValue.Create(providerStatus)));
        Assert.Equal(expected, e.Status);
        Assert.Equal(providerStatus.ToString(System.Globalization.CultureInfo.InvariantCulture), e.ProviderStatus);
    }

    [Fact]
    public void Statuses_of_one_message_have_distinct_keys_and_a_retry_has_the_same_key()
    {
        var keys = new[] { "SERVER_ACK", "DELIVERY_ACK", "READ" }.Select(s => StatusEvent(StatusData("3EB0OUT0000000000022", JsonValue.Create(s))).DedupeKey).ToList();
        var retry = StatusEvent(StatusData("3EB0OUT0000000000022", JsonValue.Create("READ"))).DedupeKey;
        Assert.Equal(3, keys.Distinct().Count());
        Assert.Equal(keys[2], retry);
    }

    [Fact]
    public void Status_in_the_older_key_and_update_shape()
    {
        var data = new JsonObject
        {
            ["key"] = new JsonObject { ["remoteJid"] = Contact + "@s.whatsapp.net", ["fromMe"] = true, ["id"] = "3EB0OUT0000000000023" },
            ["update"] = new JsonObject { ["status"] = 3 },
        };
        var e = StatusEvent(data);
        Assert.Equal(InboxMessageStatus.Delivered, e.Status);
        Assert.Equal("3EB0OUT0000000000023", e.ExternalId);
    }

    [Fact]
    public void Group_member_receipt_is_keyed_by_member()
    {
        var data = StatusData("3EB0OUT0000000000024", JsonValue.Create("READ"));
        data["remoteJid"] = GroupJid;
        data["participant"] = Member + "@s.whatsapp.net";
        var e = StatusEvent(data);
        Assert.True(e.IsGroup);
        Assert.Equal(GroupJid, e.ChatId);
        Assert.Equal(Member, e.SenderId);
        Assert.Equal($"evolution|inst-1|3EB0OUT0000000000024|read|{Member}", e.DedupeKey);
    }

    [Fact]
    public void Receipt_of_a_received_message_is_not_from_me()
    {
        var data = StatusData("3EB0IN00000000000025", JsonValue.Create("READ"));
        data["fromMe"] = false;
        Assert.False(StatusEvent(data).FromMe);
    }

    // ---- messages.delete and messages.edited ----

    [Fact]
    public void Deleted_message_is_a_deleted_status()
    {
        var data = new JsonObject { ["remoteJid"] = Contact + "@s.whatsapp.net", ["fromMe"] = false, ["id"] = "3EB0DEL0000000000001", ["status"] = "DELETED" };
        var e = Single(EvolutionAdapter().Parse(Request("evolution", Envelope("messages.delete", data))));
        AssertWellFormed(e);
        Assert.Equal(InboxEventKind.Status, e.Kind);
        Assert.Equal(InboxMessageStatus.Deleted, e.Status);
        Assert.Equal("3EB0DEL0000000000001", e.ExternalId);
        Assert.Equal("evolution|inst-1|3EB0DEL0000000000001|deleted", e.DedupeKey);
        Assert.Equal(Contact, e.ChatId);
        Assert.Equal("messages.delete", e.ProviderEventType);
    }

    [Fact]
    public void Edited_message_is_a_message_marked_as_edit_with_its_own_key()
    {
        var data = new JsonObject
        {
            ["key"] = new JsonObject { ["remoteJid"] = Contact + "@s.whatsapp.net", ["fromMe"] = false, ["id"] = "3EB0EDT0000000000001" },
            ["type"] = 14,
            ["editedMessage"] = new JsonObject { ["conversation"] = "Chego às 11h" },
            ["timestampMs"] = 1767300060000,
        };
        var e = Single(EvolutionAdapter().Parse(Request("evolution", Envelope("messages.edited", data))));
        AssertWellFormed(e);
        Assert.Equal(InboxEventKind.Message, e.Kind);
        Assert.True(e.IsEdit);
        Assert.Equal("3EB0EDT0000000000001", e.ExternalId);
        Assert.Equal("evolution|inst-1|3EB0EDT0000000000001|edit:1767300060000", e.DedupeKey);
        Assert.Equal("Chego às 11h", e.Text);
        Assert.Equal(Contact, e.ChatId);
        Assert.Equal(Contact, e.SenderId);
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(1767300060000), e.OccurredAt);

        var original = Upsert(Message("3EB0EDT0000000000001", new JsonObject { ["conversation"] = "Chego às 10h" }, "conversation"));
        Assert.NotEqual(original.DedupeKey, e.DedupeKey);
    }

    [Fact]
    public void Edit_of_an_own_message_is_from_the_owner()
    {
        var data = new JsonObject
        {
            ["key"] = new JsonObject { ["remoteJid"] = Contact + "@s.whatsapp.net", ["fromMe"] = true, ["id"] = "3EB0EDT0000000000002" },
            ["type"] = "MESSAGE_EDIT",
            ["editedMessage"] = new JsonObject { ["extendedTextMessage"] = new JsonObject { ["text"] = "corrigido" } },
            ["timestampMs"] = "1767300070000",
        };
        var e = Single(EvolutionAdapter().Parse(Request("evolution", Envelope("messages.edited", data))));
        Assert.True(e.FromMe);
        Assert.Equal(Owner, e.SenderId);
        Assert.Equal("corrigido", e.Text);
    }

    [Fact]
    public void Revoke_protocol_message_is_a_deleted_status()
    {
        var data = new JsonObject
        {
            ["key"] = new JsonObject { ["remoteJid"] = GroupJid, ["fromMe"] = false, ["id"] = "3EB0REV0000000000001", ["participant"] = Member + "@s.whatsapp.net" },
            ["type"] = 0,
        };
        var e = Single(EvolutionAdapter().Parse(Request("evolution", Envelope("messages.edited", data))));
        AssertWellFormed(e);
        Assert.Equal(InboxEventKind.Status, e.Kind);
        Assert.Equal(InboxMessageStatus.Deleted, e.Status);
        Assert.Equal(GroupJid, e.ChatId);
        Assert.Equal(Member, e.SenderId);
    }

    [Fact]
    public void Other_protocol_message_is_kept_as_other()
    {
        var data = new JsonObject { ["type"] = 3, ["ephemeralExpiration"] = 86400 };
        var e = Single(EvolutionAdapter().Parse(Request("evolution", Envelope("messages.edited", data))));
        Assert.Equal(InboxEventKind.Other, e.Kind);
        Assert.Equal("messages.edited", e.ProviderEventType);
    }

    // ---- connection ----

    [Theory]
    [InlineData("open", 200, InboxConnectionState.Connected)]
    [InlineData("connecting", 200, InboxConnectionState.Connecting)]
    [InlineData("close", 401, InboxConnectionState.Disconnected)]
    [InlineData("refused", 428, InboxConnectionState.Disconnected)]
    public void Connection_update_states(string state, int reason, InboxConnectionState expected)
    {
        var data = new JsonObject
        {
            ["instance"] = InstanceName,
            ["wuid"] = Owner + "@s.whatsapp.net",
            ["profileName"] = "Loja Norte",
            ["profilePictureUrl"] = null,
            ["state"] = state,
            ["statusReason"] = reason,
        };
        var e = Single(EvolutionAdapter().Parse(Request("evolution", Envelope("connection.update", data))));
        AssertWellFormed(e);
        Assert.Equal(InboxEventKind.Connection, e.Kind);
        Assert.Equal(expected, e.Connection!.State);
        Assert.Equal(state, e.Connection.ProviderState);
        Assert.Equal(reason.ToString(System.Globalization.CultureInfo.InvariantCulture), e.Connection.Reason);
        Assert.Equal(InstanceName, e.ProviderInstanceId);
        Assert.Null(e.ChatId);
        Assert.DoesNotContain(ApiKey, e.Raw, StringComparison.Ordinal);
    }

    [Fact]
    public void Logout_status_instance_is_a_disconnection()
    {
        var data = new JsonObject { ["instance"] = InstanceName, ["status"] = "closed", ["disconnectionReasonCode"] = 401 };
        var e = Single(EvolutionAdapter().Parse(Request("evolution", Envelope("status.instance", data))));
        Assert.Equal(InboxConnectionState.Disconnected, e.Connection!.State);
        Assert.Equal("401", e.Connection.Reason);
    }

    [Fact]
    public void Qr_code_update_is_other_without_the_qr_image()
    {
        var data = new JsonObject
        {
            ["qrcode"] = new JsonObject { ["instance"] = InstanceName, ["pairingCode"] = null, ["code"] = "2@QRFAKECODE", ["base64"] = "data:image/png;base64," + Base64Image },
        };
        var e = Single(EvolutionAdapter().Parse(Request("evolution", Envelope("qrcode.updated", data))));
        AssertWellFormed(e);
        Assert.Equal(InboxEventKind.Other, e.Kind);
        Assert.Equal("qrcode.updated", e.ProviderEventType);
        Assert.Contains("2@QRFAKECODE", e.Raw, StringComparison.Ordinal);
        Assert.DoesNotContain("/9j/4AAQ", e.Raw, StringComparison.Ordinal);
        Assert.DoesNotContain(ApiKey, e.Raw, StringComparison.Ordinal);
    }

    // ---- other events ----

    [Theory]
    [InlineData("presence.update")]
    [InlineData("chats.upsert")]
    [InlineData("contacts.update")]
    [InlineData("groups.update")]
    [InlineData("group-participants.update")]
    [InlineData("messages.set")]
    [InlineData("call")]
    [InlineData("some.future.event")]
    public void Unknown_and_unmapped_events_are_kept_as_other(string eventName)
    {
        var data = new JsonArray(new JsonObject { ["remoteJid"] = Contact + "@s.whatsapp.net", ["marker"] = "kept-as-other" });
        var e = Single(EvolutionAdapter().Parse(Request("evolution", Envelope(eventName, data))));
        AssertWellFormed(e);
        Assert.Equal(InboxEventKind.Other, e.Kind);
        Assert.Equal(eventName, e.ProviderEventType);
        Assert.Equal(InstanceName, e.ProviderInstanceId);
        Assert.Contains("kept-as-other", e.Raw, StringComparison.Ordinal);
        Assert.DoesNotContain(ApiKey, e.Raw, StringComparison.Ordinal);
    }

    // ---- malformed ----

    [Theory]
    [InlineData("messages.upsert", """{"message":{"conversation":"SECRET-BODY"}}""", "messages.upsert data has no \"key\"")]
    [InlineData("messages.upsert", """{"key":{"remoteJid":"5521988880001@s.whatsapp.net"},"message":{"conversation":"SECRET-BODY"}}""", "messages.upsert data.key has no \"id\"")]
    [InlineData("messages.upsert", """{"key":{"id":"X1"},"message":{"conversation":"SECRET-BODY"}}""", "messages.upsert data.key has no \"remoteJid\"")]
    [InlineData("send.message", "\"SECRET-BODY\"", "send.message has no \"data\" object")]
    [InlineData("messages.update", """{"remoteJid":"5521988880001@s.whatsapp.net","status":"READ","note":"SECRET-BODY"}""", "messages.update data has no \"keyId\"")]
    [InlineData("messages.update", """{"keyId":"X1","status":"READ","note":"SECRET-BODY"}""", "messages.update data has no \"remoteJid\"")]
    [InlineData("messages.update", """{"keyId":"X1","remoteJid":"5521988880001@s.whatsapp.net","note":"SECRET-BODY"}""", "messages.update data has no \"status\"")]
    [InlineData("messages.delete", """{"remoteJid":"5521988880001@s.whatsapp.net","note":"SECRET-BODY"}""", "messages.delete data has no \"keyId\"")]
    public void Malformed_data_says_what_is_missing_without_repeating_the_body(string eventName, string data, string expected)
    {
        var json = Envelope(eventName, JsonNode.Parse(data));
        var ex = Assert.Throws<WebhookParseException>(() => EvolutionAdapter().Parse(Request("evolution", json)));
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("SECRET-BODY", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(ApiKey, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Malformed_media_message_never_puts_base64_in_the_error()
    {
        var data = new JsonObject { ["key"] = new JsonObject { ["remoteJid"] = Contact + "@s.whatsapp.net" }, ["message"] = new JsonObject { ["imageMessage"] = new JsonObject(), ["base64"] = Base64Image } };
        var ex = Assert.Throws<WebhookParseException>(() => EvolutionAdapter().Parse(Request("evolution", Envelope("messages.upsert", data))));
        Assert.DoesNotContain("/9j/", ex.Message, StringComparison.Ordinal);
    }

    // ---- helpers ----

    /// <summary>A prepared Baileys message as Evolution puts it in <c>data</c>.</summary>
    private static JsonObject Message(string id, JsonObject message, string messageType, string? remoteJid = null, bool fromMe = false) => new()
    {
        ["key"] = new JsonObject { ["remoteJid"] = remoteJid ?? Contact + "@s.whatsapp.net", ["fromMe"] = fromMe, ["id"] = id },
        ["pushName"] = "Carla Dias",
        ["status"] = "DELIVERY_ACK",
        ["message"] = message,
        ["contextInfo"] = null,
        ["messageType"] = messageType,
        ["messageTimestamp"] = Timestamp,
        ["instanceId"] = "7a2b3c4d-0000-4000-8000-000000000002",
        ["source"] = "android",
    };

    private static JsonObject StatusData(string keyId, JsonNode? status) => new()
    {
        ["keyId"] = keyId,
        ["remoteJid"] = Contact + "@s.whatsapp.net",
        ["fromMe"] = true,
        ["participant"] = null,
        ["status"] = status,
        ["instanceId"] = "7a2b3c4d-0000-4000-8000-000000000002",
        ["messageId"] = "cmfake0000000000000000002",
    };

    private static string Envelope(string eventName, JsonNode? data) => new JsonObject
    {
        ["event"] = eventName,
        ["instance"] = InstanceName,
        ["data"] = data,
        ["destination"] = "https://hooks.example.com/evolution",
        ["date_time"] = "2026-01-01T17:40:00.000Z",
        ["sender"] = Owner + "@s.whatsapp.net",
        ["server_url"] = "https://evo.example.com",
        ["apikey"] = ApiKey,
    }.ToJsonString();

    private static InboxEvent Upsert(JsonObject data)
    {
        var e = Single(EvolutionAdapter().Parse(Request("evolution", Envelope("messages.upsert", data))));
        AssertWellFormed(e);
        return e;
    }

    private static InboxEvent StatusEvent(JsonObject data)
    {
        var e = Single(EvolutionAdapter().Parse(Request("evolution", Envelope("messages.update", data))));
        AssertWellFormed(e);
        return e;
    }

    /// <summary>A Baileys byte field serialized as an index-keyed object.</summary>
    private static JsonObject ByteObject(int length, int start)
    {
        var node = new JsonObject();
        for (var i = 0; i < length; i++) node[i.ToString(System.Globalization.CultureInfo.InvariantCulture)] = (start + i) % 256;
        return node;
    }
}
