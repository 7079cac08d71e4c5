using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Inbox.Reliability.Events;
using static Inbox.Reliability.Providers.Tests.TestSupport;

namespace Inbox.Reliability.Providers.Tests;

/// <summary>
/// The WhatsApp Cloud API's documented webhook shapes (messages webhook reference: text, media, location, contacts,
/// reaction, interactive, button, context, referral, order, system, unsupported, group; statuses; other fields),
/// composed as the documentation shows them.
/// </summary>
public class MetaDocumentedShapesTests
{
    private const string Waba = "102290129340398";
    private const string PhoneNumberId = "106540352242922";
    private const string Customer = "16505551234";
    private const long Time = 1749416383;

    // ---- messages ---------------------------------------------------------------------------------------------

    [Fact]
    public void Text_message_is_normalized_with_the_profile_name_and_a_utc_time()
    {
        var e = Single(Parse(Messages(Message("wamid.TEXT1", "text", new { text = new { body = "Does it come in another color?" } }))));
        Assert.Equal(InboxEventKind.Message, e.Kind);
        Assert.Equal(InboxMessageType.Text, e.MessageType);
        Assert.Equal("wamid.TEXT1", e.ExternalId);
        Assert.Equal("meta|inst-1|wamid.TEXT1", e.DedupeKey);
        Assert.Equal("messages", e.ProviderEventType);
        Assert.Equal(PhoneNumberId, e.ProviderInstanceId);
        Assert.Equal(Customer, e.ChatId);
        Assert.Equal(Customer, e.SenderId);
        Assert.Equal("Sheena Nelson", e.SenderName);
        Assert.False(e.IsGroup);
        Assert.False(e.FromMe);
        Assert.Equal("Does it come in another color?", e.Text);
        Assert.Null(e.Caption);
        Assert.Null(e.ReplyToId);
        Assert.False(e.IsForwarded);
        Assert.Equal(Utc(Time), e.OccurredAt);
        Assert.Equal(TimeSpan.Zero, e.OccurredAt.Offset);
        AssertWellFormed(e);
    }

    [Theory]
    [InlineData("image", InboxMessageType.Image, "image/jpeg", "Pineapple", null, null)]
    [InlineData("video", InboxMessageType.Video, "video/mp4", "Unboxing", null, null)]
    [InlineData("document", InboxMessageType.Document, "application/pdf", "Invoice", "invoice-0042.pdf", null)]
    [InlineData("audio", InboxMessageType.Audio, "audio/ogg; codecs=opus", null, null, "voice")]
    [InlineData("sticker", InboxMessageType.Sticker, "image/webp", null, null, "animated")]
    public void Media_messages_carry_a_media_reference(string type, InboxMessageType expected, string mimeType, string? caption, string? fileName, string? flag)
    {
        var media = new JsonObject
        {
            ["mime_type"] = mimeType,
            ["sha256"] = "u7Fkq0Q8tGc9vXgV3r2yB5nO1mZp6cS4dJ8wE0aH2iK=",
            ["id"] = "1003383421387256",
            ["url"] = "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1003383421387256&ext=1749416683&hash=ATs",
        };
        if (caption is not null) media["caption"] = caption;
        if (fileName is not null) media["filename"] = fileName;
        if (flag is not null) media[flag] = true;
        var e = Single(Parse(Messages(Message("wamid.MEDIA1", type, new JsonObject { [type] = media }))));

        Assert.Equal(expected, e.MessageType);
        Assert.Equal(caption, e.Caption);
        Assert.Equal(caption, e.Text);
        var reference = Assert.IsType<MediaReference>(e.Media);
        Assert.Equal("1003383421387256", reference.MediaId);
        Assert.Equal(mimeType, reference.MimeType);
        Assert.Equal("u7Fkq0Q8tGc9vXgV3r2yB5nO1mZp6cS4dJ8wE0aH2iK=", reference.Sha256);
        Assert.StartsWith("https://lookaside.fbsbx.com/", reference.Url, StringComparison.Ordinal);
        Assert.Equal(fileName, reference.FileName);
        if (flag is null) Assert.Empty(reference.Properties);
        else Assert.Equal("true", reference.Properties[flag]);
        AssertWellFormed(e);
    }

