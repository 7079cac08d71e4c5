using System.Text.Json;
using System.Text.Json.Nodes;
using Inbox.Reliability.Events;
using static Inbox.Reliability.Providers.Tests.TestSupport;

namespace Inbox.Reliability.Providers.Tests;

/// <summary>
/// WAHA's documented webhook events (message, message.any, message.reaction, message.ack, message.ack.group,
/// message.edited, message.revoked, session.status, and the events kept as "other"), composed as the events
/// documentation shows them.
/// </summary>
public class WahaDocumentedShapesTests
{
    private const string Me = "79222222222@c.us";
    private const string Contact = "79111111111@c.us";
    private const string Group = "120363404694283820@g.us";
    private const long EnvelopeMs = 1741249702485;
    private const long Seconds = 1741249700;

    // ---- message / message.any --------------------------------------------------------------------------------

    [Fact]
    public void Incoming_text_message()
    {
        var e = Single(Parse("message", Payload("false_79111111111@c.us_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", Contact, Me, fromMe: false, body: "Hi there!")));
        Assert.Equal(InboxEventKind.Message, e.Kind);
        Assert.Equal(InboxMessageType.Text, e.MessageType);
        Assert.Equal("false_79111111111@c.us_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", e.ExternalId);
        Assert.Equal("waha|inst-1|false_79111111111@c.us_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", e.DedupeKey);
        Assert.Equal("message", e.ProviderEventType);
        Assert.Equal("default", e.ProviderInstanceId);
        Assert.Equal("79111111111", e.ChatId);
        Assert.Equal("79111111111", e.SenderId);
        Assert.False(e.FromMe);
        Assert.False(e.IsGroup);
        Assert.Equal("Hi there!", e.Text);
        Assert.Equal(Utc(Seconds), e.OccurredAt);
        Assert.Equal(TimeSpan.Zero, e.OccurredAt.Offset);
        AssertWellFormed(e);
    }

    [Fact]
    public void Message_any_from_me_sent_through_the_api_is_in_the_recipients_chat()
    {
        var payload = Payload("true_79111111111@c.us_BBBBBBBBBBBBBBBB", Me, Contact, fromMe: true, body: "Your order shipped");
        payload["source"] = "api";
        var e = Single(Parse("message.any", payload));
        Assert.True(e.FromMe);
        Assert.Equal("79111111111", e.ChatId);
        Assert.Equal("79222222222", e.SenderId);
        Assert.Equal("WAHA", e.SenderName);
        Assert.Equal("message.any", e.ProviderEventType);
    }

    [Fact]
    public void Message_any_not_from_me_has_the_same_dedupe_key_as_message()
    {
        var payload = Payload("false_79111111111@c.us_CCCCCCCC", Contact, Me, fromMe: false, body: "x");
        var any = Single(Parse("message.any", payload.DeepClone().AsObject(), envelopeId: "evt_01jnq0000000000000000000a1"));
        var message = Single(Parse("message", payload, envelopeId: "evt_01jnq0000000000000000000a2"));
        Assert.False(any.FromMe);
        Assert.Equal(message.DedupeKey, any.DedupeKey);
    }

    [Fact]
    public void Group_message_has_the_group_as_chat_and_the_participant_as_sender()
    {
        var payload = Payload("false_120363404694283820@g.us_DDDDDDDD_79333333333@c.us", Group, Me, fromMe: false, body: "hi all");
        payload["participant"] = "79333333333@c.us";
        payload["_data"] = new JsonObject { ["notifyName"] = "Carla" };
        var e = Single(Parse("message", payload));
        Assert.True(e.IsGroup);
        Assert.Equal(Group, e.ChatId);
        Assert.Equal("79333333333", e.SenderId);
        Assert.Equal("Carla", e.SenderName);
    }

    [Fact]
    public void Group_message_from_a_lid_participant_keeps_the_lid()
    {
        var payload = Payload("false_120363404694283820@g.us_EEEEEEEE_123456789012345@lid", Group, Me, fromMe: false, body: "hi");
        payload["participant"] = "123456789012345@lid";
        var e = Single(Parse("message", payload));
        Assert.Equal(Group, e.ChatId);
        Assert.Equal("123456789012345@lid", e.SenderId);
    }

