using System.Text.Json;
using Inbox.Reliability.Events;
using static Inbox.Reliability.Providers.Tests.TestSupport;

namespace Inbox.Reliability.Providers.Tests;

public class MetaParsingTests
{
    private const string Folder = "meta-cloud";
    private const string PhoneNumberId = "109000000000001";

    [Fact]
    public void Text_fixture()
    {
        var e = Single(ParseFixture(Folder, "text"));
        Assert.Equal(InboxEventKind.Message, e.Kind);
        Assert.Equal("meta", e.Provider);
        Assert.Equal("inst-1", e.Instance);
        Assert.Equal("wamid.HBgNNTUxMTk5OTk5MDAwMRUCABIYFDNBRkFLRTAwMDAwMDAwMDAwMDAxAA==", e.ExternalId);
        Assert.Equal("meta|inst-1|wamid.HBgNNTUxMTk5OTk5MDAwMRUCABIYFDNBRkFLRTAwMDAwMDAwMDAwMDAxAA==", e.DedupeKey);
        Assert.Equal("messages", e.ProviderEventType);
        Assert.Equal(PhoneNumberId, e.ProviderInstanceId);
        Assert.Equal("5511999990001", e.ChatId);
        Assert.False(e.IsGroup);
        Assert.Equal("5511999990001", e.SenderId);
        Assert.Equal("Ana Souza", e.SenderName);
        Assert.False(e.FromMe);
        Assert.Equal(Utc(1767290000), e.OccurredAt);
        Assert.Equal(new DateTimeOffset(2026, 1, 1, 17, 53, 20, TimeSpan.Zero), e.OccurredAt);
        Assert.Equal(InboxMessageType.Text, e.MessageType);
        Assert.Equal("Olá! Vocês têm esse produto em azul?", e.Text);
        Assert.Null(e.Caption);
        Assert.Null(e.ReplyToId);
        Assert.Null(e.Media);
        Assert.Null(e.Status);
        Assert.Contains("\"text\"", e.Raw);
        Assert.DoesNotContain("entry", e.Raw);
    }

    [Fact]
    public void Image_fixture()
    {
        var e = Single(ParseFixture(Folder, "image"));
        Assert.Equal(InboxMessageType.Image, e.MessageType);
        Assert.Equal("wamid.HBgNNTUxMTk5OTk5MDAwMRUCABIYFDNBRkFLRTAwMDAwMDAwMDAwMDAyAA==", e.ExternalId);
        Assert.Equal(Utc(1767290060), e.OccurredAt);
        Assert.Equal("Foto do produto", e.Text);
        Assert.Equal("Foto do produto", e.Caption);
        var media = Assert.IsType<MediaReference>(e.Media);
        Assert.Equal("1200000000000001", media.MediaId);
        Assert.Equal("https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1200000000000001&ext=1767290360&hash=FAKEHASH", media.Url);
        Assert.Equal("image/jpeg", media.MimeType);
        Assert.Equal("q1Jw0yZr0m7oU0rX6m3c1pS0WlqvS2C7E9wqF6bK5aA=", media.Sha256);
        Assert.Null(media.FileName);
        Assert.Null(media.FileSize);
        Assert.Empty(media.Properties);
    }

    [Fact]
    public void Audio_fixture_is_a_voice_note()
    {
        var e = Single(ParseFixture(Folder, "audio"));
        Assert.Equal(InboxMessageType.Audio, e.MessageType);
        Assert.Equal(Utc(1767290120), e.OccurredAt);
        Assert.Null(e.Text);
        var media = Assert.IsType<MediaReference>(e.Media);
        Assert.Equal("1200000000000002", media.MediaId);
        Assert.Equal("audio/ogg; codecs=opus", media.MimeType);
        Assert.Equal("Zr3Xk1m0bq9uY2kQ8sV0f7H3nJp4tL6wC5dE1gA2bB0=", media.Sha256);
        Assert.Equal("true", media.Properties["voice"]);
    }

