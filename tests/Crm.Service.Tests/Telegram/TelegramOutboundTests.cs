using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Crm.Connectors.Abstractions;
using Crm.Service.Contracts;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Crm.Service.Tests.Telegram;

/// <summary>Agent replies through the outbox to the fake Bot API: escaping, splitting, 429, 403, files.</summary>
public sealed class TelegramOutboundTests : IAsyncLifetime
{
    private TelegramRig _rig = null!;
    private FakeBotApi.Bot _bot = null!;
    private long _ticket;

    public async Task InitializeAsync()
    {
        _rig = await TelegramRig.StartAsync();
        _bot = _rig.Api.AddBot(TelegramRig.TokenA, 111111, "support_bot");
        await _rig.ConfigureBotAsync("tg", TelegramRig.TokenA);
        _bot.Enqueue(TelegramRig.PrivateMessage(1, "Where is my parcel?"));
        _ticket = Assert.Single(await _rig.InboundCountReachedAsync("tg", 1)).TicketNumber;
    }

    public async Task DisposeAsync() => await _rig.DisposeAsync();

    private async Task<Guid> ReplyAsync(string text)
    {
        using var agent = await _rig.App.AgentAsync();
        var response = await agent.PostAsJsonAsync($"/api/v1/tickets/{_ticket}/reply", new { text });
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
    }

    private Task<Crm.Service.Grains.Records.MessageRecord> DeliveredAsync(Guid id, DeliveryStatus status) =>
        Eventually.WaitForAsync(() => _rig.App.QueryAsync(db => db.Messages.AsNoTracking().SingleAsync(m => m.Id == id)), m => m.Delivery == status, what: $"reply {status}");

    private int SendMessageCalls => _bot.Calls.Count(c => c == "sendMessage");

    [Fact]
    public async Task A_reply_is_sent_html_escaped_and_the_telegram_message_id_is_recorded()
    {
        var id = await ReplyAsync("Use <b>tags</b> & \"quotes\" freely; 2 < 3 > 1 &amp; done");
        var sent = await DeliveredAsync(id, DeliveryStatus.Sent);
        var message = Assert.Single(_bot.Sent);
        Assert.Equal(TelegramRig.UserId, message.ChatId);
        Assert.Equal("Use &lt;b&gt;tags&lt;/b&gt; &amp; &quot;quotes&quot; freely; 2 &lt; 3 &gt; 1 &amp;amp; done", message.Text);
        // What the customer sees is exactly what the agent typed.
        Assert.Equal("Use <b>tags</b> & \"quotes\" freely; 2 < 3 > 1 &amp; done", FakeBotApi.ParseHtml(message.Text!));
        Assert.Equal($"{TelegramRig.UserId}:{message.MessageId}", sent.OutboundExternalId);
    }

    [Fact]
    public async Task A_long_reply_is_split_at_4096_characters_and_a_429_in_the_middle_resends_only_what_had_not_gone_out()
    {
        var paragraph = string.Join(' ', Enumerable.Repeat("Lorem ipsum <dolor> & sit amet.", 40));
        var text = string.Join('\n', Enumerable.Range(1, 9).Select(i => $"{i}. {paragraph}"));
        Assert.True(text.Length > 2 * 4096);
        // The first part goes through; the second meets flood control longer than the sender waits inline.
        _bot.FloodRetryAfter.Enqueue(0);
        _bot.FloodRetryAfter.Enqueue(2);
        var id = await ReplyAsync(text);
        var sent = await DeliveredAsync(id, DeliveryStatus.Sent);

        var parts = _bot.Sent.ToList();
        Assert.Equal(3, parts.Count);
        var visible = parts.Select(p => FakeBotApi.ParseHtml(p.Text!)!).ToList();
        Assert.All(visible, v => Assert.InRange(v.Length, 1, 4096));
        Assert.Equal(text, string.Join('\n', visible));
        // One refused call and three that went through: the retry did not resend part one, and the outbox's retries
        // during the flood window were held back without calling Telegram.
        Assert.Equal(4, SendMessageCalls);
        Assert.Equal($"{TelegramRig.UserId}:{string.Join(',', parts.Select(p => p.MessageId))}", sent.OutboundExternalId);
    }