    [Theory]
    [InlineData("author")]
    [InlineData("_data.author")]
    [InlineData("_data.author._serialized")]
    [InlineData("_data.key.participant")]
    [InlineData("_data.Info.Sender")]
    public void Group_message_without_participant_takes_the_sender_from_the_author(string where)
    {
        var payload = Payload("false_120363404694283820@g.us_FFFFFFFF", Group, Me, fromMe: false, body: "hi");
        payload["participant"] = null;
        var data = new JsonObject();
        switch (where)
        {
            case "author": payload["author"] = "79444444444@c.us"; break;
            case "_data.author": data["author"] = "79444444444@c.us"; break;
            case "_data.author._serialized": data["author"] = new JsonObject { ["server"] = "c.us", ["user"] = "79444444444", ["_serialized"] = "79444444444@c.us" }; break;
            case "_data.key.participant": data["key"] = new JsonObject { ["remoteJid"] = Group, ["participant"] = "79444444444@s.whatsapp.net" }; break;
            default: data["Info"] = new JsonObject { ["Chat"] = Group, ["Sender"] = "79444444444@s.whatsapp.net", ["IsGroup"] = true }; break;
        }

        payload["_data"] = data;
        var e = Single(Parse("message", payload));
        Assert.Equal(Group, e.ChatId);
        Assert.Equal("79444444444", e.SenderId);
    }

    [Fact]
    public void Message_from_me_in_a_group_is_in_the_group_with_me_as_sender()
    {
        var payload = Payload("true_120363404694283820@g.us_GGGGGGGG_79222222222@c.us", Me, Group, fromMe: true, body: "hello group");
        var e = Single(Parse("message.any", payload));
        Assert.True(e.FromMe);
        Assert.True(e.IsGroup);
        Assert.Equal(Group, e.ChatId);
        Assert.Equal("79222222222", e.SenderId);
    }

    [Fact]
    public void Lid_and_newsletter_chats_keep_their_ids()
    {
        var lid = Single(Parse("message", Payload("false_98765432109876@lid_HHHH", "98765432109876@lid", Me, fromMe: false, body: "hi")));
        Assert.Equal("98765432109876@lid", lid.ChatId);
        Assert.False(lid.IsGroup);
        var channel = Single(Parse("message", Payload("false_120363111111111111@newsletter_IIII", "120363111111111111@newsletter", Me, fromMe: false, body: "news")));
        Assert.Equal("120363111111111111@newsletter", channel.ChatId);
    }

    [Fact]
    public void Reply_carries_the_quoted_message_id()
    {
        var payload = Payload("false_79111111111@c.us_JJJJ", Contact, Me, fromMe: false, body: "Yes, confirmed");
        payload["replyTo"] = new JsonObject { ["id"] = "true_79111111111@c.us_KKKK", ["participant"] = Me, ["body"] = "Confirm order #123?", ["_data"] = new JsonObject() };
        Assert.Equal("true_79111111111@c.us_KKKK", Single(Parse("message", payload)).ReplyToId);

        var bare = Payload("false_79111111111@c.us_JJJ2", Contact, Me, fromMe: false, body: "ok");
        bare["replyTo"] = "KKKK";
        Assert.Equal("KKKK", Single(Parse("message", bare)).ReplyToId);
    }

    [Theory]
    [InlineData("image/jpeg", null, InboxMessageType.Image)]
    [InlineData("video/mp4", null, InboxMessageType.Video)]
    [InlineData("audio/ogg; codecs=opus", null, InboxMessageType.Audio)]
    [InlineData("application/pdf", "invoice-0042.pdf", InboxMessageType.Document)]
    [InlineData("image/webp", null, InboxMessageType.Sticker)]
    public void Media_message_with_a_downloaded_file(string mimeType, string? fileName, InboxMessageType expected)
    {
        var payload = Payload("false_79111111111@c.us_MEDIA1", Contact, Me, fromMe: false, body: "see attached");
        payload["hasMedia"] = true;
        payload["media"] = new JsonObject { ["url"] = "http://localhost:3000/api/files/default/false_79111111111@c.us_MEDIA1.bin", ["mimetype"] = mimeType, ["filename"] = fileName, ["error"] = null };
        var e = Single(Parse("message", payload));
        Assert.Equal(expected, e.MessageType);
        Assert.Equal("see attached", e.Caption);
        Assert.Equal("see attached", e.Text);
        var media = Assert.IsType<MediaReference>(e.Media);
        Assert.Equal("http://localhost:3000/api/files/default/false_79111111111@c.us_MEDIA1.bin", media.Url);
        Assert.Equal(mimeType, media.MimeType);
        Assert.Equal(fileName, media.FileName);
        Assert.Equal("false_79111111111@c.us_MEDIA1", media.MediaId);
        Assert.Empty(media.Properties);
    }