    [Fact]
    public void Document_fixture_has_file_name_and_caption()
    {
        var e = Single(ParseFixture(Folder, "document"));
        Assert.Equal(InboxMessageType.Document, e.MessageType);
        Assert.Equal(Utc(1767290180), e.OccurredAt);
        Assert.Equal("Comprovante", e.Caption);
        var media = Assert.IsType<MediaReference>(e.Media);
        Assert.Equal("1200000000000003", media.MediaId);
        Assert.Equal("comprovante.pdf", media.FileName);
        Assert.Equal("application/pdf", media.MimeType);
        Assert.Equal("V5OPpLD/gEG6Xjg0MbmQDLFgcKsL+j5LfY4ny/pZ4MY=", media.Sha256);
    }

    [Theory]
    [InlineData("status-delivered", InboxMessageStatus.Delivered, "delivered", 1767290205)]
    [InlineData("status-read", InboxMessageStatus.Read, "read", 1767290230)]
    public void Status_fixtures(string name, InboxMessageStatus status, string providerStatus, long time)
    {
        var e = Single(ParseFixture(Folder, name));
        Assert.Equal(InboxEventKind.Status, e.Kind);
        Assert.Equal("wamid.HBgNNTUxMTk5OTk5MDAwMRUCABEYEjBGQUtFT1VUQk9VTkQwMDAxAA==", e.ExternalId);
        Assert.Equal($"meta|inst-1|wamid.HBgNNTUxMTk5OTk5MDAwMRUCABEYEjBGQUtFT1VUQk9VTkQwMDAxAA==|{providerStatus}", e.DedupeKey);
        Assert.Equal(status, e.Status);
        Assert.Equal(providerStatus, e.ProviderStatus);
        Assert.Equal("5511999990001", e.ChatId);
        Assert.True(e.FromMe);
        Assert.Equal(Utc(time), e.OccurredAt);
        Assert.Null(e.StatusError);
        Assert.Equal(PhoneNumberId, e.ProviderInstanceId);
        Assert.Equal(InboxMessageType.Unknown, e.MessageType);
    }

    [Fact]
    public void Batch_of_1000_messages_across_entries_and_changes_plus_statuses_gives_one_event_each_in_order()
    {
        var entries = new List<object>();
        var n = 0;
        for (var entry = 0; entry < 4; entry++)
        {
            var changes = new List<object>();
            for (var change = 0; change < 5; change++)
            {
                var batch = new List<object>();
                for (var m = 0; m < 50; m++, n++)
                {
                    batch.Add(new { from = $"55119999{n % 7:D5}", id = $"wamid.BATCH{n:D4}", timestamp = (1767290000 + n).ToString(), type = "text", text = new { body = $"message {n}" } });
                }

                var receipts = new[]
                {
                    new { id = $"wamid.OUT{entry}{change}", status = "delivered", timestamp = "1767290500", recipient_id = "5511999990001" },
                    new { id = $"wamid.OUT{entry}{change}", status = "read", timestamp = "1767290600", recipient_id = "5511999990001" },
                };
                changes.Add(new { field = "messages", value = new { messaging_product = "whatsapp", metadata = new { display_phone_number = "5511999990000", phone_number_id = $"10900000000000{entry}" }, messages = batch, statuses = receipts } });
            }

            entries.Add(new { id = $"WABA{entry}", changes });
        }

        var body = JsonSerializer.SerializeToUtf8Bytes(new { @object = "whatsapp_business_account", entry = entries });
        var events = MetaAdapter().Parse(Request("meta", body));

        Assert.Equal(1000 + 40, events.Count);
        var messages = events.Where(e => e.Kind == InboxEventKind.Message).ToList();
        Assert.Equal(1000, messages.Count);
        Assert.Equal(Enumerable.Range(0, 1000).Select(i => $"wamid.BATCH{i:D4}"), messages.Select(m => m.ExternalId));
        Assert.Equal(1040, events.Select(e => e.DedupeKey).Distinct().Count());
        Assert.Equal("message 999", messages[999].Text);
        Assert.Contains("wamid.BATCH0000", messages[0].Raw);
        Assert.DoesNotContain("wamid.BATCH0001", messages[0].Raw); // the element, not the batch
        Assert.Equal(Utc(1767290999), messages[999].OccurredAt);
        Assert.Equal("109000000000003", messages[999].ProviderInstanceId);
        var statuses = events.Where(e => e.Kind == InboxEventKind.Status).ToList();
        Assert.Equal(40, statuses.Count);
        Assert.Equal(20, statuses.Count(s => s.Status == InboxMessageStatus.Read));
        Assert.Contains(statuses, s => s.DedupeKey == "meta|inst-1|wamid.OUT32|read");
        Assert.Contains(statuses, s => s.DedupeKey == "meta|inst-1|wamid.OUT32|delivered");
        Assert.All(events, AssertWellFormed);
    }

