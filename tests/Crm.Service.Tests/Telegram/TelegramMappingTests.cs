using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Crm.Connectors.Telegram;
using Crm.Service.Contracts;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Tests.Telegram;

/// <summary>What each kind of update becomes, through the webhook (answered only once handled, so no waiting).</summary>
public sealed class TelegramMappingTests : IAsyncLifetime
{
    private TelegramRig _rig = null!;
    private FakeBotApi.Bot _bot = null!;
    private int _updateId = 7000;

    public async Task InitializeAsync()
    {
        _rig = await TelegramRig.StartAsync();
        _bot = _rig.Api.AddBot(TelegramRig.TokenA, 111111, "support_bot");
        await _rig.ConfigureBotAsync("tga", TelegramRig.TokenA, mode: "webhook", secretToken: TelegramRig.Secret, welcomeText: "Welcome to <Support> & co!", groups: "conversation");
    }

    public async Task DisposeAsync() => await _rig.DisposeAsync();

    private async Task PostAsync(JsonObject update, string account = "tga", int? updateId = null)
    {
        update["update_id"] = updateId ?? ++_updateId;
        using var client = _rig.App.CreateClient();
        var request = new HttpRequestMessage(HttpMethod.Post, $"/connectors/telegram/{account}/webhook") { Content = new StringContent(update.ToJsonString(), Encoding.UTF8, "application/json") };
        request.Headers.Add(TelegramWebhookEndpoints.SecretHeader, TelegramRig.Secret);
        var response = await client.SendAsync(request);
        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task One_user_writing_to_two_bots_has_two_conversations_and_one_customer()
    {
        _rig.Api.AddBot(TelegramRig.TokenB, 222222, "sales_bot");
        await _rig.ConfigureBotAsync("tgb", TelegramRig.TokenB, mode: "webhook", secretToken: TelegramRig.Secret);
        await PostAsync(TelegramRig.PrivateMessage(1, "Hi support"), "tga");
        await PostAsync(TelegramRig.PrivateMessage(1, "Hi sales"), "tgb");

        var conversations = await _rig.App.QueryAsync(db => db.Conversations.AsNoTracking().OrderBy(c => c.ChannelAccountId).ToListAsync());
        Assert.Equal(["tga", "tgb"], conversations.Select(c => c.ChannelAccountId));
        Assert.All(conversations, c => Assert.Equal(TelegramRig.UserId.ToString(), c.ThreadKey));
        Assert.Single(conversations.Select(c => c.CustomerId).Distinct());
        Assert.Equal(2, conversations.Select(c => c.TicketNumber).Distinct().Count());
        var customer = await _rig.App.QueryAsync(db => db.Customers.AsNoTracking().SingleAsync());
        Assert.Equal("Ada Lovelace (@ada)", customer.Name);
    }

    [Fact]
    public async Task Text_entities_become_html_and_an_edit_is_a_message_of_its_own_marked_as_an_edit()
    {
        var entities = new JsonArray(new JsonObject { ["type"] = "bold", ["offset"] = 0, ["length"] = 4 }, new JsonObject { ["type"] = "text_link", ["offset"] = 5, ["length"] = 4, ["url"] = "https://example.test/x" });
        await PostAsync(TelegramRig.PrivateMessage(1, "Help here <now>", extra: new JsonObject { ["entities"] = entities.DeepClone() }));
        await PostAsync(TelegramRig.PrivateMessage(1, "Help here <soon>", kind: "edited_message", editDate: 1_700_000_500, extra: new JsonObject { ["entities"] = entities.DeepClone() }));

        var messages = await _rig.InboundAsync("tga");
        Assert.Equal(2, messages.Count);
        Assert.Equal($"{TelegramRig.UserId}:1", messages[0].ExternalId);
        Assert.Equal("Help here <now>", messages[0].Text);
        Assert.Contains("<b>Help</b>", messages[0].Html);
        Assert.Contains("href=\"https://example.test/x\"", messages[0].Html);
        Assert.Contains("&lt;now&gt;", messages[0].Html);
        Assert.StartsWith($"{TelegramRig.UserId}:1:edit:", messages[1].ExternalId, StringComparison.Ordinal);
        Assert.Equal($"✏️ Edit of message {TelegramRig.UserId}:1:\nHelp here <soon>", messages[1].Text);
        Assert.Equal(messages[0].TicketNumber, messages[1].TicketNumber);
    }

    [Fact]
    public async Task Media_is_fetched_with_getFile_and_a_file_over_20_MB_becomes_a_note_for_the_agent()
    {
        var pdf = Encoding.ASCII.GetBytes("%PDF-1.4 fake invoice");
        var jpeg = new byte[] { 0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3 };
        _rig.Api.AddFile("doc-1", "documents/file_1.pdf", pdf);
        _rig.Api.AddFile("photo-big", "photos/file_2.jpg", jpeg);
        _rig.Api.AddFile("voice-1", "voice/file_3.oga", [1, 2, 3, 4]);
        _rig.Api.AddFile("video-huge", "videos/file_4.mp4", [0], size: 25L * 1024 * 1024);
        await PostAsync(TelegramRig.PrivateMessage(1, null, extra: new JsonObject
        {
            ["document"] = new JsonObject { ["file_id"] = "doc-1", ["file_unique_id"] = "d1", ["file_name"] = "invoice.pdf", ["mime_type"] = "application/pdf", ["file_size"] = pdf.Length },
            ["caption"] = "My invoice",
        }));
        await PostAsync(TelegramRig.PrivateMessage(2, null, extra: new JsonObject
        {
            ["photo"] = new JsonArray(
                new JsonObject { ["file_id"] = "photo-small", ["file_unique_id"] = "p1", ["width"] = 90, ["height"] = 60 },
                new JsonObject { ["file_id"] = "photo-big", ["file_unique_id"] = "p2", ["width"] = 1280, ["height"] = 853 }),
        }));
        await PostAsync(TelegramRig.PrivateMessage(3, null, extra: new JsonObject { ["voice"] = new JsonObject { ["file_id"] = "voice-1", ["file_unique_id"] = "v1", ["duration"] = 2 } }));
        // Telegram names the size in the message; the connector does not even ask for the file.
        await PostAsync(TelegramRig.PrivateMessage(4, null, extra: new JsonObject { ["video"] = new JsonObject { ["file_id"] = "video-huge", ["file_unique_id"] = "v2", ["width"] = 1, ["height"] = 1, ["duration"] = 600, ["file_size"] = 25L * 1024 * 1024 } }));
        // Without a size in the message, getFile refuses it as too big.
        await PostAsync(TelegramRig.PrivateMessage(5, null, extra: new JsonObject { ["document"] = new JsonObject { ["file_id"] = "video-huge", ["file_unique_id"] = "v3", ["file_name"] = "film.mp4" } }));
        await PostAsync(TelegramRig.PrivateMessage(6, null, extra: new JsonObject { ["location"] = new JsonObject { ["latitude"] = 52.520008, ["longitude"] = 13.404954 } }));
        await PostAsync(TelegramRig.PrivateMessage(7, null, extra: new JsonObject
        {
            ["venue"] = new JsonObject { ["location"] = new JsonObject { ["latitude"] = 48.8584, ["longitude"] = 2.2945 }, ["title"] = "Eiffel Tower", ["address"] = "Champ de Mars" },
            ["location"] = new JsonObject { ["latitude"] = 48.8584, ["longitude"] = 2.2945 },
        }));
        await PostAsync(TelegramRig.PrivateMessage(8, null, extra: new JsonObject { ["sticker"] = new JsonObject { ["file_id"] = "sticker-gone", ["file_unique_id"] = "s1", ["type"] = "regular", ["width"] = 512, ["height"] = 512, ["is_animated"] = false, ["is_video"] = false, ["emoji"] = "👍" } }));

        var messages = await _rig.InboundAsync("tga");
        Assert.Equal(8, messages.Count);
        var attachments = await _rig.App.QueryAsync(db => db.Attachments.AsNoTracking().ToListAsync());
        var invoice = Assert.Single(attachments, a => a.MessageId == messages[0].Id);
        Assert.Equal(("invoice.pdf", (long)pdf.Length), (invoice.FileName, invoice.Length));
        Assert.Equal("My invoice", messages[0].Text);
        var photo = Assert.Single(attachments, a => a.MessageId == messages[1].Id);
        Assert.Equal(("photo-2.jpg", (long)jpeg.Length), (photo.FileName, photo.Length));
        Assert.Equal("voice-3.ogg", Assert.Single(attachments, a => a.MessageId == messages[2].Id).FileName);
        Assert.DoesNotContain(attachments, a => a.MessageId == messages[3].Id || a.MessageId == messages[4].Id);
        Assert.Contains("larger than the 20 MB bots may download", messages[3].Text);
        Assert.Contains("'film.mp4'", messages[4].Text);
        Assert.Contains("larger than the 20 MB", messages[4].Text);
        Assert.Contains("📍 Location: 52.520008, 13.404954", messages[5].Text);
        Assert.StartsWith("📍 Eiffel Tower, Champ de Mars (48.8584, 2.2945)", messages[6].Text);
        Assert.Contains("[Sticker 👍]", messages[7].Text);
        Assert.Contains("could not be fetched from Telegram: Bad Request: invalid file_id", messages[7].Text);
    }

    [Fact]
    public async Task Audio_video_video_notes_and_stickers_are_fetched_with_getFile_into_attachments()
    {
        _rig.Api.AddFile("audio-1", "music/file_10.mp3", [0x49, 0x44, 0x33, 1, 2]);
        _rig.Api.AddFile("video-1", "videos/file_11.mp4", [0, 0, 0, 0x18, 0x66, 0x74, 0x79, 0x70]);
        _rig.Api.AddFile("note-1", "video_notes/file_12.mp4", [0, 0, 0, 0x18, 0x66, 0x74, 0x79, 0x71]);
        _rig.Api.AddFile("sticker-1", "stickers/file_13.webp", [0x52, 0x49, 0x46, 0x46, 9]);
        await PostAsync(TelegramRig.PrivateMessage(21, null, extra: new JsonObject
        {
            ["audio"] = new JsonObject { ["file_id"] = "audio-1", ["file_unique_id"] = "a1", ["duration"] = 3, ["file_name"] = "song.mp3", ["mime_type"] = "audio/mpeg" },
            ["caption"] = "This song",
        }));
        await PostAsync(TelegramRig.PrivateMessage(22, null, extra: new JsonObject { ["video"] = new JsonObject { ["file_id"] = "video-1", ["file_unique_id"] = "vi1", ["width"] = 640, ["height"] = 480, ["duration"] = 5 } }));
        await PostAsync(TelegramRig.PrivateMessage(23, null, extra: new JsonObject { ["video_note"] = new JsonObject { ["file_id"] = "note-1", ["file_unique_id"] = "n1", ["length"] = 240, ["duration"] = 4 } }));
        await PostAsync(TelegramRig.PrivateMessage(24, null, extra: new JsonObject { ["sticker"] = new JsonObject { ["file_id"] = "sticker-1", ["file_unique_id"] = "st1", ["type"] = "regular", ["width"] = 512, ["height"] = 512, ["is_animated"] = false, ["is_video"] = false, ["emoji"] = "🙂" } }));

        var messages = await _rig.InboundAsync("tga");
        Assert.Equal(4, messages.Count);
        var attachments = await _rig.App.QueryAsync(db => db.Attachments.AsNoTracking().ToListAsync());
        Assert.Equal(("song.mp3", 5L), Assert.Single(attachments, a => a.MessageId == messages[0].Id) is var audio ? (audio.FileName, audio.Length) : default);
        Assert.Equal("This song", messages[0].Text);
        Assert.Equal(("video-22.mp4", 8L), Assert.Single(attachments, a => a.MessageId == messages[1].Id) is var video ? (video.FileName, video.Length) : default);
        Assert.Equal(("video-note-23.mp4", 8L), Assert.Single(attachments, a => a.MessageId == messages[2].Id) is var note ? (note.FileName, note.Length) : default);
        Assert.Equal(("sticker-24.webp", 5L), Assert.Single(attachments, a => a.MessageId == messages[3].Id) is var sticker ? (sticker.FileName, sticker.Length) : default);
        Assert.Contains("[Sticker 🙂]", messages[3].Text);
        Assert.True(new[] { "music/file_10.mp3", "videos/file_11.mp4", "video_notes/file_12.mp4", "stickers/file_13.webp" }.All(_rig.Api.Downloads.ContainsKey));
    }

    [Fact]
    public async Task A_contact_the_user_shared_of_themselves_links_the_phone_and_anyone_elses_links_nothing()
    {
        await PostAsync(TelegramRig.PrivateMessage(1, null, extra: new JsonObject
        {
            ["contact"] = new JsonObject { ["phone_number"] = "+49 151 2345 6789", ["first_name"] = "Ada", ["user_id"] = TelegramRig.UserId },
        }));
        // A contact card of someone else: Telegram does not vouch for the sender owning that number.
        await PostAsync(TelegramRig.PrivateMessage(2, null, extra: new JsonObject
        {
            ["contact"] = new JsonObject { ["phone_number"] = "+1 555 010 2030", ["first_name"] = "Bob", ["user_id"] = 999 },
        }));
        await PostAsync(TelegramRig.PrivateMessage(3, null, extra: new JsonObject
        {
            ["contact"] = new JsonObject { ["phone_number"] = "+1 555 010 9999", ["first_name"] = "Eve" },
        }));

        var messages = await _rig.InboundAsync("tga");
        Assert.Equal(3, messages.Count);
        Assert.Contains("📇 Contact: Ada, +49 151 2345 6789 (the sender's own number)", messages[0].Text);
        var identities = await _rig.App.QueryAsync(db => db.Identities.AsNoTracking().ToListAsync());
        var telegram = Assert.Single(identities, i => i.Kind == IdentityKind.Telegram);
        var phone = Assert.Single(identities, i => i.Kind == IdentityKind.Phone);
        Assert.Equal("phone:+4915123456789", phone.Key);
        Assert.Equal(telegram.CustomerId, phone.CustomerId);
    }

    [Fact]
    public async Task Start_is_answered_with_the_escaped_welcome_text_and_opens_no_ticket_and_callback_queries_are_answered()
    {
        var start = TelegramRig.PrivateMessage(1, "/start", extra: new JsonObject { ["entities"] = new JsonArray(new JsonObject { ["type"] = "bot_command", ["offset"] = 0, ["length"] = 6 }) });
        await PostAsync((JsonObject)start.DeepClone(), updateId: 9001);
        // Telegram posts it again (our 200 got lost): the user is not welcomed twice.
        await PostAsync(start, updateId: 9001);
        var welcome = Assert.Single(_bot.Sent);
        Assert.Equal(("sendMessage", TelegramRig.UserId, "Welcome to &lt;Support&gt; &amp; co!", "HTML"), (welcome.Method, welcome.ChatId, welcome.Text, welcome.ParseMode?.ToUpperInvariant()));

        await PostAsync(new JsonObject
        {
            ["callback_query"] = new JsonObject
            {
                ["id"] = "cbq-77",
                ["from"] = new JsonObject { ["id"] = TelegramRig.UserId, ["is_bot"] = false, ["first_name"] = "Ada" },
                ["chat_instance"] = "ci",
                ["data"] = "csat:5",
            },
        });
        Assert.Equal(["cbq-77"], _bot.AnsweredCallbacks);
        Assert.Empty(await _rig.InboundAsync("tga"));
        Assert.Equal(0, await _rig.App.QueryAsync(db => db.Tickets.CountAsync()));
        var kept = await _rig.KeptAsync("tga");
        Assert.Contains(kept, k => k.Reason.Contains("/start", StringComparison.Ordinal) && k.Reason.Contains("welcome", StringComparison.Ordinal));
        Assert.Contains(kept, k => k.Reason.Contains("csat:5", StringComparison.Ordinal) && k.Reason.Contains("answered", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_group_handled_as_a_conversation_is_one_customer_and_names_each_author()
    {
        var group = new JsonObject
        {
            ["message"] = new JsonObject
            {
                ["message_id"] = 9,
                ["from"] = new JsonObject { ["id"] = 1001, ["is_bot"] = false, ["first_name"] = "Grace" },
                ["chat"] = new JsonObject { ["id"] = -100500, ["type"] = "supergroup", ["title"] = "ACME ops" },
                ["date"] = 1_700_000_000,
                ["text"] = "Our VPN is down",
            },
        };
        await PostAsync(group);
        var message = Assert.Single(await _rig.InboundAsync("tga"));
        Assert.Equal("-100500:9", message.ExternalId);
        Assert.Equal("Grace:\nOur VPN is down", message.Text);
        var conversation = await _rig.App.QueryAsync(db => db.Conversations.AsNoTracking().SingleAsync());
        Assert.Equal(("-100500", "telegram:-100500"), (conversation.ThreadKey, conversation.CustomerIdentity));
    }
    // Issue 19: channels follow the same setting as groups; a channel post has no "from", so the channel is the customer.
    [Fact]
    public async Task A_channel_post_is_a_conversation_of_the_channel_when_groups_are_handled_and_kept_aside_when_ignored()
    {
        JsonObject Post(long chatId, int messageId, string text) => new()
        {
            ["channel_post"] = new JsonObject
            {
                ["message_id"] = messageId,
                ["sender_chat"] = new JsonObject { ["id"] = chatId, ["type"] = "channel", ["title"] = "ACME news" },
                ["chat"] = new JsonObject { ["id"] = chatId, ["type"] = "channel", ["title"] = "ACME news" },
                ["date"] = 1_700_000_000,
                ["text"] = text,
            },
        };
        await PostAsync(Post(-100777, 5, "Outage tonight"));
        var message = Assert.Single(await _rig.InboundAsync("tga"));
        Assert.Equal("-100777:5", message.ExternalId);
        Assert.Contains("Outage tonight", message.Text, StringComparison.Ordinal);
        var conversation = await _rig.App.QueryAsync(db => db.Conversations.AsNoTracking().SingleAsync());
        Assert.Equal(("-100777", "telegram:-100777"), (conversation.ThreadKey, conversation.CustomerIdentity));

        _rig.Api.AddBot(TelegramRig.TokenB, 222222, "sales_bot");
        await _rig.ConfigureBotAsync("tgb", TelegramRig.TokenB, mode: "webhook", secretToken: TelegramRig.Secret, groups: "ignore");
        await PostAsync(Post(-100888, 6, "Sale starts"), "tgb");
        Assert.Empty(await _rig.InboundAsync("tgb"));
        Assert.Equal(1, await _rig.App.QueryAsync(db => db.Conversations.CountAsync()));
        var ignored = await _rig.KeptAsync("tgb");
        Assert.Contains(ignored, q => q.Reason.Contains("channel chat -100888 ignored", StringComparison.Ordinal));
    }
}