    [Fact]
    public void Media_not_downloaded_because_of_the_configuration_keeps_mimetype_and_file_name()
    {
        var payload = Payload("false_79111111111@c.us_MEDIA2", Contact, Me, fromMe: false, body: null);
        payload["hasMedia"] = true;
        payload["media"] = new JsonObject { ["url"] = null, ["mimetype"] = "application/zip", ["filename"] = "photos.zip" };
        var e = Single(Parse("message", payload));
        Assert.Equal(InboxMessageType.Document, e.MessageType);
        var media = Assert.IsType<MediaReference>(e.Media);
        Assert.Null(media.Url);
        Assert.Equal("photos.zip", media.FileName);
        Assert.Equal("true", media.Properties["notDownloaded"]);
        Assert.Null(e.Caption);
    }

    [Fact]
    public void Media_download_error_is_kept_and_media_null_is_a_reference_to_fetch_later()
    {
        var failed = Payload("false_79111111111@c.us_MEDIA3", Contact, Me, fromMe: false, body: null);
        failed["hasMedia"] = true;
        failed["media"] = new JsonObject { ["url"] = null, ["mimetype"] = "video/mp4", ["filename"] = null, ["error"] = new JsonObject { ["message"] = "media download failed" } };
        var f = Single(Parse("message", failed));
        Assert.Equal(InboxMessageType.Video, f.MessageType);
        Assert.True(f.Media!.Properties.ContainsKey("providerError"));
        Assert.False(f.Media.Properties.ContainsKey("notDownloaded"));

        var skipped = Payload("false_79111111111@c.us_MEDIA4", Contact, Me, fromMe: false, body: null);
        skipped["hasMedia"] = true;
        skipped["media"] = null;
        skipped["_data"] = new JsonObject { ["type"] = "ptt" };
        var s = Single(Parse("message", skipped));
        Assert.Equal(InboxMessageType.Audio, s.MessageType);
        Assert.Equal("true", s.Media!.Properties["notDownloaded"]);
        Assert.Equal("true", s.Media.Properties["voice"]);
    }

    [Fact]
    public void Base64_thumbnail_in_the_body_of_a_media_message_is_not_a_caption()
    {
        var thumbnail = "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAYEBQYFBAYGBQYHBwYIChAKCgkJChQODwwQFxQYGBcUFhYaHSUfGhsjHBYWICwgIyYnKSopGR8tMC0oMCUoKSj/" + new string('A', 300);
        var payload = Payload("false_79111111111@c.us_MEDIA5", Contact, Me, fromMe: false, body: thumbnail);
        payload["hasMedia"] = true;
        payload["media"] = new JsonObject { ["url"] = "http://localhost:3000/api/files/default/x.jpeg", ["mimetype"] = "image/jpeg" };
        var e = Single(Parse("message", payload));
        Assert.Equal(InboxMessageType.Image, e.MessageType);
        Assert.Null(e.Caption);
        Assert.Null(e.Text);
        Assert.DoesNotContain("/9j/4AAQ", e.Raw ?? "", StringComparison.Ordinal);
    }

    [Fact]
    public void Location_message()
    {
        var payload = Payload("false_79111111111@c.us_LOC1", Contact, Me, fromMe: false, body: "");
        payload["location"] = new JsonObject { ["latitude"] = 38.8937255, ["longitude"] = -77.0969763, ["description"] = "Our store", ["address"] = "1 Main St", ["url"] = "https://maps.example.com/x" };
        var e = Single(Parse("message", payload));
        Assert.Equal(InboxMessageType.Location, e.MessageType);
        Assert.Equal(new LocationInfo(38.8937255, -77.0969763) { Name = "Our store", Address = "1 Main St", Url = "https://maps.example.com/x" }, e.Location);
    }