    [Fact]
    public void Failed_status_carries_the_error()
    {
        var body = Envelope(new
        {
            statuses = new[]
            {
                new
                {
                    id = "wamid.FAILED1", status = "failed", timestamp = "1767290700", recipient_id = "5511999990001",
                    errors = new[] { new { code = 131047, title = "Re-engagement message", message = "Re-engagement message", error_data = new { details = "Message failed to send because more than 24 hours have passed since the customer last replied to this number." } } },
                },
            },
        });
        var e = Single(MetaAdapter().Parse(Request("meta", body)));
        Assert.Equal(InboxMessageStatus.Failed, e.Status);
        Assert.Equal("meta|inst-1|wamid.FAILED1|failed", e.DedupeKey);
        var error = Assert.IsType<StatusError>(e.StatusError);
        Assert.Equal("131047", error.Code);
        Assert.Equal("Re-engagement message", error.Title);
        Assert.Equal("Re-engagement message", error.Message);
        Assert.StartsWith("Message failed to send because more than 24 hours", error.Details);
        Assert.Equal(Utc(1767290700), e.OccurredAt);
    }

    [Fact]
    public void Played_and_unknown_statuses()
    {
        var body = Envelope(new
        {
            statuses = new[]
            {
                new { id = "wamid.A", status = "played", timestamp = "1767290700", recipient_id = "5511999990001" },
                new { id = "wamid.A", status = "warning", timestamp = "1767290701", recipient_id = "5511999990001" },
            },
        });
        var events = MetaAdapter().Parse(Request("meta", body));
        Assert.Equal(InboxMessageStatus.Played, events[0].Status);
        Assert.Equal(InboxMessageStatus.Unknown, events[1].Status);
        Assert.Equal("warning", events[1].ProviderStatus);
        Assert.Equal("meta|inst-1|wamid.A|unknown:warning", events[1].DedupeKey);
    }

    [Fact]
    public void Group_status_receipts_of_different_members_are_not_duplicates()
    {
        var body = Envelope(new
        {
            statuses = new[]
            {
                new { id = "wamid.G1", status = "read", timestamp = "1767290700", recipient_id = "120363000000000001", recipient_type = "group", recipient_participant_id = "5511999990001" },
                new { id = "wamid.G1", status = "read", timestamp = "1767290701", recipient_id = "120363000000000001", recipient_type = "group", recipient_participant_id = "5511999990002" },
            },
        });
        var events = MetaAdapter().Parse(Request("meta", body));
        Assert.All(events, e => Assert.True(e.IsGroup));
        Assert.All(events, e => Assert.Equal("120363000000000001", e.ChatId));
        Assert.Equal(["5511999990001", "5511999990002"], events.Select(e => e.SenderId));
        Assert.Equal("meta|inst-1|wamid.G1|read|5511999990001", events[0].DedupeKey);
        Assert.NotEqual(events[0].DedupeKey, events[1].DedupeKey);
    }

    [Fact]
    public void Group_message_uses_the_group_as_chat_and_the_member_as_sender()
    {
        var body = Envelope(new
        {
            contacts = new[] { new { profile = new { name = "Bruno" }, wa_id = "5511999990002" }, new { profile = new { name = "Ana Souza" }, wa_id = "5511999990001" } },
            messages = new[] { new { from = "5511999990002", group_id = "120363000000000001", id = "wamid.GRP1", timestamp = "1767290000", type = "text", text = new { body = "oi grupo" } } },
        });
        var e = Single(MetaAdapter().Parse(Request("meta", body)));
        Assert.True(e.IsGroup);
        Assert.Equal("120363000000000001", e.ChatId);
        Assert.Equal("5511999990002", e.SenderId);
        Assert.Equal("Bruno", e.SenderName);
    }