    [Fact]
    public async Task A_short_429_is_waited_out_within_the_send()
    {
        _bot.FloodRetryAfter.Enqueue(1);
        var id = await ReplyAsync("After the flood.");
        await DeliveredAsync(id, DeliveryStatus.Sent);
        Assert.Single(_bot.Sent);
        Assert.Equal(2, SendMessageCalls);
        // The first attempt succeeded: the outbox never saw an error.
        Assert.Null(await _rig.App.OutboxErrorAsync(id));
    }

    [Fact]
    public async Task A_user_who_blocked_the_bot_fails_the_delivery_with_telegrams_reason()
    {
        _bot.Blocked[TelegramRig.UserId] = true;
        var id = await ReplyAsync("Are you there?");
        await DeliveredAsync(id, DeliveryStatus.Failed);
        Assert.Equal(1, SendMessageCalls);
        Assert.Contains("403 Forbidden: bot was blocked by the user", await _rig.App.OutboxErrorAsync(id));
        // One customer's refusal is not a channel error: the bot stays connected (review CT12).
        using var admin = _rig.App.Admin();
        var channel = await admin.GetFromJsonAsync<JsonElement>("/api/v1/admin/channels/tg");
        Assert.False(channel.TryGetProperty("lastErrorAt", out var errorAt) && errorAt.ValueKind != JsonValueKind.Null, channel.ToString());
        Assert.True(channel.GetProperty("connected").GetBoolean());
    }