    [Fact]
    public void Several_vcards_give_one_card_each()
    {
        var payload = Payload("false_79111111111@c.us_VCARD1", Contact, Me, fromMe: false, body: null);
        payload["vCards"] = new JsonArray(
            "BEGIN:VCARD\nVERSION:3.0\nFN:Jane Doe\nTEL;type=CELL;type=VOICE;waid=79555555555:+7 955 555-55-55\nEND:VCARD",
            "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:John Roe\r\nitem1.TEL;waid=79666666666:+7 966 666-66-66\r\nitem1.X-ABLabel:Mobile\r\nEND:VCARD");
        var e = Single(Parse("message", payload));
        Assert.Equal(InboxMessageType.Contact, e.MessageType);
        Assert.Equal(["Jane Doe", "John Roe"], e.Contacts.Select(c => c.Name));
        Assert.Equal("79555555555", Assert.Single(e.Contacts[0].Phones).WaId);
        Assert.Equal(new ContactPhone("+7 966 666-66-66", "79666666666"), Assert.Single(e.Contacts[1].Phones));
        Assert.NotNull(e.Contacts[1].VCard);
    }

    // ---- message.reaction -------------------------------------------------------------------------------------

    [Fact]
    public void Reaction_with_a_fractional_timestamp_and_its_removal()
    {
        var reaction = new JsonObject
        {
            ["id"] = "false_79111111111@c.us_REACT1",
            ["from"] = Contact,
            ["fromMe"] = false,
            ["participant"] = Contact,
            ["to"] = Me,
            ["timestamp"] = 1710481111.853,
            ["reaction"] = new JsonObject { ["text"] = "🙏", ["messageId"] = "true_79111111111@c.us_OUT1" },
        };
        var e = Single(Parse("message.reaction", reaction));
        Assert.Equal(InboxMessageType.Reaction, e.MessageType);
        Assert.Equal(new ReactionInfo("🙏", "true_79111111111@c.us_OUT1"), e.Reaction);
        Assert.Equal(Utc(1710481111), e.OccurredAt);
        Assert.Equal("79111111111", e.ChatId);

        var removal = reaction.DeepClone().AsObject();
        removal["id"] = "false_79111111111@c.us_REACT2";
        removal["reaction"]!["text"] = "";
        var r = Single(Parse("message.reaction", removal));
        Assert.Equal(new ReactionInfo("", "true_79111111111@c.us_OUT1"), r.Reaction);
        Assert.NotEqual(e.DedupeKey, r.DedupeKey);
    }

    [Fact]
    public void Own_reaction_is_from_me_in_the_recipients_chat()
    {
        var e = Single(Parse("message.reaction", new JsonObject
        {
            ["id"] = "true_79111111111@c.us_REACT3",
            ["from"] = Me,
            ["fromMe"] = true,
            ["to"] = Contact,
            ["timestamp"] = 1710481112,
            ["reaction"] = new JsonObject { ["text"] = "👍", ["messageId"] = "false_79111111111@c.us_IN1" },
        }));
        Assert.True(e.FromMe);
        Assert.Equal("79111111111", e.ChatId);
        Assert.Equal("79222222222", e.SenderId);
    }

    [Fact]
    public void Reaction_sent_as_a_message_event_is_a_reaction()
    {
        var payload = Payload("false_79111111111@c.us_REACT4", Contact, Me, fromMe: false, body: "");
        payload["reaction"] = new JsonObject { ["text"] = "❤️", ["messageId"] = "true_79111111111@c.us_OUT2" };
        var e = Single(Parse("message", payload));
        Assert.Equal(InboxMessageType.Reaction, e.MessageType);
        Assert.Equal(new ReactionInfo("❤️", "true_79111111111@c.us_OUT2"), e.Reaction);
    }

    // ---- message.ack / message.ack.group ----------------------------------------------------------------------