    [Fact]
    public void Audio_that_is_not_a_voice_note_and_media_without_url_keep_only_the_media_id()
    {
        var e = Single(Parse(Messages(Message("wamid.AUDIO2", "audio", new { audio = new { mime_type = "audio/mpeg", sha256 = "c2hhMjU2", id = "2003383421387256", voice = false } }))));
        Assert.Equal(InboxMessageType.Audio, e.MessageType);
        var media = Assert.IsType<MediaReference>(e.Media);
        Assert.Equal("2003383421387256", media.MediaId);
        Assert.Null(media.Url);
        Assert.False(media.Properties.ContainsKey("voice"));
        Assert.Null(e.Text);
    }

    [Fact]
    public void Location_message_keeps_name_address_and_url()
    {
        var e = Single(Parse(Messages(Message("wamid.LOC1", "location", new
        {
            location = new { address = "1 Hacker Way, Menlo Park, CA 94025", latitude = 37.483253479003906, longitude = -122.14960479736328, name = "Main Street Beach", url = "https://www.example.com/place" },
        }))));
        Assert.Equal(InboxMessageType.Location, e.MessageType);
        var location = Assert.IsType<LocationInfo>(e.Location);
        Assert.Equal(37.483253479003906, location.Latitude);
        Assert.Equal(-122.14960479736328, location.Longitude);
        Assert.Equal("Main Street Beach", location.Name);
        Assert.Equal("1 Hacker Way, Menlo Park, CA 94025", location.Address);
        Assert.Equal("https://www.example.com/place", location.Url);
    }

    [Fact]
    public void Contacts_message_with_several_contacts_gives_one_card_each()
    {
        var e = Single(Parse(Messages(Message("wamid.CONTACTS1", "contacts", new
        {
            contacts = new object[]
            {
                new
                {
                    addresses = new[] { new { city = "Menlo Park", country = "United States", type = "HOME" } },
                    emails = new[] { new { email = "bjohnson@example.com", type = "WORK" } },
                    name = new { formatted_name = "Barbara J. Johnson", first_name = "Barbara", last_name = "Johnson" },
                    org = new { company = "Lucky Shrub" },
                    phones = new object[]
                    {
                        new { phone = "+1 (415) 555-0100", wa_id = "14155550100", type = "WORK" },
                        new { phone = "+1 (415) 555-0101", type = "HOME" },
                    },
                },
                new
                {
                    name = new { first_name = "Pablo", last_name = "Morales" },
                    phones = new[] { new { phone = "+1 (650) 555-0199", wa_id = "16505550199", type = "CELL" } },
                },
            },
        }))));
        Assert.Equal(InboxMessageType.Contact, e.MessageType);
        Assert.Equal(2, e.Contacts.Count);
        Assert.Equal("Barbara J. Johnson", e.Contacts[0].Name);
        Assert.Equal([new ContactPhone("+1 (415) 555-0100", "14155550100"), new ContactPhone("+1 (415) 555-0101", null)], e.Contacts[0].Phones);
        Assert.Equal("Pablo Morales", e.Contacts[1].Name);
        Assert.Equal("16505550199", Assert.Single(e.Contacts[1].Phones).WaId);
    }

    [Fact]
    public void Contacts_message_with_a_vcard_keeps_it()
    {
        var vcard = "BEGIN:VCARD\nVERSION:3.0\nFN:Pablo Morales\nTEL;type=CELL;waid=16505550199:+1 650-555-0199\nEND:VCARD";
        var e = Single(Parse(Messages(Message("wamid.CONTACTS2", "contacts", new { contacts = new[] { new { vcard, phones = new[] { new { phone = "+1 650-555-0199" } } } } }))));
        var card = Assert.Single(e.Contacts);
        Assert.Equal(vcard, card.VCard);
        Assert.Equal("+1 650-555-0199", Assert.Single(card.Phones).Number);
    }