    // Review CR8: every 400 counted as the recipient's refusal, so a fault that fails every message (a request Telegram
    // cannot parse) cleared the channel's error and showed the bot connected.
    [Fact]
    public async Task A_refusal_that_is_not_about_the_chat_or_the_message_is_a_channel_error()
    {
        _bot.RefuseMessagesWith = "Bad Request: can't parse entities: unsupported start tag \"x\" at byte offset 0";
        var id = await ReplyAsync("Are you there?");
        await DeliveredAsync(id, DeliveryStatus.Failed);
        using var admin = _rig.App.Admin();
        var channel = await Eventually.WaitForAsync(() => admin.GetFromJsonAsync<JsonElement>("/api/v1/admin/channels/tg"),
            c => c.TryGetProperty("lastErrorAt", out var at) && at.ValueKind == JsonValueKind.String, TimeSpan.FromSeconds(30), "the channel error recorded");
        Assert.Contains("can't parse entities", channel.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_user_who_blocked_the_bot_is_shown_to_the_agent_on_the_reply_in_the_console_and_the_api()
    {
        _bot.Blocked[TelegramRig.UserId] = true;
        var id = await ReplyAsync("Are you there?");
        var failed = await DeliveredAsync(id, DeliveryStatus.Failed);
        Assert.Equal("Delivery failed: the customer blocked the bot.", failed.DeliveryError);
        // Final: the outbox does not try again, and keeps Telegram's own words for admins.
        Assert.Contains("403 Forbidden: bot was blocked by the user (attempt 1, not retried)", await _rig.App.OutboxErrorAsync(id));
        Assert.Equal(1, SendMessageCalls);

        using var agent = await _rig.App.AgentAsync();
        var timeline = await agent.GetFromJsonAsync<JsonElement>($"/api/v1/tickets/{_ticket}/timeline");
        var entry = timeline.GetProperty("items").EnumerateArray().Single(i => i.GetProperty("id").GetGuid() == id);
        Assert.Equal("Delivery failed: the customer blocked the bot.", entry.GetProperty("deliveryError").GetString());
        using var console = await ConsoleBrowser.SignedInAsync(_rig.App, "agent@example.com", Crm.Service.Auth.ConsoleRoles.Agent);
        Assert.Contains("<span class=\"delivery-error\">Delivery failed: the customer blocked the bot.</span>", await console.PageAsync($"/Tickets/{_ticket}"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_chat_telegram_does_not_know_fails_the_reply_at_once_with_the_reason()
    {
        _bot.Missing[TelegramRig.UserId] = true;
        var id = await ReplyAsync("Hello?");
        var failed = await DeliveredAsync(id, DeliveryStatus.Failed);
        Assert.Equal("Delivery failed: the chat no longer exists on Telegram.", failed.DeliveryError);
        Assert.Contains("400 Bad Request: chat not found (attempt 1, not retried)", await _rig.App.OutboxErrorAsync(id));
        Assert.Equal(1, SendMessageCalls);
    }

    [Fact]
    public async Task The_admin_api_shows_the_bot_connected_with_its_last_update_then_telegrams_own_error()
    {
        using var admin = _rig.App.Admin();
        await Eventually.WaitForAsync(() => admin.GetFromJsonAsync<JsonElement>("/api/v1/admin/channels/tg"),
            c => c.GetProperty("connected").ValueKind == JsonValueKind.True && c.GetProperty("lastReceivedAt").ValueKind == JsonValueKind.String,
            what: "the bot connected with a last received update");
        using (var console = await ConsoleBrowser.SignedInAsync(_rig.App, "admin@example.com", Crm.Service.Auth.ConsoleRoles.Admin))
        {
            var page = await console.PageAsync("/Admin/Channels");
            Assert.True(System.Text.RegularExpressions.Regex.IsMatch(page, "data-channel=\"tg\"[\\s\\S]*?class=\"received\">\\s*<time datetime="), page);
        }

        // The token is revoked (@BotFather /revoke): getUpdates answers 401 and the admin sees Telegram's words.
        _rig.Api.RevokeBot(TelegramRig.TokenA);
        var failing = await Eventually.WaitForAsync(() => admin.GetFromJsonAsync<JsonElement>("/api/v1/admin/channels/tg"),
            c => c.GetProperty("connected").ValueKind == JsonValueKind.False, what: "the bot shown as not connected");
        Assert.Contains("Unauthorized", failing.GetProperty("lastError").GetString());
        // The last update received is still shown: when the bot last heard from Telegram.
        Assert.Equal(JsonValueKind.String, failing.GetProperty("lastReceivedAt").ValueKind);
    }

    [Fact]
    public async Task Files_go_out_with_sendPhoto_and_sendDocument()
    {
        var sender = _rig.App.Services.GetServices<IOutboundSender>().Single(s => s.Channel == ChannelKind.Telegram);
        var jpeg = new byte[] { 0xFF, 0xD8, 0xFF, 0xE0, 9, 9 };
        var pdf = Encoding.ASCII.GetBytes("%PDF-1.4 label");
        var result = await sender.SendAsync(new OutboundDelivery
        {
            MessageId = Guid.NewGuid(),
            TicketNumber = _ticket,
            ChannelAccountId = "tg",
            ThreadKey = TelegramRig.UserId.ToString(),
            Recipient = $"telegram:{TelegramRig.UserId}",
            Author = "agent",
            Text = "Your label and a photo:",
            CreatedAt = DateTimeOffset.UtcNow,
            Attempt = 1,
            Attachments = [new OutboundAttachment("parcel.jpg", "image/jpeg", jpeg), new OutboundAttachment("label.pdf", "application/pdf", pdf)],
        });
        Assert.True(result.Success, result.Error);
        var sent = _bot.Sent.ToList();
        Assert.Equal(["sendMessage", "sendPhoto", "sendDocument"], sent.Select(s => s.Method));
        Assert.Equal(jpeg, sent[1].File);
        Assert.Equal("label.pdf", sent[2].FileName);
        Assert.Equal(pdf, sent[2].File);
        Assert.Equal($"{TelegramRig.UserId}:{string.Join(',', sent.Select(s => s.MessageId))}", result.ExternalId);
    }

    private Task<OutboundResult> SendTextAndPhotoAsync()
    {
        var sender = _rig.App.Services.GetServices<IOutboundSender>().Single(s => s.Channel == ChannelKind.Telegram);
        return sender.SendAsync(new OutboundDelivery
        {
            MessageId = Guid.NewGuid(),
            TicketNumber = _ticket,
            ChannelAccountId = "tg",
            ThreadKey = TelegramRig.UserId.ToString(),
            Recipient = $"telegram:{TelegramRig.UserId}",
            Author = "agent",
            Text = "The chart:",
            CreatedAt = DateTimeOffset.UtcNow,
            Attempt = 1,
            Attachments = [new OutboundAttachment("chart.png", "image/png", [0x89, 0x50, 0x4E, 0x47, 1, 2])],
        });
    }

    [Fact]
    public async Task T12_a_photo_telegram_refuses_goes_out_as_a_document()
    {
        _bot.RefusePhotos = true;
        var result = await SendTextAndPhotoAsync();
        Assert.True(result.Success, result.Error);
        Assert.Equal(["sendMessage", "sendDocument"], _bot.Sent.Select(s => s.Method));
        Assert.Contains("sendPhoto", _bot.Calls);
    }

    [Fact]
    public async Task T12_a_final_refusal_after_some_parts_went_out_says_how_many_the_customer_has()
    {
        _bot.RefusePhotos = true;
        _bot.RefuseDocuments = true;
        var result = await SendTextAndPhotoAsync();
        Assert.False(result.Success);
        Assert.Contains("1 of 2 parts were delivered", result.Error);
        Assert.Equal(["sendMessage"], _bot.Sent.Select(s => s.Method));
    }

    private Task<OutboundResult> SendFilesAsync(string text, params OutboundAttachment[] files)
    {
        var sender = _rig.App.Services.GetServices<IOutboundSender>().Single(s => s.Channel == ChannelKind.Telegram);
        return sender.SendAsync(new OutboundDelivery
        {
            MessageId = Guid.NewGuid(),
            TicketNumber = _ticket,
            ChannelAccountId = "tg",
            ThreadKey = TelegramRig.UserId.ToString(),
            Recipient = $"telegram:{TelegramRig.UserId}",
            Author = "agent",
            Text = text,
            CreatedAt = DateTimeOffset.UtcNow,
            Attempt = 1,
            Attachments = files,
        });
    }

    [Fact]
    public async Task A_file_over_telegrams_50_MB_upload_limit_fails_the_reply_before_anything_is_sent()
    {
        var video = new byte[50 * 1024 * 1024 + 1];
        var result = await SendFilesAsync("The recording:", new OutboundAttachment("small.pdf", "application/pdf", "%PDF-1.4"u8.ToArray()),
            new OutboundAttachment("recording.mp4", "video/mp4", video));
        Assert.False(result.Success);
        Assert.True(result.Permanent);
        Assert.Contains("'recording.mp4' (50 MB) is larger than the 50 MB a bot may send through Telegram; nothing was sent", result.Error);
        // Not the text, not the small file, not the large one: the customer gets no half of the reply.
        Assert.DoesNotContain(_bot.Calls, c => c.StartsWith("send", StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_image_over_telegrams_10_MB_photo_limit_goes_out_as_a_document_without_trying_sendPhoto()
    {
        var png = new byte[10 * 1024 * 1024 + 1];
        new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }.CopyTo(png, 0);
        var result = await SendFilesAsync("The scan:", new OutboundAttachment("scan.png", "image/png", png));
        Assert.True(result.Success, result.Error);
        Assert.Equal(["sendMessage", "sendDocument"], _bot.Sent.Select(s => s.Method));
        Assert.DoesNotContain("sendPhoto", _bot.Calls);
        Assert.Equal(png.Length, _bot.Sent.Last().File!.Length);
    }

    [Fact]
    public async Task An_upload_telegram_refuses_as_too_large_fails_at_once_instead_of_being_retried()
    {
        // A Bot API server with a lower limit than ours (or a proxy in front of it): its 413 is final.
        _bot.UploadLimit = 1024 * 1024;
        var result = await SendFilesAsync("The manual:", new OutboundAttachment("manual.pdf", "application/pdf", new byte[2 * 1024 * 1024]));
        Assert.False(result.Success);
        Assert.True(result.Permanent);
        Assert.Contains("413 Request Entity Too Large", result.Error);
        Assert.Contains("1 of 2 parts were delivered", result.Error);
        Assert.Equal(1, _bot.Calls.Count(c => c == "sendDocument"));
    }
}