    [Theory]
    [InlineData(-1, "ERROR", InboxMessageStatus.Failed, "failed")]
    [InlineData(0, "PENDING", InboxMessageStatus.Pending, "pending")]
    [InlineData(1, "SERVER", InboxMessageStatus.Sent, "sent")]
    [InlineData(2, "DEVICE", InboxMessageStatus.Delivered, "delivered")]
    [InlineData(3, "READ", InboxMessageStatus.Read, "read")]
    [InlineData(4, "PLAYED", InboxMessageStatus.Played, "played")]
    public void Ack_numbers_and_names(int ack, string ackName, InboxMessageStatus expected, string keyPart)
    {
        var e = Single(Parse("message.ack", new JsonObject
        {
            ["id"] = "true_79111111111@c.us_4CC5EDD64BC22EBA6D639F2AF571346C",
            ["from"] = Contact,
            ["participant"] = null,
            ["fromMe"] = true,
            ["ack"] = ack,
            ["ackName"] = ackName,
        }));
        Assert.Equal(InboxEventKind.Status, e.Kind);
        Assert.Equal(expected, e.Status);
        Assert.Equal(ack.ToString(System.Globalization.CultureInfo.InvariantCulture), e.ProviderStatus);
        Assert.Equal("waha|inst-1|true_79111111111@c.us_4CC5EDD64BC22EBA6D639F2AF571346C|" + keyPart, e.DedupeKey);
        Assert.Equal("79111111111", e.ChatId);
        Assert.True(e.FromMe);
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(EnvelopeMs), e.OccurredAt);
        if (expected == InboxMessageStatus.Failed)
        {
            var error = Assert.IsType<StatusError>(e.StatusError);
            Assert.Equal("-1", error.Code);
            Assert.Equal("ERROR", error.Title);
        }
        else
        {
            Assert.Null(e.StatusError);
        }