    [Fact]
    public void Reaction_and_reaction_removal()
    {
        var events = Parse(Messages(
            Message("wamid.REACT1", "reaction", new { reaction = new { message_id = "wamid.OUTBOUND1", emoji = "\U0001F600" } }),
            Message("wamid.REACT2", "reaction", new { reaction = new { message_id = "wamid.OUTBOUND1", emoji = "" } }),
            Message("wamid.REACT3", "reaction", new { reaction = new { message_id = "wamid.OUTBOUND1" } })));
        Assert.All(events, e => Assert.Equal(InboxMessageType.Reaction, e.MessageType));
        Assert.Equal(new ReactionInfo("\U0001F600", "wamid.OUTBOUND1"), events[0].Reaction);
        Assert.Equal(new ReactionInfo("", "wamid.OUTBOUND1"), events[1].Reaction);
        Assert.Equal(new ReactionInfo("", "wamid.OUTBOUND1"), events[2].Reaction);
        Assert.Equal(3, events.Select(e => e.DedupeKey).Distinct().Count());
    }

    [Fact]
    public void Interactive_replies_give_the_chosen_title_and_the_replied_message()
    {
        var context = new { from = "15550783881", id = "wamid.INTERACTIVE_OUT" };
        var events = Parse(Messages(
            Message("wamid.BR1", "interactive", new { context, interactive = new { type = "button_reply", button_reply = new { id = "change-button", title = "Change" } } }),
            Message("wamid.LR1", "interactive", new { context, interactive = new { type = "list_reply", list_reply = new { id = "priority_express", title = "Express Delivery", description = "Next Day to 2 Days" } } }),
            Message("wamid.NFM1", "interactive", new
            {
                context,
                interactive = new { type = "nfm_reply", nfm_reply = new { name = "flow", body = "Sent", response_json = "{\"flow_token\":\"AQAAAAACS5FpgQ_cAAAAAD0QI3s.\",\"rating\":\"5\"}" } },
            })));
        Assert.All(events, e => Assert.Equal(InboxMessageType.Interactive, e.MessageType));
        Assert.All(events, e => Assert.Equal("wamid.INTERACTIVE_OUT", e.ReplyToId));
        Assert.Equal(["Change", "Express Delivery", "Sent"], events.Select(e => e.Text));
        Assert.Contains("response_json", events[2].Raw);
    }

    [Fact]
    public void Quick_reply_button_on_a_template_is_interactive_and_replies_to_the_template()
    {
        var e = Single(Parse(Messages(Message("wamid.BUTTON1", "button", new
        {
            context = new { from = "15550783881", id = "wamid.TEMPLATE1" },
            button = new { payload = "unsubscribe-promos", text = "Stop promotions" },
        }))));
        Assert.Equal(InboxMessageType.Interactive, e.MessageType);
        Assert.Equal("Stop promotions", e.Text);
        Assert.Equal("wamid.TEMPLATE1", e.ReplyToId);
    }

    [Fact]
    public void Context_gives_reply_to_and_forwarded_flags()
    {
        var events = Parse(Messages(
            Message("wamid.REPLY1", "text", new { context = new { from = "15550783881", id = "wamid.QUOTED1" }, text = new { body = "yes, this one" } }),
            Message("wamid.FWD1", "text", new { context = new { forwarded = true }, text = new { body = "look at this" } }),
            Message("wamid.FWD2", "image", new { context = new { frequently_forwarded = true }, image = new { mime_type = "image/jpeg", sha256 = "c2hh", id = "3003" } })));
        Assert.Equal("wamid.QUOTED1", events[0].ReplyToId);
        Assert.False(events[0].IsForwarded);
        Assert.Null(events[1].ReplyToId);
        Assert.True(events[1].IsForwarded);
        Assert.True(events[2].IsForwarded);
        Assert.Equal(InboxMessageType.Image, events[2].MessageType);
    }