    [Fact]
    public void Reply_and_forwarded_context()
    {
        var body = Envelope(new
        {
            messages = new object[]
            {
                new { from = "5511999990001", id = "wamid.R1", timestamp = "1767290000", type = "text", text = new { body = "sim" }, context = new { from = "5511999990000", id = "wamid.ORIGINAL" } },
                new { from = "5511999990001", id = "wamid.F1", timestamp = "1767290001", type = "text", text = new { body = "fwd" }, context = new { forwarded = true } },
            },
        });
        var events = MetaAdapter().Parse(Request("meta", body));
        Assert.Equal("wamid.ORIGINAL", events[0].ReplyToId);
        Assert.False(events[0].IsForwarded);
        Assert.Null(events[1].ReplyToId);
        Assert.True(events[1].IsForwarded);
    }

    [Fact]
    public void Other_media_and_content_types()
    {
        var body = Envelope(new
        {
            messages = new object[]
            {
                new { from = "5511999990001", id = "wamid.V", timestamp = "1767290000", type = "video", video = new { caption = "olha", mime_type = "video/mp4", sha256 = "dmlkZW8=", id = "1300" } },
                new { from = "5511999990001", id = "wamid.S", timestamp = "1767290001", type = "sticker", sticker = new { mime_type = "image/webp", sha256 = "c3RpY2tlcg==", id = "1301", animated = true } },
                new { from = "5511999990001", id = "wamid.L", timestamp = "1767290002", type = "location", location = new { latitude = -23.5505, longitude = -46.6333, name = "Loja Centro", address = "Praça da Sé, São Paulo" } },
                new { from = "5511999990001", id = "wamid.C", timestamp = "1767290003", type = "contacts", contacts = new[] { new { name = new { formatted_name = "Bruno Lima", first_name = "Bruno" }, phones = new[] { new { phone = "+55 11 99999-0002", wa_id = "5511999990002", type = "CELL" } } } } },
                new { from = "5511999990001", id = "wamid.RE", timestamp = "1767290004", type = "reaction", reaction = new { message_id = "wamid.OUT1", emoji = "👍" } },
                new { from = "5511999990001", id = "wamid.B", timestamp = "1767290005", type = "interactive", interactive = new { type = "button_reply", button_reply = new { id = "yes", title = "Sim" } } },
                new { from = "5511999990001", id = "wamid.U", timestamp = "1767290006", type = "unsupported", errors = new[] { new { code = 131051, title = "Message type unknown" } } },
            },
        });
        var events = MetaAdapter().Parse(Request("meta", body));
        Assert.Equal(
            [InboxMessageType.Video, InboxMessageType.Sticker, InboxMessageType.Location, InboxMessageType.Contact, InboxMessageType.Reaction, InboxMessageType.Interactive, InboxMessageType.Unknown],
            events.Select(e => e.MessageType));

        Assert.Equal("olha", events[0].Caption);
        Assert.Equal("1300", events[0].Media!.MediaId);
        Assert.Equal("video/mp4", events[0].Media!.MimeType);
        Assert.Equal("true", events[1].Media!.Properties["animated"]);
        var location = Assert.IsType<LocationInfo>(events[2].Location);
        Assert.Equal(-23.5505, location.Latitude);
        Assert.Equal(-46.6333, location.Longitude);
        Assert.Equal("Loja Centro", location.Name);
        Assert.Equal("Praça da Sé, São Paulo", location.Address);
        var card = Assert.Single(events[3].Contacts);
        Assert.Equal("Bruno Lima", card.Name);
        Assert.Equal(new ContactPhone("+55 11 99999-0002", "5511999990002"), Assert.Single(card.Phones));
        Assert.Equal(new ReactionInfo("👍", "wamid.OUT1"), events[4].Reaction);
        Assert.Equal("Sim", events[5].Text);
        Assert.All(events, AssertWellFormed);
    }

    [Fact]
    public void Removed_reaction_has_an_empty_emoji()
    {
        var body = Envelope(new { messages = new[] { new { from = "5511999990001", id = "wamid.RE2", timestamp = "1767290004", type = "reaction", reaction = new { message_id = "wamid.OUT1" } } } });
        Assert.Equal(new ReactionInfo("", "wamid.OUT1"), Single(MetaAdapter().Parse(Request("meta", body))).Reaction);
    }