        AssertWellFormed(e);
    }

    [Theory]
    [InlineData("ERROR", InboxMessageStatus.Failed)]
    [InlineData("PLAYED", InboxMessageStatus.Played)]
    [InlineData("READ", InboxMessageStatus.Read)]
    public void Ack_name_alone_is_enough(string ackName, InboxMessageStatus expected)
    {
        var e = Single(Parse("message.ack", new JsonObject { ["id"] = "true_79111111111@c.us_X1", ["from"] = Contact, ["fromMe"] = true, ["ackName"] = ackName }));
        Assert.Equal(expected, e.Status);
        Assert.Equal(ackName, e.ProviderStatus);
        AssertWellFormed(e);
    }

    [Fact]
    public void Group_acks_are_statuses_per_participant()
    {
        JsonObject Receipt(string participant) => new()
        {
            ["id"] = "true_120363404694283820@g.us_4CC5EDD64BC22EBA6D639F2AF571346C_" + participant,
            ["from"] = Group,
            ["participant"] = participant,
            ["fromMe"] = true,
            ["ack"] = 3,
            ["ackName"] = "READ",
        };
        var first = Single(Parse("message.ack.group", Receipt("9999@lid")));
        var second = Single(Parse("message.ack.group", Receipt("79333333333@c.us")));
        Assert.Equal(InboxEventKind.Status, first.Kind);
        Assert.Equal("message.ack.group", first.ProviderEventType);
        Assert.Equal(InboxMessageStatus.Read, first.Status);
        Assert.True(first.IsGroup);
        Assert.Equal(Group, first.ChatId);
        Assert.Equal("9999@lid", first.SenderId);
        Assert.EndsWith("|read|9999@lid", first.DedupeKey, StringComparison.Ordinal);
        Assert.Equal("79333333333", second.SenderId);
        Assert.NotEqual(first.DedupeKey, second.DedupeKey);

        // The same receipt as a plain message.ack event.
        var plain = Single(Parse("message.ack", Receipt("9999@lid")));
        Assert.Equal(first.DedupeKey, plain.DedupeKey);
    }

    // ---- message.edited / message.revoked ---------------------------------------------------------------------

    [Fact]
    public void Edited_message_is_an_edit_of_the_original_with_its_own_dedupe_key()
    {
        var original = Single(Parse("message", Payload("false_79111111111@c.us_ORIGINAL1", Contact, Me, fromMe: false, body: "See you at 5")));
        var edit = Payload("false_79111111111@c.us_EDITACTION1", Contact, Me, fromMe: false, body: "See you at 6");
        edit["editedMessageId"] = "ORIGINAL1";
        var e = Single(Parse("message.edited", edit));
        Assert.Equal(InboxEventKind.Message, e.Kind);
        Assert.True(e.IsEdit);
        Assert.Equal("See you at 6", e.Text);
        Assert.Equal(InboxMessageType.Text, e.MessageType);
        Assert.Equal("false_79111111111@c.us_ORIGINAL1", e.ExternalId);
        Assert.Equal("waha|inst-1|false_79111111111@c.us_ORIGINAL1|edit:EDITACTION1", e.DedupeKey);
        Assert.Equal("message.edited", e.ProviderEventType);
        Assert.Equal("79111111111", e.ChatId);
        Assert.NotEqual(original.DedupeKey, e.DedupeKey);
    }

    [Fact]
    public void Edits_that_reuse_the_original_id_are_distinct_from_it_and_from_each_other()
    {
        var original = Single(Parse("message", Payload("true_79111111111@c.us_ORIGINAL2", Me, Contact, fromMe: true, body: "v1")));
        var first = Payload("true_79111111111@c.us_ORIGINAL2", Me, Contact, fromMe: true, body: "v2");
        first["editedMessageId"] = "ORIGINAL2";
        var second = Payload("true_79111111111@c.us_ORIGINAL2", Me, Contact, fromMe: true, body: "v3");
        second["editedMessageId"] = "ORIGINAL2";
        var a = Single(Parse("message.edited", first));
        var b = Single(Parse("message.edited", second));
        Assert.Equal("true_79111111111@c.us_ORIGINAL2", a.ExternalId);
        Assert.True(a.FromMe);
        Assert.Equal("79111111111", a.ChatId);
        Assert.Equal(3, new[] { original.DedupeKey, a.DedupeKey, b.DedupeKey }.Distinct().Count());
        Assert.Equal(a.DedupeKey, Single(Parse("message.edited", first.DeepClone().AsObject())).DedupeKey);
    }

    [Fact]
    public void Edit_in_a_group_keeps_the_participant_part_of_the_id()
    {
        var edit = Payload("false_120363404694283820@g.us_EDITACTION3_79333333333@c.us", Group, Me, fromMe: false, body: "fixed typo");
        edit["participant"] = "79333333333@c.us";
        edit["editedMessageId"] = "ORIGINAL3";
        var e = Single(Parse("message.edited", edit));
        Assert.Equal("false_120363404694283820@g.us_ORIGINAL3_79333333333@c.us", e.ExternalId);
        Assert.Equal("79333333333", e.SenderId);
        Assert.True(e.IsGroup);
    }

    [Fact]
    public void Revoked_message_is_a_deleted_status_of_the_revoked_message()
    {
        var after = Payload("false_79111111111@c.us_REVOKEACTION1", Contact, Me, fromMe: false, body: null);
        after["_data"] = new JsonObject { ["type"] = "revoked" };
        var e = Single(Parse("message.revoked", new JsonObject { ["after"] = after, ["revokedMessageId"] = "REVOKED1", ["before"] = null }));
        Assert.Equal(InboxEventKind.Status, e.Kind);
        Assert.Equal(InboxMessageStatus.Deleted, e.Status);
        Assert.Equal("revoked", e.ProviderStatus);
        Assert.Equal("false_79111111111@c.us_REVOKED1", e.ExternalId);
        Assert.Equal("waha|inst-1|false_79111111111@c.us_REVOKED1|deleted", e.DedupeKey);
        Assert.Equal("79111111111", e.ChatId);
        Assert.False(e.FromMe);
        Assert.Equal("message.revoked", e.ProviderEventType);
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(EnvelopeMs), e.OccurredAt);
        AssertWellFormed(e);
    }

    [Fact]
    public void Revoked_message_uses_before_when_given_and_works_in_groups()
    {
        var before = Payload("true_120363404694283820@g.us_REVOKED2_79222222222@c.us", Me, Group, fromMe: true, body: "oops");
        var after = Payload("true_120363404694283820@g.us_REVOKEACTION2_79222222222@c.us", Me, Group, fromMe: true, body: null);
        var e = Single(Parse("message.revoked", new JsonObject { ["after"] = after, ["revokedMessageId"] = "REVOKED2", ["before"] = before }));
        Assert.Equal("true_120363404694283820@g.us_REVOKED2_79222222222@c.us", e.ExternalId);
        Assert.True(e.IsGroup);
        Assert.Equal(Group, e.ChatId);
        Assert.True(e.FromMe);
        Assert.DoesNotContain("oops", e.Text ?? "", StringComparison.Ordinal);
    }

    // ---- session.status ---------------------------------------------------------------------------------------

    [Theory]
    [InlineData("WORKING", InboxConnectionState.Connected)]
    [InlineData("STARTING", InboxConnectionState.Connecting)]
    [InlineData("SCAN_QR_CODE", InboxConnectionState.Disconnected)]
    [InlineData("FAILED", InboxConnectionState.Disconnected)]
    [InlineData("STOPPED", InboxConnectionState.Disconnected)]
    [InlineData("PASSKEY_CONFIRMATION_REQUIRED", InboxConnectionState.Disconnected)]
    public void Session_status(string status, InboxConnectionState expected)
    {
        var payload = new JsonObject
        {
            ["status"] = status,
            ["statuses"] = new JsonArray(
                new JsonObject { ["status"] = "STOPPED", ["timestamp"] = 1700000001000 },
                new JsonObject { ["status"] = "STARTING", ["timestamp"] = 1700000002000 },
                new JsonObject { ["status"] = status, ["timestamp"] = 1700000003000 }),
            ["data"] = null,
        };
        var e = Single(Parse("session.status", payload, envelopeId: "evt_01jnq0000000000000000000s1"));
        Assert.Equal(InboxEventKind.Connection, e.Kind);
        Assert.Equal(expected, e.Connection!.State);
        Assert.Equal(status, e.Connection.ProviderState);
        Assert.Equal(expected == InboxConnectionState.Disconnected ? status : null, e.Connection.Reason);
        Assert.Equal("evt_01jnq0000000000000000000s1", e.ExternalId);
        Assert.Equal("waha|inst-1|connection|evt_01jnq0000000000000000000s1", e.DedupeKey);
        Assert.Equal("session.status", e.ProviderEventType);
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(EnvelopeMs), e.OccurredAt);
        Assert.Null(e.ChatId);
    }

    [Fact]
    public void Working_session_with_restriction_data_is_still_connected()
    {
        var payload = new JsonObject
        {
            ["status"] = "WORKING",
            ["data"] = new JsonObject { ["reachoutTimelock"] = new JsonObject { ["enforcementType"] = "RESTRICT_ALL_COMPANIONS", ["isActive"] = true, ["timeEnforcementEnds"] = 1784477333 } },
        };
        var e = Single(Parse("session.status", payload));
        Assert.Equal(InboxConnectionState.Connected, e.Connection!.State);
        Assert.Contains("reachoutTimelock", e.Raw);
    }

    // ---- other events -----------------------------------------------------------------------------------------

    [Theory]
    [InlineData("presence.update")]
    [InlineData("poll.vote")]
    [InlineData("group.v2.join")]
    [InlineData("group.v2.participants")]
    [InlineData("call.received")]
    [InlineData("label.upsert")]
    [InlineData("chat.archive")]
    [InlineData("message.waiting")]
    [InlineData("engine.event")]
    [InlineData("state.change")]
    [InlineData("some.future.event")]
    public void Other_events_are_kept_as_other(string eventType)
    {
        var e = Single(Parse(eventType, new JsonObject { ["id"] = "x-1", ["marker"] = "kept-" + eventType }, envelopeId: "evt_01jnq0000000000000000000o1"));
        Assert.Equal(InboxEventKind.Other, e.Kind);
        Assert.Equal(eventType, e.ProviderEventType);
        Assert.Equal("evt_01jnq0000000000000000000o1", e.ExternalId);
        Assert.Equal("waha|inst-1|other|evt_01jnq0000000000000000000o1", e.DedupeKey);
        Assert.Equal("default", e.ProviderInstanceId);
        Assert.Contains("kept-" + eventType, e.Raw);
    }

    [Fact]
    public void Other_event_without_an_envelope_id_gets_a_stable_payload_hash()
    {
        var json = """{"event":"presence.update","session":"default","payload":{"id":"79111111111@c.us","presences":[{"participant":"79111111111@c.us","lastKnownPresence":"typing"}]}}""";
        var first = Single(WahaAdapter().Parse(Request("waha", json)));
        var again = Single(WahaAdapter().Parse(Request("waha", JsonNode.Parse(json)!.ToJsonString(new JsonSerializerOptions { WriteIndented = true }))));
        Assert.Equal(InboxEventKind.Other, first.Kind);
        Assert.StartsWith("sha256:", first.ExternalId, StringComparison.Ordinal);
        Assert.Equal(first.DedupeKey, again.DedupeKey);
    }

    // ---- malformed --------------------------------------------------------------------------------------------

    [Theory]
    [InlineData("""{"event":"message.edited","session":"default"}""", "message.edited has no \"payload\" object")]
    [InlineData("""{"event":"message.edited","payload":{"from":"79111111111@c.us","body":"SECRET-BODY"}}""", "message.edited payload has no \"id\"")]
    [InlineData("""{"event":"message.revoked","payload":{"revokedMessageId":"A"}}""", "message.revoked payload has no \"after\" or \"before\" object")]
    [InlineData("""{"event":"message.revoked","payload":{"after":{"body":"SECRET-BODY"}}}""", "message.revoked payload has no \"revokedMessageId\"")]
    [InlineData("""{"event":"message.revoked","payload":{"after":{"id":"false_1@c.us_A"},"revokedMessageId":"B"}}""", "message.revoked payload has no \"from\"")]
    [InlineData("""{"event":"message.ack.group","payload":{"id":"A","from":"1@g.us"}}""", "message.ack.group payload has no \"ack\"")]
    [InlineData("""{"event":"message.ack.group"}""", "message.ack.group has no \"payload\" object")]
    [InlineData("""{"event":"message.reaction","payload":{"id":"A","reaction":{"text":"SECRET-BODY"}}}""", "message.reaction payload has no \"from\"")]
    public void Malformed_events_throw_saying_what_is_wrong_without_the_body(string json, string expected)
    {
        var ex = Assert.Throws<WebhookParseException>(() => WahaAdapter().Parse(Request("waha", json)));
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
        Assert.StartsWith("WAHA webhook:", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("SECRET-BODY", ex.Message, StringComparison.Ordinal);
    }

    // ---- helpers ----------------------------------------------------------------------------------------------

    private static IReadOnlyList<InboxEvent> Parse(string eventType, JsonObject payload, string envelopeId = "evt_01jnq0000000000000000000e1")
    {
        var envelope = new JsonObject
        {
            ["id"] = envelopeId,
            ["timestamp"] = EnvelopeMs,
            ["event"] = eventType,
            ["session"] = "default",
            ["metadata"] = new JsonObject { ["user.id"] = "123" },
            ["me"] = new JsonObject { ["id"] = Me, ["pushName"] = "WAHA" },
            ["payload"] = payload,
            ["engine"] = "WEBJS",
            ["environment"] = new JsonObject { ["tier"] = "CORE", ["version"] = "2025.3.1" },
        };
        return WahaAdapter().Parse(Request("waha", envelope.ToJsonString()));
    }

    private static JsonObject Payload(string id, string from, string to, bool fromMe, string? body) => new()
    {
        ["id"] = id,
        ["timestamp"] = Seconds,
        ["from"] = from,
        ["fromMe"] = fromMe,
        ["source"] = "app",
        ["to"] = to,
        ["participant"] = null,
        ["body"] = body,
        ["hasMedia"] = false,
        ["media"] = null,
        ["ack"] = 1,
        ["ackName"] = "SERVER",
        ["replyTo"] = null,
        ["vCards"] = new JsonArray(),
        ["_data"] = new JsonObject(),
    };
}