    [Fact]
    public void Click_to_whatsapp_ad_referral_keeps_the_text_and_the_referral_in_raw()
    {
        var e = Single(Parse(Messages(Message("wamid.CTWA1", "text", new
        {
            referral = new
            {
                source_url = "https://fb.me/3cr4Wqqkv",
                source_id = "120226305854810726",
                source_type = "ad",
                body = "Summer sale",
                headline = "Chat with us",
                media_type = "image",
                image_url = "https://scontent.xx.fbcdn.net/v/t45.1600-4/abc.png",
                ctwa_clid = "Afe4bW6rQ5fPqN1mL0s",
            },
            text = new { body = "Can I get more info about this?" },
        }))));
        Assert.Equal(InboxMessageType.Text, e.MessageType);
        Assert.Equal("Can I get more info about this?", e.Text);
        Assert.Contains("ctwa_clid", e.Raw);
    }

    [Fact]
    public void Order_system_unsupported_and_unknown_types_are_kept_as_unknown_messages()
    {
        var events = Parse(Messages(
            Message("wamid.ORDER1", "order", new
            {
                order = new
                {
                    catalog_id = "194836987003835",
                    text = "Please deliver before noon",
                    product_items = new[] { new { product_retailer_id = "di9ozbzfi4", quantity = 2, item_price = 30, currency = "USD" } },
                },
            }),
            Message("wamid.SYSTEM1", "system", new
            {
                system = new { body = "User A changed from 16505551234 to 16505559999", new_wa_id = "16505559999", type = "user_changed_number" },
            }),
            Message("wamid.UNSUP1", "unsupported", new
            {
                errors = new[] { new { code = 131051, title = "Message type unknown", message = "Message type unknown", error_data = new { details = "Message type is currently not supported." } } },
                unsupported = new { type = "edit" },
            }),
            Message("wamid.WELCOME1", "request_welcome", new { }),
            Message("wamid.FUTURE1", "hologram", new { hologram = new { id = "9" } })));

        Assert.Equal(5, events.Count);
        Assert.All(events, e => Assert.Equal(InboxEventKind.Message, e.Kind));
        Assert.All(events, e => Assert.Equal(InboxMessageType.Unknown, e.MessageType));
        Assert.All(events, AssertWellFormed);
        Assert.Equal("Please deliver before noon", events[0].Text);
        Assert.Contains("di9ozbzfi4", events[0].Raw);
        Assert.Equal("User A changed from 16505551234 to 16505559999", events[1].Text);
        Assert.Contains("user_changed_number", events[1].Raw);
        Assert.Contains("131051", events[2].Raw);
        Assert.Null(events[2].Text);
        Assert.Contains("hologram", events[4].Raw);
    }

    [Fact]
    public void Group_message_has_the_group_as_chat_and_the_member_as_sender()
    {
        var message = Message("wamid.GROUP1", "text", new { text = new { body = "hello group" } });
        message["group_id"] = "Y2FwaV9ncm91cDoxNzA1NTU1MDEzOToxMjAzNjM0MDQ2OTQyODM4MjAZD";
        var e = Single(Parse(Messages(message)));
        Assert.True(e.IsGroup);
        Assert.Equal("Y2FwaV9ncm91cDoxNzA1NTU1MDEzOToxMjAzNjM0MDQ2OTQyODM4MjAZD", e.ChatId);
        Assert.Equal(Customer, e.SenderId);
        Assert.Equal("Sheena Nelson", e.SenderName);
    }

    [Fact]
    public void User_without_a_shared_phone_number_is_identified_by_the_business_scoped_user_id()
    {
        var value = new JsonObject
        {
            ["messaging_product"] = "whatsapp",
            ["metadata"] = Metadata(),
            ["contacts"] = new JsonArray(new JsonObject { ["profile"] = new JsonObject { ["name"] = "Sheena", ["username"] = "@sheena" }, ["user_id"] = "US.13491208655302741918" }),
            ["messages"] = new JsonArray(new JsonObject
            {
                ["from_user_id"] = "US.13491208655302741918",
                ["id"] = "wamid.BSUID1",
                ["timestamp"] = Time.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["type"] = "text",
                ["text"] = new JsonObject { ["body"] = "hi" },
            }),
            ["statuses"] = new JsonArray(new JsonObject
            {
                ["id"] = "wamid.OUT_BSUID",
                ["status"] = "delivered",
                ["timestamp"] = "1749416400",
                ["recipient_user_id"] = "US.13491208655302741918",
            }),
        };
        var events = Parse(Notification(Change("messages", value)));
        Assert.Equal("US.13491208655302741918", events[0].ChatId);
        Assert.Equal("US.13491208655302741918", events[0].SenderId);
        Assert.Equal("Sheena", events[0].SenderName);
        Assert.Equal(InboxEventKind.Status, events[1].Kind);
        Assert.Equal("US.13491208655302741918", events[1].ChatId);
        Assert.Equal("meta|inst-1|wamid.OUT_BSUID|delivered", events[1].DedupeKey);
        Assert.All(events, AssertWellFormed);
    }