    [Fact]
    public void Unknown_fields_are_kept_as_other_events_with_a_stable_id()
    {
        var json = """
            {"object":"whatsapp_business_account","entry":[{"id":"100000000000001","time":1767290000,"changes":[
              {"field":"account_update","value":{"phone_number":"5511999990000","event":"VERIFIED_ACCOUNT"}},
              {"field":"phone_number_quality_update","value":{"display_phone_number":"5511999990000","event":"FLAGGED","current_limit":"TIER_1K"}}]}]}
            """;
        var events = MetaAdapter().Parse(Request("meta", json));
        Assert.Equal(2, events.Count);
        Assert.All(events, e => Assert.Equal(InboxEventKind.Other, e.Kind));
        Assert.Equal(["account_update", "phone_number_quality_update"], events.Select(e => e.ProviderEventType));
        Assert.All(events, e => Assert.StartsWith("sha256:", e.ExternalId, StringComparison.Ordinal));
        Assert.Equal(Utc(1767290000), events[0].OccurredAt);
        Assert.Contains("VERIFIED_ACCOUNT", events[0].Raw);

        // A retry of the same payload, re-serialized with other whitespace, gets the same keys.
        var compact = JsonSerializer.Serialize(JsonDocument.Parse(json).RootElement);
        var again = MetaAdapter().Parse(Request("meta", compact));
        Assert.Equal(events.Select(e => e.DedupeKey), again.Select(e => e.DedupeKey));
        Assert.Equal("meta|inst-1|other|" + events[0].ExternalId, events[0].DedupeKey);
    }

    [Fact]
    public void Empty_batch_gives_one_other_event()
    {
        var e = Single(MetaAdapter().Parse(Request("meta", """{"object":"whatsapp_business_account","entry":[]}""")));
        Assert.Equal(InboxEventKind.Other, e.Kind);
        Assert.Equal("whatsapp_business_account", e.ProviderEventType);
        Assert.Equal(ReceivedAt, e.OccurredAt);
    }

    [Theory]
    [InlineData("""{"object":"whatsapp_business_account"}""", "has no \"entry\" array")]
    [InlineData("""{"entry":[1]}""", "entry[0] is not an object")]
    [InlineData("""{"entry":[{"changes":[{"field":"messages","value":{"messages":[{"from":"5511"}]}}]}]}""", "entry[0].changes[0].value.messages[0] has no \"id\"")]
    [InlineData("""{"entry":[{"changes":[{"field":"messages","value":{"messages":[{"id":"wamid.X"}]}}]}]}""", "has no \"from\"")]
    [InlineData("""{"entry":[{"changes":[{"field":"messages","value":{"statuses":[{"id":"wamid.X","status":"read"}]}}]}]}""", "has no \"recipient_id\"")]
    public void Unknown_shapes_throw_a_parse_exception_that_says_where(string json, string expected)
    {
        var ex = Assert.Throws<WebhookParseException>(() => MetaAdapter().Parse(Request("meta", json)));
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
        Assert.StartsWith("Meta Cloud API webhook:", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Timestamp_as_number_is_accepted_and_a_missing_one_falls_back_to_the_capture_time()
    {
        var body = Envelope(new
        {
            messages = new object[]
            {
                new { from = "5511999990001", id = "wamid.N1", timestamp = 1767290000, type = "text", text = new { body = "a" } },
                new { from = "5511999990001", id = "wamid.N2", type = "text", text = new { body = "b" } },
            },
        });
        var events = MetaAdapter().Parse(Request("meta", body));
        Assert.Equal(Utc(1767290000), events[0].OccurredAt);
        Assert.Equal(ReceivedAt, events[1].OccurredAt);
    }

    internal static byte[] Envelope(object value) => JsonSerializer.SerializeToUtf8Bytes(new
    {
        @object = "whatsapp_business_account",
        entry = new[]
        {
            new { id = "100000000000001", changes = new[] { new { field = "messages", value = Merge(new { messaging_product = "whatsapp", metadata = new { display_phone_number = "5511999990000", phone_number_id = PhoneNumberId } }, value) } } },
        },
    });

    private static JsonElement Merge(object a, object b)
    {
        var node = JsonSerializer.SerializeToNode(a)!.AsObject();
        foreach (var (key, value) in JsonSerializer.SerializeToNode(b)!.AsObject().ToList())
        {
            node[key] = value?.DeepClone();
        }

        return JsonSerializer.SerializeToElement(node);
    }
}
