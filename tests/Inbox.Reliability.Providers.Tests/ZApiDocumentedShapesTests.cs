using System.Text.Json.Nodes;
using Inbox.Reliability.Events;
using static Inbox.Reliability.Providers.Tests.TestSupport;

namespace Inbox.Reliability.Providers.Tests;

/// <summary>
/// Z-API callbacks as its documentation describes them ("on-message-received" examples by message type, message status,
/// on send, connected, disconnected, chat presence), with fake numbers and ids.
/// </summary>
public class ZApiDocumentedShapesTests
{
    private const string InstanceId = "3C67AB641C8AA0412F6A2242B4E23AC7";
    private const string Connected = "5521988880000";
    private const string Contact = "5521988880001";
    private const string Member = "5521988880002";
    private const string Group = "120363019502650977-group";
    private const long Momment = 1767300000000; // ms

    // ---- ReceivedCallback: content types ----

    [Fact]
    public void Text_message()
    {
        var e = Parse(Received("3EB0TXT0000000000001", new() { ["text"] = new JsonObject { ["message"] = "Bom dia, o pedido 123 já saiu?" } }));
        Assert.Equal(InboxEventKind.Message, e.Kind);
        Assert.Equal(InboxMessageType.Text, e.MessageType);
        Assert.Equal("Bom dia, o pedido 123 já saiu?", e.Text);
        Assert.Null(e.Caption);
        Assert.Equal("3EB0TXT0000000000001", e.ExternalId);
        Assert.Equal("zapi|inst-1|3EB0TXT0000000000001", e.DedupeKey);
        Assert.Equal("ReceivedCallback", e.ProviderEventType);
        Assert.Equal(InstanceId, e.ProviderInstanceId);
        Assert.Equal(Contact, e.ChatId);
        Assert.False(e.IsGroup);
        Assert.Equal(Contact, e.SenderId);
        Assert.Equal("Carla Dias", e.SenderName);
        Assert.False(e.FromMe);
        Assert.False(e.IsEdit);
        Assert.Null(e.ReplyToId);
        Assert.Null(e.Media);
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(Momment), e.OccurredAt);
        Assert.Equal(new DateTimeOffset(2026, 1, 1, 20, 40, 0, TimeSpan.Zero), e.OccurredAt);
    }

    [Fact]
    public void Type_spelled_ReceivedCallBack_as_in_the_attribute_table_is_a_message()
    {
        var node = Received("3EB0TXT0000000000002", new() { ["text"] = new JsonObject { ["message"] = "oi" } });
        node["type"] = "ReceivedCallBack";
        var e = Parse(node);
        Assert.Equal(InboxEventKind.Message, e.Kind);
        Assert.Equal("ReceivedCallBack", e.ProviderEventType);
        Assert.Equal("oi", e.Text);
    }

    [Fact]
    public void Text_from_an_ad_keeps_the_message_text()
    {
        var node = Received("3EB0ADS0000000000001", new()
        {
            ["text"] = new JsonObject { ["message"] = "Quero saber mais", ["description"] = "texto do anúncio", ["title"] = "Promoção", ["url"] = "https://example.com/p" },
            ["externalAdReply"] = new JsonObject { ["title"] = "Promoção", ["body"] = "texto do anúncio", ["sourceType"] = "ad", ["sourceId"] = "23722824350495506" },
        });
        var e = Parse(node);
        Assert.Equal(InboxMessageType.Text, e.MessageType);
        Assert.Equal("Quero saber mais", e.Text);
    }

    [Fact]
    public void Image_with_caption_url_and_mime_type()
    {
        var e = Parse(Received("3EB0IMG0000000000001", new()
        {
            ["image"] = new JsonObject
            {
                ["mimeType"] = "image/jpeg",
                ["imageUrl"] = "https://storage.z-api.io/instances/3C67/3EB0IMG0000000000001.jpeg",
                ["thumbnailUrl"] = "https://storage.z-api.io/instances/3C67/3EB0IMG0000000000001-thumb.jpeg",
                ["caption"] = "Nota fiscal",
                ["width"] = 600,
                ["height"] = 315,
                ["viewOnce"] = false,
            },
        }));
        Assert.Equal(InboxMessageType.Image, e.MessageType);
        Assert.Equal("Nota fiscal", e.Caption);
        Assert.Equal("Nota fiscal", e.Text);
        var media = Assert.IsType<MediaReference>(e.Media);
        Assert.Equal("https://storage.z-api.io/instances/3C67/3EB0IMG0000000000001.jpeg", media.Url);
        Assert.Equal("image/jpeg", media.MimeType);
        Assert.Null(media.MediaId);
        Assert.Equal("https://storage.z-api.io/instances/3C67/3EB0IMG0000000000001-thumb.jpeg", media.Properties["thumbnailUrl"]);
    }

    [Fact]
    public void Image_with_empty_caption_has_no_caption_or_text()
    {
        var e = Parse(Received("3EB0IMG0000000000002", new() { ["image"] = new JsonObject { ["mimeType"] = "image/png", ["imageUrl"] = "https://storage.z-api.io/i.png", ["caption"] = "" } }));
        Assert.Equal(InboxMessageType.Image, e.MessageType);
        Assert.Null(e.Caption);
        Assert.Null(e.Text);
        Assert.Equal("https://storage.z-api.io/i.png", e.Media!.Url);
    }

    [Fact]
    public void Voice_note_and_audio_file()
    {
        var voice = Parse(Received("3EB0AUD0000000000001", new() { ["audio"] = new JsonObject { ["ptt"] = true, ["seconds"] = 10, ["audioUrl"] = "https://storage.z-api.io/a.ogg", ["mimeType"] = "audio/ogg; codecs=opus" } }));
        var file = Parse(Received("3EB0AUD0000000000002", new() { ["audio"] = new JsonObject { ["audioUrl"] = "https://storage.z-api.io/b.mp3", ["mimeType"] = "audio/mpeg" } }));
        Assert.Equal(InboxMessageType.Audio, voice.MessageType);
        Assert.Equal("https://storage.z-api.io/a.ogg", voice.Media!.Url);
        Assert.Equal("audio/ogg; codecs=opus", voice.Media.MimeType);
        Assert.Equal("true", voice.Media.Properties["voice"]);
        Assert.Null(voice.Text);
        Assert.Equal(InboxMessageType.Audio, file.MessageType);
        Assert.False(file.Media!.Properties.ContainsKey("voice"));
    }

    [Fact]
    public void Video_with_caption()
    {
        var e = Parse(Received("3EB0VID0000000000001", new() { ["video"] = new JsonObject { ["videoUrl"] = "https://storage.z-api.io/v.mp4", ["caption"] = "veja o defeito", ["mimeType"] = "video/mp4", ["seconds"] = 13, ["viewOnce"] = true } }));
        Assert.Equal(InboxMessageType.Video, e.MessageType);
        Assert.Equal("veja o defeito", e.Caption);
        Assert.Equal("veja o defeito", e.Text);
        Assert.Equal("https://storage.z-api.io/v.mp4", e.Media!.Url);
        Assert.Equal("video/mp4", e.Media.MimeType);
    }

    [Fact]
    public void Round_video_sent_from_the_phone_is_a_video_from_me()
    {
        var node = Received("3EB0PTV0000000000001", new() { ["video"] = new JsonObject { ["videoUrl"] = "https://storage.z-api.io/ptv.mp4", ["caption"] = "", ["mimeType"] = "video/mp4" } });
        node["fromMe"] = true;
        node["participantPhone"] = Connected;
        node["forwarded"] = true;
        var e = Parse(node);
        Assert.Equal(InboxMessageType.Video, e.MessageType);
        Assert.True(e.FromMe);
        Assert.True(e.IsForwarded);
        Assert.Equal(Contact, e.ChatId);
        Assert.Equal(Connected, e.SenderId);
    }

    [Fact]
    public void Document_with_file_name_title_and_page_count()
    {
        var e = Parse(Received("3EB0DOC0000000000001", new()
        {
            ["document"] = new JsonObject
            {
                ["documentUrl"] = "https://storage.z-api.io/instances/3C67/boleto.pdf",
                ["mimeType"] = "application/pdf",
                ["title"] = "boleto",
                ["pageCount"] = 2,
                ["fileName"] = "boleto.pdf",
                ["thumbnailUrl"] = "https://storage.z-api.io/instances/3C67/boleto-thumb.jpeg",
                ["caption"] = "segue o boleto",
            },
        }));
        Assert.Equal(InboxMessageType.Document, e.MessageType);
        Assert.Equal("boleto.pdf", e.Media!.FileName);
        Assert.Equal("application/pdf", e.Media.MimeType);
        Assert.Equal("https://storage.z-api.io/instances/3C67/boleto.pdf", e.Media.Url);
        Assert.Equal("https://storage.z-api.io/instances/3C67/boleto-thumb.jpeg", e.Media.Properties["thumbnailUrl"]);
        Assert.Equal("segue o boleto", e.Caption);
    }

    [Fact]
    public void Document_without_file_name_uses_its_title()
    {
        var e = Parse(Received("3EB0DOC0000000000002", new() { ["document"] = new JsonObject { ["documentUrl"] = "https://storage.z-api.io/x", ["mimeType"] = "application/pdf", ["title"] = "contrato", ["fileName"] = "" } }));
        Assert.Equal("contrato", e.Media!.FileName);
    }

    [Fact]
    public void Sticker()
    {
        var e = Parse(Received("3EB0STK0000000000001", new() { ["sticker"] = new JsonObject { ["stickerUrl"] = "https://storage.z-api.io/s.webp", ["mimeType"] = "image/webp" } }));
        Assert.Equal(InboxMessageType.Sticker, e.MessageType);
        Assert.Equal("https://storage.z-api.io/s.webp", e.Media!.Url);
        Assert.Equal("image/webp", e.Media.MimeType);
        Assert.Null(e.Text);
    }

    [Fact]
    public void Location()
    {
        var e = Parse(Received("3EB0LOC0000000000001", new()
        {
            ["location"] = new JsonObject { ["longitude"] = -43.1729, ["latitude"] = -22.9068, ["name"] = "Loja Centro", ["address"] = "Av. Rio Branco, 1", ["url"] = "https://maps.example/loja", ["thumbnailUrl"] = "https://storage.z-api.io/l.jpeg" },
        }));
        Assert.Equal(InboxMessageType.Location, e.MessageType);
        Assert.Equal(new LocationInfo(-22.9068, -43.1729) { Name = "Loja Centro", Address = "Av. Rio Branco, 1", Url = "https://maps.example/loja" }, e.Location);
        Assert.Null(e.Media);
    }

    [Fact]
    public void Contact_with_vcard_and_phones()
    {
        var e = Parse(Received("3EB0CTT0000000000001", new()
        {
            ["contact"] = new JsonObject
            {
                ["displayName"] = "Diego Rocha",
                ["vCard"] = "BEGIN:VCARD\nVERSION:3.0\nN:;Diego Rocha;;;\nFN:Diego Rocha\nTEL;type=CELL;type=VOICE;waid=5521988880003:+55 21 98888-0003\nEND:VCARD",
                ["phones"] = new JsonArray("5521988880003"),
            },
        }));
        Assert.Equal(InboxMessageType.Contact, e.MessageType);
        var card = Assert.Single(e.Contacts);
        Assert.Equal("Diego Rocha", card.Name);
        Assert.Contains("FN:Diego Rocha", card.VCard, StringComparison.Ordinal);
        Assert.Equal(new ContactPhone("5521988880003", "5521988880003"), Assert.Single(card.Phones));
    }

    [Fact]
    public void Contact_with_vcard_only_reads_the_phone_from_the_vcard()
    {
        var e = Parse(Received("3EB0CTT0000000000002", new()
        {
            ["contact"] = new JsonObject { ["displayName"] = "Eva", ["vCard"] = "BEGIN:VCARD\nVERSION:3.0\nFN:Eva\nTEL;type=CELL;waid=5521988880004:+55 21 98888-0004\nEND:VCARD" },
        }));
        Assert.Equal(new ContactPhone("+55 21 98888-0004", "5521988880004"), Assert.Single(Assert.Single(e.Contacts).Phones));
    }

    [Fact]
    public void Several_contacts_become_one_card_each()
    {
        var e = Parse(Received("3EB0CTT0000000000003", new()
        {
            ["contacts"] = new JsonArray(
                new JsonObject { ["displayName"] = "Diego", ["vCard"] = "BEGIN:VCARD\nFN:Diego\nTEL;waid=5521988880003:+55 21 98888-0003\nEND:VCARD", ["phones"] = new JsonArray("5521988880003") },
                new JsonObject { ["displayName"] = "Eva", ["vCard"] = "BEGIN:VCARD\nFN:Eva\nTEL;waid=5521988880004:+55 21 98888-0004\nEND:VCARD" }),
        }));
        Assert.Equal(InboxMessageType.Contact, e.MessageType);
        Assert.Equal(["Diego", "Eva"], e.Contacts.Select(c => c.Name));
        Assert.Equal("5521988880004", Assert.Single(e.Contacts[1].Phones).WaId);
    }

    [Fact]
    public void Reaction_and_its_removal()
    {
        var reaction = new JsonObject
        {
            ["value"] = "❤️",
            ["time"] = 1767300001000,
            ["reactionBy"] = Contact,
            ["referencedMessage"] = new JsonObject { ["messageId"] = "3EB0OUT0000000000001", ["fromMe"] = true, ["phone"] = Contact, ["participant"] = null },
        };
        var added = Parse(Received("3EB0RCT0000000000001", new() { ["reaction"] = reaction }));
        var removedReaction = (JsonObject)reaction.DeepClone();
        removedReaction["value"] = "";
        var removed = Parse(Received("3EB0RCT0000000000002", new() { ["reaction"] = removedReaction }));

        Assert.Equal(InboxMessageType.Reaction, added.MessageType);
        Assert.Equal(new ReactionInfo("❤️", "3EB0OUT0000000000001"), added.Reaction);
        Assert.Equal(InboxMessageType.Reaction, removed.MessageType);
        Assert.Equal(new ReactionInfo("", "3EB0OUT0000000000001"), removed.Reaction);
        Assert.NotEqual(added.DedupeKey, removed.DedupeKey);
    }

    [Fact]
    public void Buttons_response_is_interactive_with_the_chosen_text_and_the_question_it_replies_to()
    {
        var node = Received("3EB0BTN0000000000001", new() { ["buttonsResponseMessage"] = new JsonObject { ["buttonId"] = "1", ["message"] = "Ótimo" } });
        node["referenceMessageId"] = "3EB0OUT0000000000002";
        var e = Parse(node);
        Assert.Equal(InboxMessageType.Interactive, e.MessageType);
        Assert.Equal("Ótimo", e.Text);
        Assert.Equal("3EB0OUT0000000000002", e.ReplyToId);
    }

    [Fact]
    public void List_response_is_interactive_with_the_chosen_row_title()
    {
        var node = Received("3EB0LST0000000000001", new() { ["listResponseMessage"] = new JsonObject { ["message"] = "Entrega em até 2 dias", ["title"] = "Expressa", ["selectedRowId"] = "2" } });
        node["referenceMessageId"] = "3EB0OUT0000000000003";
        var e = Parse(node);
        Assert.Equal(InboxMessageType.Interactive, e.MessageType);
        Assert.Equal("Expressa", e.Text);
        Assert.Equal("3EB0OUT0000000000003", e.ReplyToId);
    }

    [Fact]
    public void Reply_carries_the_referenced_message_id()
    {
        var node = Received("3EB0RPL0000000000001", new() { ["text"] = new JsonObject { ["message"] = "Esse mesmo" } });
        node["referenceMessageId"] = "3EB0OUT0000000000004";
        var e = Parse(node);
        Assert.Equal("3EB0OUT0000000000004", e.ReplyToId);
        Assert.Equal(InboxMessageType.Text, e.MessageType);
    }

    [Fact]
    public void Poll_has_its_question_and_a_poll_vote_is_kept_as_an_unknown_message()
    {
        var poll = Parse(Received("3EB0POL0000000000001", new() { ["poll"] = new JsonObject { ["question"] = "Qual horário?", ["pollMaxOptions"] = 0, ["options"] = new JsonArray(new JsonObject { ["name"] = "Manhã" }, new JsonObject { ["name"] = "Tarde" }) } }));
        var vote = Parse(Received("3EB0POL0000000000002", new() { ["pollVote"] = new JsonObject { ["pollMessageId"] = "3EB0POL0000000000001", ["options"] = new JsonArray(new JsonObject { ["name"] = "Tarde" }) } }));
        Assert.Equal(InboxMessageType.Poll, poll.MessageType);
        Assert.Equal("Qual horário?", poll.Text);
        Assert.Equal(InboxEventKind.Message, vote.Kind);
        Assert.Equal(InboxMessageType.Unknown, vote.MessageType);
        Assert.Contains("pollVote", vote.Raw, StringComparison.Ordinal);
    }

    [Fact]
    public void Template_messages_keep_their_text_and_header_media()
    {
        var textOnly = Parse(Received("3EB0TPL0000000000001", new() { ["hydratedTemplate"] = new JsonObject { ["header"] = new JsonObject(), ["message"] = "Seu código é 123", ["footer"] = "", ["title"] = "", ["templateId"] = "790118069824606", ["hydratedButtons"] = new JsonArray() } }));
        var withImage = Parse(Received("3EB0TPL0000000000002", new()
        {
            ["hydratedTemplate"] = new JsonObject
            {
                ["header"] = new JsonObject { ["image"] = new JsonObject { ["imageUrl"] = "https://storage.z-api.io/t.jpeg", ["thumbnailUrl"] = "https://storage.z-api.io/t-thumb.jpeg", ["caption"] = "", ["mimeType"] = "image/jpeg" } },
                ["message"] = "Confira a oferta",
                ["templateId"] = "674504507982622",
            },
        }));
        var withLocation = Parse(Received("3EB0TPL0000000000003", new()
        {
            ["hydratedTemplate"] = new JsonObject { ["header"] = new JsonObject { ["location"] = new JsonObject { ["longitude"] = -46.6388, ["latitude"] = -23.5489, ["name"] = "Loja" } }, ["message"] = "Estamos aqui" },
        }));

        Assert.Equal(InboxMessageType.Text, textOnly.MessageType);
        Assert.Equal("Seu código é 123", textOnly.Text);
        Assert.Equal(InboxMessageType.Image, withImage.MessageType);
        Assert.Equal("https://storage.z-api.io/t.jpeg", withImage.Media!.Url);
        Assert.Equal("Confira a oferta", withImage.Caption);
        Assert.Equal("Confira a oferta", withImage.Text);
        Assert.Equal(InboxMessageType.Location, withLocation.MessageType);
        Assert.Equal(-23.5489, withLocation.Location!.Latitude);
        Assert.Equal("Estamos aqui", withLocation.Text);
    }

    [Fact]
    public void Buttons_and_carousel_sent_by_the_connected_number_keep_their_text()
    {
        var buttons = Received("3EB0BTM0000000000001", new()
        {
            ["buttonsMessage"] = new JsonObject { ["imageUrl"] = "https://storage.z-api.io/b.jpeg", ["videoUrl"] = null, ["message"] = "Escolha uma opção", ["buttons"] = new JsonArray(new JsonObject { ["buttonId"] = "1", ["type"] = 1, ["buttonText"] = new JsonObject { ["displayText"] = "Sim" } }) },
        });
        buttons["fromMe"] = true;
        buttons["fromApi"] = true;
        var carousel = Received("3EB0CRS0000000000001", new() { ["carouselMessage"] = new JsonObject { ["text"] = "Nossos produtos", ["cards"] = new JsonArray() } });
        carousel["fromMe"] = true;

        var b = Parse(buttons);
        var c = Parse(carousel);
        Assert.Equal(InboxMessageType.Image, b.MessageType);
        Assert.Equal("https://storage.z-api.io/b.jpeg", b.Media!.Url);
        Assert.Equal("Escolha uma opção", b.Text);
        Assert.True(b.FromMe);
        Assert.Equal(InboxMessageType.Text, c.MessageType);
        Assert.Equal("Nossos produtos", c.Text);
    }

    [Theory]
    [InlineData("product")]
    [InlineData("order")]
    [InlineData("requestPayment")]
    [InlineData("sendPayment")]
    [InlineData("pinMessage")]
    [InlineData("event")]
    [InlineData("pixKeyMessage")]
    public void Other_documented_content_is_kept_as_an_unknown_message_with_its_raw_content(string field)
    {
        var e = Parse(Received("3EB0OTH" + field.ToUpperInvariant(), new() { [field] = new JsonObject { ["title"] = "documented-content-marker" } }));
        Assert.Equal(InboxEventKind.Message, e.Kind);
        Assert.Equal(InboxMessageType.Unknown, e.MessageType);
        Assert.Contains("documented-content-marker", e.Raw, StringComparison.Ordinal);
    }

    // ---- ReceivedCallback: chats, senders, flags ----

    [Fact]
    public void Group_message_is_in_the_group_chat_and_sent_by_the_participant()
    {
        var node = Received("3EB0GRP0000000000001", new() { ["text"] = new JsonObject { ["message"] = "Alguém viu o pedido?" } });
        node["isGroup"] = true;
        node["phone"] = Group;
        node["chatName"] = "Equipe Vendas";
        node["senderName"] = "Fábio";
        node["participantPhone"] = Member;
        node["participantLid"] = "81000000000009@lid";
        var e = Parse(node);
        Assert.True(e.IsGroup);
        Assert.Equal(Group, e.ChatId);
        Assert.Equal(Member, e.SenderId);
        Assert.Equal("Fábio", e.SenderName);
        Assert.False(e.FromMe);
    }

    [Fact]
    public void Group_member_known_only_by_lid_is_the_sender_by_lid()
    {
        var node = Received("3EB0GRP0000000000002", new() { ["text"] = new JsonObject { ["message"] = "ok" } });
        node["isGroup"] = true;
        node["phone"] = Group;
        node["participantPhone"] = null;
        node["participantLid"] = "81000000000009@lid";
        var e = Parse(node);
        Assert.Equal("81000000000009@lid", e.SenderId);
    }

    [Fact]
    public void Group_id_in_jid_form_is_a_group()
    {
        var node = Received("3EB0GRP0000000000003", new() { ["text"] = new JsonObject { ["message"] = "ok" } });
        node["isGroup"] = true;
        node["phone"] = "120363019502650977@g.us";
        node["participantPhone"] = Member;
        var e = Parse(node);
        Assert.True(e.IsGroup);
        Assert.Equal("120363019502650977@g.us", e.ChatId);
        Assert.Equal(Member, e.SenderId);
    }

    [Fact]
    public void Group_membership_request_marked_not_group_is_still_in_the_group_chat()
    {
        var node = Received("464201093", new() { ["notification"] = "MEMBERSHIP_APPROVAL_REQUEST", ["notificationParameters"] = new JsonArray(Member), ["requestMethod"] = "invite_link" });
        node["isGroup"] = false;
        node["phone"] = Group;
        node["participantPhone"] = Member;
        var e = Parse(node);
        Assert.Equal(InboxEventKind.Message, e.Kind);
        Assert.True(e.IsGroup);
        Assert.Equal(Group, e.ChatId);
        Assert.Equal(Member, e.SenderId);
        Assert.Equal(InboxMessageType.Unknown, e.MessageType);
        Assert.Contains("MEMBERSHIP_APPROVAL_REQUEST", e.Raw, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Messages_sent_from_the_phone_or_the_api_are_from_me_in_the_contacts_chat(bool fromApi)
    {
        var node = Received("3EB0OUT000000000000" + (fromApi ? "A" : "P"), new() { ["text"] = new JsonObject { ["message"] = "Já está a caminho" } });
        node["fromMe"] = true;
        node["fromApi"] = fromApi;
        node["status"] = "SENT";
        node["chatName"] = "Carla Dias";
        node["senderName"] = "Loja";
        var e = Parse(node);
        Assert.True(e.FromMe);
        Assert.Equal(Contact, e.ChatId);
        Assert.Equal(Connected, e.SenderId);
        Assert.Equal("Já está a caminho", e.Text);
    }

    [Fact]
    public void Message_from_me_in_a_group_is_sent_by_the_connected_number()
    {
        var node = Received("3EB0OUTGRP000000001", new() { ["text"] = new JsonObject { ["message"] = "Bom dia a todos" } });
        node["fromMe"] = true;
        node["isGroup"] = true;
        node["phone"] = Group;
        node["participantPhone"] = Connected;
        var e = Parse(node);
        Assert.True(e.FromMe);
        Assert.Equal(Group, e.ChatId);
        Assert.Equal(Connected, e.SenderId);
    }

    [Fact]
    public void Message_from_me_without_connected_phone_falls_back_to_the_group_participant()
    {
        var node = Received("3EB0OUTGRP000000002", new() { ["text"] = new JsonObject { ["message"] = "ok" } });
        node.Remove("connectedPhone");
        node["fromMe"] = true;
        node["isGroup"] = true;
        node["phone"] = Group;
        node["participantPhone"] = Connected;
        Assert.Equal(Connected, Parse(node).SenderId);
    }

    [Fact]
    public void Status_reply_is_a_message_in_the_contacts_chat()
    {
        var node = Received("3EB0STR0000000000001", new() { ["text"] = new JsonObject { ["message"] = "Que lindo!" } });
        node["isStatusReply"] = true;
        node["referenceMessageId"] = "3EB0STATUSPOST000001";
        var e = Parse(node);
        Assert.Equal(InboxEventKind.Message, e.Kind);
        Assert.Equal(Contact, e.ChatId);
        Assert.Equal(Contact, e.SenderId);
        Assert.Equal("3EB0STATUSPOST000001", e.ReplyToId);
        Assert.Contains("\"isStatusReply\":true", e.Raw, StringComparison.Ordinal);
    }

    [Fact]
    public void Newsletter_post_is_in_the_newsletter_chat()
    {
        var node = Received("3EB0NWS0000000000001", new() { ["text"] = new JsonObject { ["message"] = "Novidades da semana" } });
        node["isNewsletter"] = true;
        node["phone"] = "120363166555745933@newsletter";
        node["chatName"] = "Canal da Loja";
        var e = Parse(node);
        Assert.Equal("120363166555745933@newsletter", e.ChatId);
        Assert.False(e.IsGroup);
        Assert.Equal("Novidades da semana", e.Text);
    }

    [Fact]
    public void Lid_only_contact_chat_keeps_the_lid()
    {
        var node = Received("3EB0LID0000000000001", new() { ["text"] = new JsonObject { ["message"] = "oi" } });
        node["phone"] = "81896604192873@lid";
        node["chatLid"] = "81896604192873@lid";
        var e = Parse(node);
        Assert.Equal("81896604192873@lid", e.ChatId);
        Assert.Equal("81896604192873@lid", e.SenderId);
    }

    [Fact]
    public void Edited_message_keeps_the_original_id_with_its_own_dedupe_key()
    {
        var original = Parse(Received("3EB0EDT0000000000001", new() { ["text"] = new JsonObject { ["message"] = "Chego às 10h" } }));
        var editNode = Received("3EB0EDT0000000000001", new() { ["text"] = new JsonObject { ["message"] = "Chego às 11h" } });
        editNode["isEdit"] = true;
        editNode["momment"] = Momment + 60_000;
        var edit = Parse(editNode);
        var secondEditNode = (JsonObject)editNode.DeepClone();
        secondEditNode["momment"] = Momment + 120_000;
        var secondEdit = Parse(secondEditNode);

        Assert.True(edit.IsEdit);
        Assert.Equal(original.ExternalId, edit.ExternalId);
        Assert.Equal("zapi|inst-1|3EB0EDT0000000000001|edit:" + (Momment + 60_000), edit.DedupeKey);
        Assert.Equal("Chego às 11h", edit.Text);
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(Momment + 60_000), edit.OccurredAt);
        Assert.Equal(3, new[] { original.DedupeKey, edit.DedupeKey, secondEdit.DedupeKey }.Distinct().Count());
    }

    [Fact]
    public void Waiting_message_without_content_is_kept_as_an_unknown_message()
    {
        var node = Received("3EB0WAIT000000000001", new() { ["viewOnce"] = true });
        node["waitingMessage"] = true;
        var e = Parse(node);
        Assert.Equal(InboxEventKind.Message, e.Kind);
        Assert.Equal(InboxMessageType.Unknown, e.MessageType);
    }

    [Fact]
    public void Call_notification_is_a_system_message_in_the_chat()
    {
        var node = Received("1679655074-103", new() { ["notification"] = "CALL_MISSED_VOICE", ["notificationParameters"] = new JsonArray(), ["callId"] = "F44E0E2011E7C784BB9A4AC11749C436" });
        var e = Parse(node);
        Assert.Equal(InboxEventKind.Message, e.Kind);
        Assert.Equal(InboxMessageType.Unknown, e.MessageType);
        Assert.Equal(Contact, e.ChatId);
        Assert.Contains("CALL_MISSED_VOICE", e.Raw, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("PROFILE_NAME_UPDATED")]
    [InlineData("PROFILE_PICTURE_UPDATED")]
    [InlineData("CHAT_LABEL_ASSOCIATION")]
    public void Account_notification_without_message_id_is_kept_as_other(string notification)
    {
        var node = new JsonObject
        {
            ["isGroup"] = false,
            ["isNewsletter"] = false,
            ["instanceId"] = InstanceId,
            ["phone"] = Connected,
            ["connectedPhone"] = Connected,
            ["fromMe"] = true,
            ["momment"] = Momment,
            ["status"] = "RECEIVED",
            ["senderName"] = "Loja",
            ["type"] = "ReceivedCallback",
            ["notification"] = notification,
            ["profileName"] = "Loja Nova",
        };
        var e = Parse(node);
        Assert.Equal(InboxEventKind.Other, e.Kind);
        Assert.Equal("ReceivedCallback", e.ProviderEventType);
        Assert.Equal(InstanceId, e.ProviderInstanceId);
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(Momment), e.OccurredAt);
        Assert.Equal("zapi|inst-1|other|" + e.ExternalId, e.DedupeKey);
        Assert.Contains(notification, e.Raw, StringComparison.Ordinal);
    }

    // ---- MessageStatusCallback ----

    [Fact]
    public void Status_with_several_ids_gives_one_event_per_id_with_distinct_keys()
    {
        var json = $$"""{"instanceId":"{{InstanceId}}","status":"READ","ids":["3EB0OUT0000000000011","3EB0OUT0000000000012","3EB0OUT0000000000013"],"momment":1767300005000,"phoneDevice":0,"phone":"{{Contact}}","type":"MessageStatusCallback","isGroup":false}""";
        var events = ZApiAdapter().Parse(Request("zapi", json));
        Assert.Equal(3, events.Count);
        Assert.All(events, AssertWellFormed);
        Assert.Equal(["3EB0OUT0000000000011", "3EB0OUT0000000000012", "3EB0OUT0000000000013"], events.Select(e => e.ExternalId));
        Assert.Equal(3, events.Select(e => e.DedupeKey).Distinct().Count());
        Assert.All(events, e =>
        {
            Assert.Equal(InboxEventKind.Status, e.Kind);
            Assert.Equal(InboxMessageStatus.Read, e.Status);
            Assert.Equal("READ", e.ProviderStatus);
            Assert.Equal(Contact, e.ChatId);
            Assert.True(e.FromMe);
            Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(1767300005000), e.OccurredAt);
            Assert.Equal($"zapi|inst-1|{e.ExternalId}|read", e.DedupeKey);
            Assert.Equal(InstanceId, e.ProviderInstanceId);
        });
    }

    [Theory]
    [InlineData("SENT", InboxMessageStatus.Sent, true, "sent")]
    [InlineData("RECEIVED", InboxMessageStatus.Delivered, true, "delivered")]
    [InlineData("READ", InboxMessageStatus.Read, true, "read")]
    [InlineData("READ_BY_ME", InboxMessageStatus.Read, false, "read")]
    [InlineData("READ-SELF", InboxMessageStatus.Read, false, "read")]
    [InlineData("PLAYED", InboxMessageStatus.Played, true, "played")]
    [InlineData("SOMETHING_NEW", InboxMessageStatus.Unknown, true, "unknown:something_new")]
    public void Documented_statuses(string providerStatus, InboxMessageStatus expected, bool fromMe, string keyPart)
    {
        var e = Single(Statuses(providerStatus, "3EB0OUT0000000000021"));
        Assert.Equal(expected, e.Status);
        Assert.Equal(providerStatus, e.ProviderStatus);
        Assert.Equal(fromMe, e.FromMe);
        Assert.Equal("zapi|inst-1|3EB0OUT0000000000021|" + keyPart, e.DedupeKey);
        Assert.Null(e.StatusError);
    }

    [Fact]
    public void Each_status_of_one_message_has_its_own_key()
    {
        var keys = new[] { "SENT", "RECEIVED", "READ", "PLAYED" }.Select(s => Single(Statuses(s, "3EB0OUT0000000000022")).DedupeKey).ToList();
        Assert.Equal(4, keys.Distinct().Count());
    }

    [Fact]
    public void Failed_status_has_an_error()
    {
        var json = $$"""{"instanceId":"{{InstanceId}}","status":"FAILED","ids":["3EB0OUT0000000000023"],"momment":{{Momment}},"phone":"{{Contact}}","type":"MessageStatusCallback","error":"Phone number does not exist"}""";
        var e = Single(ZApiAdapter().Parse(Request("zapi", json)));
        AssertWellFormed(e);
        Assert.Equal(InboxMessageStatus.Failed, e.Status);
        Assert.Equal("FAILED", e.StatusError!.Title);
        Assert.Equal("Phone number does not exist", e.StatusError.Message);
    }

    [Fact]
    public void Group_status_is_in_the_group_and_a_member_receipt_is_keyed_by_member()
    {
        var json = $$"""{"instanceId":"{{InstanceId}}","status":"READ","ids":["3EB0OUT0000000000024"],"momment":{{Momment}},"phoneDevice":0,"phone":"{{Group}}","participantPhone":"{{Member}}","type":"MessageStatusCallback","isGroup":true}""";
        var e = Single(ZApiAdapter().Parse(Request("zapi", json)));
        Assert.True(e.IsGroup);
        Assert.Equal(Group, e.ChatId);
        Assert.Equal(Member, e.SenderId);
        Assert.Equal($"zapi|inst-1|3EB0OUT0000000000024|read|{Member}", e.DedupeKey);
    }

    [Fact]
    public void Status_with_a_single_id_string_is_read()
    {
        var json = $$"""{"instanceId":"{{InstanceId}}","status":"RECEIVED","ids":"3EB0OUT0000000000025","momment":{{Momment}},"phone":"{{Contact}}","type":"MessageStatusCallback"}""";
        var e = Single(ZApiAdapter().Parse(Request("zapi", json)));
        Assert.Equal(InboxEventKind.Status, e.Kind);
        Assert.Equal("3EB0OUT0000000000025", e.ExternalId);
    }

    [Fact]
    public void Status_without_any_id_is_kept_as_other()
    {
        var json = $$"""{"instanceId":"{{InstanceId}}","status":"READ","ids":[],"momment":{{Momment}},"phone":"{{Contact}}","type":"MessageStatusCallback"}""";
        var e = Single(ZApiAdapter().Parse(Request("zapi", json)));
        Assert.Equal(InboxEventKind.Other, e.Kind);
        Assert.Equal("MessageStatusCallback", e.ProviderEventType);
    }

    // ---- DeliveryCallback ----

    [Fact]
    public void Delivery_success_is_a_sent_status_at_its_time()
    {
        var json = $$"""{"phone":"{{Contact}}","messageId":"A800FB3697F1DE58C48D","instanceId":"{{InstanceId}}","zaapId":"A20DA9C0183A2D35A260F53F5D2B9244","momment":1777494009341,"type":"DeliveryCallback"}""";
        var e = Single(ZApiAdapter().Parse(Request("zapi", json)));
        AssertWellFormed(e);
        Assert.Equal(InboxEventKind.Status, e.Kind);
        Assert.Equal(InboxMessageStatus.Sent, e.Status);
        Assert.Equal("A800FB3697F1DE58C48D", e.ExternalId);
        Assert.Equal("zapi|inst-1|A800FB3697F1DE58C48D|sent", e.DedupeKey);
        Assert.True(e.FromMe);
        Assert.Equal(Contact, e.ChatId);
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(1777494009341), e.OccurredAt);
        Assert.Null(e.StatusError);
    }

    [Fact]
    public void Delivery_error_is_a_failed_status_with_the_error_and_its_code()
    {
        var json = $$"""{"phone":"{{Contact}}","messageId":"A20DA9C0183A2D35A260F53F5D2B9244","error":"Phone number does not exist","errorCode":"SHADOW_BAN","instanceId":"{{InstanceId}}","zaapId":"A20DA9C0183A2D35A260F53F5D2B9244","momment":1777494091684,"type":"DeliveryCallback"}""";
        var e = Single(ZApiAdapter().Parse(Request("zapi", json)));
        AssertWellFormed(e);
        Assert.Equal(InboxMessageStatus.Failed, e.Status);
        Assert.Equal("zapi|inst-1|A20DA9C0183A2D35A260F53F5D2B9244|failed", e.DedupeKey);
        Assert.Equal("Phone number does not exist", e.StatusError!.Message);
        Assert.Equal("SHADOW_BAN", e.StatusError.Code);
        Assert.Equal("DeliveryCallback", e.StatusError.Title);
    }

    [Fact]
    public void Delivery_error_without_a_whatsapp_id_is_identified_by_zaap_id()
    {
        var json = $$"""{"phone":"{{Contact}}","error":"Timeout on send message","instanceId":"{{InstanceId}}","zaapId":"019D44ZAAP0000000000000001","momment":1777494091684,"type":"DeliveryCallback"}""";
        var e = Single(ZApiAdapter().Parse(Request("zapi", json)));
        Assert.Equal("019D44ZAAP0000000000000001", e.ExternalId);
        Assert.Equal(InboxMessageStatus.Failed, e.Status);
    }

    [Fact]
    public void Delivery_to_a_group()
    {
        var json = $$"""{"phone":"{{Group}}","messageId":"3EB0OUTGRP000000009","zaapId":"Z9","instanceId":"{{InstanceId}}","momment":{{Momment}},"type":"DeliveryCallback"}""";
        var e = Single(ZApiAdapter().Parse(Request("zapi", json)));
        Assert.True(e.IsGroup);
        Assert.Equal(Group, e.ChatId);
    }

    // ---- Connection, presence, unknown ----

    [Fact]
    public void Connected_callback()
    {
        var json = $$"""{"type":"ConnectedCallback","connected":true,"momment":{{Momment}},"instanceId":"{{InstanceId}}","phone":"{{Connected}}"}""";
        var e = Single(ZApiAdapter().Parse(Request("zapi", json)));
        AssertWellFormed(e);
        Assert.Equal(InboxEventKind.Connection, e.Kind);
        Assert.Equal(InboxConnectionState.Connected, e.Connection!.State);
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(Momment), e.OccurredAt);
        Assert.Null(e.ChatId);
        Assert.Equal("zapi|inst-1|connection|" + e.ExternalId, e.DedupeKey);
    }

    [Fact]
    public void Disconnected_callback_with_time_in_seconds()
    {
        var json = $$"""{"momment":1767300000,"error":"Device has been disconnected","disconnected":true,"type":"DisconnectedCallback","instanceId":"{{InstanceId}}"}""";
        var e = Single(ZApiAdapter().Parse(Request("zapi", json)));
        AssertWellFormed(e);
        Assert.Equal(InboxConnectionState.Disconnected, e.Connection!.State);
        Assert.Equal("Device has been disconnected", e.Connection.Reason);
        Assert.Equal(Utc(1767300000), e.OccurredAt);
    }

    [Fact]
    public void Two_disconnections_are_distinct_events_and_a_retry_is_a_duplicate()
    {
        var first = $$"""{"momment":1767300000,"error":"Device has been disconnected","disconnected":true,"type":"DisconnectedCallback","instanceId":"{{InstanceId}}"}""";
        var second = first.Replace("1767300000", "1767303600", StringComparison.Ordinal);
        var a = Single(ZApiAdapter().Parse(Request("zapi", first)));
        var retry = Single(ZApiAdapter().Parse(Request("zapi", first)));
        var b = Single(ZApiAdapter().Parse(Request("zapi", second)));
        Assert.Equal(a.DedupeKey, retry.DedupeKey);
        Assert.NotEqual(a.DedupeKey, b.DedupeKey);
    }

    [Theory]
    [InlineData("UNAVAILABLE")]
    [InlineData("AVAILABLE")]
    [InlineData("COMPOSING")]
    [InlineData("PAUSED")]
    [InlineData("RECORDING")]
    public void Chat_presence_is_kept_as_other(string presence)
    {
        var json = $$"""{"type":"PresenceChatCallback","phone":"{{Contact}}","status":"{{presence}}","lastSeen":null,"instanceId":"{{InstanceId}}"}""";
        var e = Single(ZApiAdapter().Parse(Request("zapi", json)));
        AssertWellFormed(e);
        Assert.Equal(InboxEventKind.Other, e.Kind);
        Assert.Equal("PresenceChatCallback", e.ProviderEventType);
        Assert.Equal(ReceivedAt, e.OccurredAt);
        Assert.Contains(presence, e.Raw, StringComparison.Ordinal);
    }

    [Fact]
    public void Unknown_callback_type_is_kept_as_other()
    {
        var e = Single(ZApiAdapter().Parse(Request("zapi", $$"""{"type":"SomeFutureCallback","instanceId":"{{InstanceId}}","momment":{{Momment}},"value":1}""")));
        Assert.Equal(InboxEventKind.Other, e.Kind);
        Assert.Equal("SomeFutureCallback", e.ProviderEventType);
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(Momment), e.OccurredAt);
    }

    // ---- Malformed ----

    [Theory]
    [InlineData("""{"type":"ReceivedCallback","phone":"5521988880001","text":{"message":"SECRET-BODY"}}""", "ReceivedCallback has no \"messageId\"")]
    [InlineData("""{"type":"ReceivedCallback","messageId":"X1","text":{"message":"SECRET-BODY"}}""", "ReceivedCallback has no \"phone\"")]
    [InlineData("""{"type":"MessageStatusCallback","ids":["X1"],"phone":"5521988880001","note":"SECRET-BODY"}""", "MessageStatusCallback has no \"status\"")]
    [InlineData("""{"type":"DeliveryCallback","phone":"5521988880001","error":"SECRET-BODY"}""", "DeliveryCallback has no \"messageId\"")]
    [InlineData("""{"type":"DeliveryCallback","messageId":"X1","error":"SECRET-BODY"}""", "DeliveryCallback has no \"phone\"")]
    [InlineData("""{"text":{"message":"SECRET-BODY"}}""", "has no \"type\"")]
    public void Malformed_callbacks_say_what_is_missing_without_repeating_the_body(string json, string expected)
    {
        var ex = Assert.Throws<WebhookParseException>(() => ZApiAdapter().Parse(Request("zapi", json)));
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("SECRET-BODY", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Message_and_its_statuses_never_share_a_dedupe_key()
    {
        var message = Parse(Received("3EB0SAME000000000001", new() { ["text"] = new JsonObject { ["message"] = "x" } }));
        var statuses = new[] { "SENT", "RECEIVED", "READ" }.Select(s => Single(Statuses(s, "3EB0SAME000000000001"))).ToList();
        Assert.Equal(4, statuses.Select(s => s.DedupeKey).Append(message.DedupeKey).Distinct().Count());
    }

    // ---- helpers ----

    /// <summary>A ReceivedCallback with the common attributes of the documented examples, and the given content fields.</summary>
    private static JsonObject Received(string messageId, JsonObject content)
    {
        var node = new JsonObject
        {
            ["isStatusReply"] = false,
            ["senderLid"] = "81896604192873@lid",
            ["connectedPhone"] = Connected,
            ["waitingMessage"] = false,
            ["isEdit"] = false,
            ["isGroup"] = false,
            ["isNewsletter"] = false,
            ["instanceId"] = InstanceId,
            ["messageId"] = messageId,
            ["phone"] = Contact,
            ["fromMe"] = false,
            ["momment"] = Momment,
            ["status"] = "RECEIVED",
            ["chatName"] = "Carla Dias",
            ["senderPhoto"] = "https://pps.whatsapp.net/v/fake.jpg",
            ["senderName"] = "Carla Dias",
            ["participantPhone"] = null,
            ["participantLid"] = null,
            ["photo"] = "https://pps.whatsapp.net/v/fake.jpg",
            ["broadcast"] = false,
            ["messageExpirationSeconds"] = 0,
            ["forwarded"] = false,
            ["type"] = "ReceivedCallback",
            ["fromApi"] = false,
        };
        foreach (var (key, value) in content.ToList())
        {
            content.Remove(key);
            node[key] = value;
        }

        return node;
    }

    private static InboxEvent Parse(JsonObject node)
    {
        var e = Single(ZApiAdapter().Parse(Request("zapi", node.ToJsonString())));
        AssertWellFormed(e);
        return e;
    }

    private static IReadOnlyList<InboxEvent> Statuses(string status, params string[] ids)
    {
        var node = new JsonObject
        {
            ["instanceId"] = InstanceId,
            ["status"] = status,
            ["ids"] = new JsonArray(ids.Select(i => (JsonNode?)JsonValue.Create(i)).ToArray()),
            ["momment"] = Momment,
            ["phoneDevice"] = 0,
            ["phone"] = Contact,
            ["type"] = "MessageStatusCallback",
            ["isGroup"] = false,
        };
        var events = ZApiAdapter().Parse(Request("zapi", node.ToJsonString()));
        Assert.All(events, AssertWellFormed);
        return events;
    }
}