    [Fact]
    public void Redelivery_of_the_same_notification_gives_the_same_dedupe_keys()
    {
        var body = Messages(Message("wamid.SAME1", "text", new { text = new { body = "a" } }));
        var reformatted = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(JsonDocument.Parse(body).RootElement, new JsonSerializerOptions { WriteIndented = true }));
        Assert.Equal(Parse(body).Select(e => e.DedupeKey), Parse(reformatted).Select(e => e.DedupeKey));
    }

    // ---- statuses ---------------------------------------------------------------------------------------------

    [Fact]
    public void Sent_delivered_read_and_played_statuses_with_pricing_and_conversation()
    {
        var pricing = new { billable = true, pricing_model = "PMP", category = "marketing", type = "regular" };
        var conversation = new { id = "0cd1e3a2cf1a0bf1a9f6b7d2c3e4f5a6", expiration_timestamp = "1749502800", origin = new { type = "marketing" } };
        var events = Parse(Statuses(
            new { id = "wamid.OUT1", status = "sent", timestamp = "1749416400", recipient_id = Customer, biz_opaque_callback_data = "order-42", conversation, pricing },
            new { id = "wamid.OUT1", status = "delivered", timestamp = "1749416401", recipient_id = Customer, biz_opaque_callback_data = "order-42", conversation, pricing },
            new { id = "wamid.OUT1", status = "read", timestamp = "1749416460", recipient_id = Customer, biz_opaque_callback_data = "order-42", conversation, pricing },
            new { id = "wamid.OUT2", status = "played", timestamp = "1749416470", recipient_id = Customer, biz_opaque_callback_data = "order-42", conversation, pricing }));

        Assert.All(events, e => Assert.Equal(InboxEventKind.Status, e.Kind));
        Assert.Equal([InboxMessageStatus.Sent, InboxMessageStatus.Delivered, InboxMessageStatus.Read, InboxMessageStatus.Played], events.Select(e => e.Status!.Value));
        Assert.Equal(["sent", "delivered", "read", "played"], events.Select(e => e.ProviderStatus));
        Assert.Equal(["meta|inst-1|wamid.OUT1|sent", "meta|inst-1|wamid.OUT1|delivered", "meta|inst-1|wamid.OUT1|read", "meta|inst-1|wamid.OUT2|played"], events.Select(e => e.DedupeKey));
        Assert.All(events, e => Assert.Equal(Customer, e.ChatId));
        Assert.All(events, e => Assert.True(e.FromMe));
        Assert.All(events, e => Assert.Null(e.StatusError));
        Assert.All(events, e => Assert.Equal(PhoneNumberId, e.ProviderInstanceId));
        Assert.Equal(Utc(1749416460), events[2].OccurredAt);
        Assert.Contains("pricing_model", events[0].Raw);
        Assert.Contains("order-42", events[0].Raw);
        Assert.All(events, AssertWellFormed);
    }

    [Fact]
    public void Failed_status_carries_code_title_message_and_details()
    {
        var e = Single(Parse(Statuses(new
        {
            id = "wamid.OUTFAIL",
            status = "failed",
            timestamp = "1749416500",
            recipient_id = Customer,
            errors = new[]
            {
                new { code = 131026, title = "Message undeliverable", message = "Message undeliverable", error_data = new { details = "Message Undeliverable." }, href = "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/" },
            },
        })));
        Assert.Equal(InboxMessageStatus.Failed, e.Status);
        Assert.Equal("meta|inst-1|wamid.OUTFAIL|failed", e.DedupeKey);
        var error = Assert.IsType<StatusError>(e.StatusError);
        Assert.Equal("131026", error.Code);
        Assert.Equal("Message undeliverable", error.Title);
        Assert.Equal("Message undeliverable", error.Message);
        Assert.Equal("Message Undeliverable.", error.Details);
        Assert.Equal(Utc(1749416500), e.OccurredAt);
    }

    [Fact]
    public void Failed_status_without_errors_still_has_an_error()
    {
        var e = Single(Parse(Statuses(new { id = "wamid.OUTFAIL2", status = "failed", timestamp = "1749416500", recipient_id = Customer })));
        Assert.Equal("failed", Assert.IsType<StatusError>(e.StatusError).Title);
    }

    [Fact]
    public void Group_statuses_are_per_participant_and_individual_recipient_type_is_not_a_group()
    {
        var events = Parse(Statuses(
            new { id = "wamid.GOUT", status = "sent", timestamp = "1749416600", recipient_id = "Y2FwaV9ncm91cDox", recipient_type = "group", recipient_participant_id = (string?)null },
            new { id = "wamid.GOUT", status = "delivered", timestamp = "1749416601", recipient_id = "Y2FwaV9ncm91cDox", recipient_type = "group", recipient_participant_id = (string?)"16505550001" },
            new { id = "wamid.GOUT", status = "delivered", timestamp = "1749416602", recipient_id = "Y2FwaV9ncm91cDox", recipient_type = "group", recipient_participant_id = (string?)"16505550002" },
            new { id = "wamid.IOUT", status = "delivered", timestamp = "1749416603", recipient_id = Customer, recipient_type = "individual", recipient_participant_id = (string?)null }));
        Assert.True(events[0].IsGroup);
        Assert.Equal("Y2FwaV9ncm91cDox", events[0].ChatId);
        Assert.Null(events[0].SenderId);
        Assert.Equal("meta|inst-1|wamid.GOUT|sent", events[0].DedupeKey);
        Assert.Equal("16505550001", events[1].SenderId);
        Assert.Equal("meta|inst-1|wamid.GOUT|delivered|16505550001", events[1].DedupeKey);
        Assert.Equal("meta|inst-1|wamid.GOUT|delivered|16505550002", events[2].DedupeKey);
        Assert.False(events[3].IsGroup);
        Assert.Equal(4, events.Select(e => e.DedupeKey).Distinct().Count());
    }

    // ---- batches and other fields -----------------------------------------------------------------------------

    [Fact]
    public void Batch_of_entries_and_changes_with_messages_statuses_and_other_fields_keeps_everything_in_order()
    {
        var first = new JsonObject
        {
            ["messaging_product"] = "whatsapp",
            ["metadata"] = Metadata(),
            ["contacts"] = new JsonArray(Contact("16505550001", "Ana"), Contact("16505550002", "Bruno")),
            ["messages"] = new JsonArray(
                Message("wamid.B1", "text", new { text = new { body = "one" } }, from: "16505550001"),
                Message("wamid.B2", "text", new { text = new { body = "two" } }, from: "16505550002")),
            ["statuses"] = new JsonArray(JsonSerializer.SerializeToNode(new { id = "wamid.O1", status = "read", timestamp = "1749416700", recipient_id = "16505550001" })),
        };
        var second = new JsonObject
        {
            ["messaging_product"] = "whatsapp",
            ["metadata"] = new JsonObject { ["display_phone_number"] = "15550009999", ["phone_number_id"] = "106540352242999" },
            ["statuses"] = new JsonArray(JsonSerializer.SerializeToNode(new { id = "wamid.O2", status = "delivered", timestamp = "1749416701", recipient_id = "16505550003" })),
        };
        var template = JsonSerializer.SerializeToNode(new { @event = "APPROVED", message_template_id = 1234567, message_template_name = "order_update", message_template_language = "en_US", reason = "NONE" })!;
        var account = JsonSerializer.SerializeToNode(new { phone_number = "15550783881", @event = "VERIFIED_ACCOUNT" })!;
        var body = Encoding.UTF8.GetBytes(new JsonObject
        {
            ["object"] = "whatsapp_business_account",
            ["entry"] = new JsonArray(
                new JsonObject { ["id"] = Waba, ["changes"] = new JsonArray(Change("messages", first), Change("message_template_status_update", template)) },
                new JsonObject { ["id"] = "102290129340399", ["time"] = 1749416800, ["changes"] = new JsonArray(Change("messages", second), Change("account_update", account)) }),
        }.ToJsonString());

        var events = Parse(body);
        Assert.Equal(
            [(InboxEventKind.Message, "wamid.B1"), (InboxEventKind.Message, "wamid.B2"), (InboxEventKind.Status, "wamid.O1"), (InboxEventKind.Other, null), (InboxEventKind.Status, "wamid.O2"), (InboxEventKind.Other, null)],
            events.Select(e => (e.Kind, e.Kind == InboxEventKind.Other ? null : e.ExternalId)));
        Assert.Equal(["Ana", "Bruno"], events.Take(2).Select(e => e.SenderName));
        Assert.Equal("106540352242999", events[4].ProviderInstanceId);
        Assert.Equal("message_template_status_update", events[3].ProviderEventType);
        Assert.Contains("order_update", events[3].Raw);
        Assert.Equal("account_update", events[5].ProviderEventType);
        Assert.Equal(Utc(1749416800), events[5].OccurredAt);
        Assert.Equal(events.Count, events.Select(e => e.DedupeKey).Distinct().Count());
        Assert.All(events, AssertWellFormed);
    }

    [Theory]
    [InlineData("message_template_status_update")]
    [InlineData("message_template_quality_update")]
    [InlineData("phone_number_quality_update")]
    [InlineData("phone_number_name_update")]
    [InlineData("account_update")]
    [InlineData("account_review_update")]
    [InlineData("business_capability_update")]
    [InlineData("template_category_update")]
    [InlineData("security")]
    [InlineData("smb_message_echoes")]
    [InlineData("user_preferences")]
    public void Fields_other_than_messages_become_other_events(string field)
    {
        var value = JsonSerializer.SerializeToNode(new { display_phone_number = "15550783881", @event = "SOMETHING", detail = "field-" + field })!;
        var e = Single(Parse(Notification(Change(field, value))));
        Assert.Equal(InboxEventKind.Other, e.Kind);
        Assert.Equal(field, e.ProviderEventType);
        Assert.StartsWith("sha256:", e.ExternalId, StringComparison.Ordinal);
        Assert.Equal("meta|inst-1|other|" + e.ExternalId, e.DedupeKey);
        Assert.Contains("field-" + field, e.Raw);
        Assert.Null(e.ChatId);
    }

    [Fact]
    public void Value_level_errors_are_kept_alone_and_beside_messages()
    {
        var error = JsonSerializer.SerializeToNode(new { code = 130429, title = "Rate limit hit", message = "Rate limit hit", error_data = new { details = "Cloud API message throughput has been reached." } })!;
        var alone = Single(Parse(Notification(Change("messages", new JsonObject { ["messaging_product"] = "whatsapp", ["metadata"] = Metadata(), ["errors"] = new JsonArray(error.DeepClone()) }))));
        Assert.Equal(InboxEventKind.Other, alone.Kind);
        Assert.Equal("messages", alone.ProviderEventType);
        Assert.Equal(PhoneNumberId, alone.ProviderInstanceId);
        Assert.Contains("130429", alone.Raw);

        var value = new JsonObject
        {
            ["messaging_product"] = "whatsapp",
            ["metadata"] = Metadata(),
            ["contacts"] = new JsonArray(Contact(Customer, "Sheena Nelson")),
            ["messages"] = new JsonArray(Message("wamid.WITHERR", "text", new { text = new { body = "hi" } })),
            ["errors"] = new JsonArray(error.DeepClone()),
        };
        var events = Parse(Notification(Change("messages", value)));
        Assert.Equal(2, events.Count);
        Assert.Equal(InboxEventKind.Message, events[0].Kind);
        Assert.Equal(InboxEventKind.Other, events[1].Kind);
        Assert.Equal("errors", events[1].ProviderEventType);
        Assert.Contains("130429", events[1].Raw);
        Assert.NotEqual(events[0].DedupeKey, events[1].DedupeKey);
    }

    // ---- malformed --------------------------------------------------------------------------------------------

    [Theory]
    [InlineData("""{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"messages":{"id":"wamid.X"}}}]}]}""", "entry[0].changes[0].value.messages is not an array")]
    [InlineData("""{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"messages":[],"statuses":"read"}}]}]}""", "entry[0].changes[0].value.statuses is not an array")]
    [InlineData("""{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"messages":["SECRET-BODY"]}}]}]}""", "entry[0].changes[0].value.messages[0] is not an object")]
    [InlineData("""{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"messages":[{"id":"wamid.X","type":"text","text":{"body":"SECRET-BODY"}}]}}]}]}""", "has no \"from\"")]
    [InlineData("""{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"statuses":[{"id":"wamid.X","status":"read","timestamp":"1"}]}}]}]}""", "entry[0].changes[0].value.statuses[0] has no \"recipient_id\"")]
    [InlineData("""{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"statuses":[{"status":"read","recipient_id":"1"}]}}]}]}""", "has no \"id\"")]
    [InlineData("""{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"statuses":[{"id":"wamid.X","recipient_id":"1"}]}}]}]}""", "has no \"status\"")]
    public void Malformed_notifications_throw_saying_what_is_wrong_without_the_body(string json, string expected)
    {
        var ex = Assert.Throws<WebhookParseException>(() => MetaAdapter().Parse(Request("meta", json)));
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("SECRET-BODY", ex.Message, StringComparison.Ordinal);
    }

    // ---- helpers ----------------------------------------------------------------------------------------------

    private static IReadOnlyList<InboxEvent> Parse(byte[] body) => MetaAdapter().Parse(Request("meta", body));

    private static JsonObject Metadata() => new() { ["display_phone_number"] = "15550783881", ["phone_number_id"] = PhoneNumberId };

    private static JsonObject Contact(string waId, string name) => new() { ["profile"] = new JsonObject { ["name"] = name }, ["wa_id"] = waId };

    private static JsonObject Message(string id, string type, object content, string from = Customer)
    {
        var message = new JsonObject
        {
            ["from"] = from,
            ["id"] = id,
            ["timestamp"] = Time.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["type"] = type,
        };
        var node = content as JsonObject ?? JsonSerializer.SerializeToNode(content)!.AsObject();
        foreach (var (key, value) in node.ToList()) message[key] = value?.DeepClone();
        return message;
    }

    private static JsonObject Change(string field, JsonNode value) => new() { ["value"] = value, ["field"] = field };

    private static byte[] Notification(params JsonObject[] changes) => Encoding.UTF8.GetBytes(new JsonObject
    {
        ["object"] = "whatsapp_business_account",
        ["entry"] = new JsonArray(new JsonObject { ["id"] = Waba, ["changes"] = new JsonArray(changes.Select(c => (JsonNode?)c).ToArray()) }),
    }.ToJsonString());

    private static byte[] Messages(params JsonObject[] messages) => Notification(Change("messages", new JsonObject
    {
        ["messaging_product"] = "whatsapp",
        ["metadata"] = Metadata(),
        ["contacts"] = new JsonArray(Contact(Customer, "Sheena Nelson")),
        ["messages"] = new JsonArray(messages.Select(m => (JsonNode?)m).ToArray()),
    }));

    private static byte[] Statuses(params object[] statuses) => Notification(Change("messages", new JsonObject
    {
        ["messaging_product"] = "whatsapp",
        ["metadata"] = Metadata(),
        ["statuses"] = new JsonArray(statuses.Select(s => JsonSerializer.SerializeToNode(s)).ToArray()),
    }));
}
