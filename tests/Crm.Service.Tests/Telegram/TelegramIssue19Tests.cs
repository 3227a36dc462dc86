using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Crm.Connectors.Telegram;
using Crm.Service.Auth;
using Crm.Service.Contracts;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Tests.Telegram;

/// <summary>Issue 19, second pass: edits linked to their original in the console and the API, button presses
/// recorded on the conversation; through the webhook (answered only once handled, so no waiting).</summary>
public sealed class TelegramIssue19Tests : IAsyncLifetime
{
    private TelegramRig _rig = null!;
    private FakeBotApi.Bot _bot = null!;
    private int _updateId = 500;

    public async Task InitializeAsync()
    {
        _rig = await TelegramRig.StartAsync();
        _bot = _rig.Api.AddBot(TelegramRig.TokenA, 111111, "support_bot");
        await _rig.ConfigureBotAsync("tga", TelegramRig.TokenA, mode: "webhook", secretToken: TelegramRig.Secret);
    }

    public async Task DisposeAsync() => await _rig.DisposeAsync();

    private async Task PostAsync(JsonObject update, int? updateId = null)
    {
        update = (JsonObject)update.DeepClone();
        update["update_id"] = updateId ?? ++_updateId;
        using var client = _rig.App.CreateClient();
        var request = new HttpRequestMessage(HttpMethod.Post, "/connectors/telegram/tga/webhook") { Content = new StringContent(update.ToJsonString(), Encoding.UTF8, "application/json") };
        request.Headers.Add(TelegramWebhookEndpoints.SecretHeader, TelegramRig.Secret);
        var response = await client.SendAsync(request);
        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task An_edit_is_linked_to_its_original_in_the_console_and_the_api_and_a_redelivered_edit_is_no_duplicate()
    {
        await PostAsync(TelegramRig.PrivateMessage(7, "My order is 1234"));
        var edit = TelegramRig.PrivateMessage(7, "My order is 1235", kind: "edited_message", editDate: 1_700_000_100);
        await PostAsync(edit, updateId: 9100);
        // Telegram posts it again (our 200 got lost), then once more under a new update_id (an offset reset).
        await PostAsync(edit, updateId: 9100);
        await PostAsync(edit);

        var messages = await _rig.InboundAsync("tga");
        Assert.Equal(2, messages.Count);
        var (original, edited) = (messages.Single(m => m.ExternalId == $"{TelegramRig.UserId}:7"), messages.Single(m => m.ExternalId != $"{TelegramRig.UserId}:7"));
        Assert.Equal("My order is 1234", original.Text);
        Assert.Contains("My order is 1235", edited.Text);
        Assert.Equal(original.TicketNumber, edited.TicketNumber);
        Assert.Equal(1, await _rig.App.QueryAsync(db => db.Tickets.CountAsync()));

        using var agent = await _rig.App.AgentAsync();
        var timeline = await agent.GetFromJsonAsync<JsonElement>($"/api/v1/tickets/{original.TicketNumber}/timeline");
        var items = timeline.GetProperty("items").EnumerateArray().ToList();
        var editEntry = items.Single(i => i.GetProperty("id").GetGuid() == edited.Id);
        Assert.Equal($"{TelegramRig.UserId}:7", editEntry.GetProperty("editOf").GetString());
        Assert.Equal(JsonValueKind.Null, items.Single(i => i.GetProperty("id").GetGuid() == original.Id).GetProperty("editOf").ValueKind);

        using var console = await ConsoleBrowser.SignedInAsync(_rig.App, "agent@example.com", ConsoleRoles.Agent);
        var html = await console.PageAsync($"/Tickets/{original.TicketNumber}");
        // The edit says it is one and links to the earlier version; the original links to its latest version.
        Assert.Contains($"data-edit-of=\"{original.Id}\"", html, StringComparison.Ordinal);
        Assert.Contains($"href=\"#m-{original.Id}\"", html, StringComparison.Ordinal);
        Assert.Contains("data-edits=\"1\"", html, StringComparison.Ordinal);
        Assert.Contains($"href=\"#m-{edited.Id}\"", html, StringComparison.Ordinal);
    }

    private static JsonObject ButtonPress(string queryId, string data) => new()
    {
        ["callback_query"] = new JsonObject
        {
            ["id"] = queryId,
            ["from"] = new JsonObject { ["id"] = TelegramRig.UserId, ["is_bot"] = false, ["first_name"] = "Ada" },
            ["chat_instance"] = "ci",
            ["data"] = data,
            // Our own message with the inline keyboard (a CSAT question).
            ["message"] = new JsonObject
            {
                ["message_id"] = 5001,
                ["from"] = new JsonObject { ["id"] = 111111, ["is_bot"] = true, ["first_name"] = "support_bot" },
                ["chat"] = new JsonObject { ["id"] = TelegramRig.UserId, ["type"] = "private", ["first_name"] = "Ada" },
                ["date"] = 1_700_000_500,
                ["text"] = "How did we do?",
                ["reply_markup"] = new JsonObject
                {
                    ["inline_keyboard"] = new JsonArray(new JsonArray(
                        new JsonObject { ["text"] = "😀 Great", ["callback_data"] = "csat:5" },
                        new JsonObject { ["text"] = "😞 Poor", ["callback_data"] = "csat:1" })),
                },
            },
        },
    };

    [Fact]
    public async Task A_button_press_is_answered_once_and_recorded_on_the_conversation_as_the_customers_action()
    {
        await PostAsync(TelegramRig.PrivateMessage(1, "Thanks, solved"));
        var ticket = Assert.Single(await _rig.InboundAsync("tga")).TicketNumber;
        using (var agent = await _rig.App.AgentAsync())
        {
            var resolve = await agent.PatchAsJsonAsync($"/api/v1/tickets/{ticket}", new { status = "resolved" });
            Assert.True(resolve.IsSuccessStatusCode, await resolve.Content.ReadAsStringAsync());
        }

        var press = ButtonPress("cbq-1", "csat:5");
        await PostAsync(press, updateId: 9200);
        // A webhook retry and a redelivery under a new update_id: neither answers nor records again.
        await PostAsync(press, updateId: 9200);
        await PostAsync(press);

        Assert.Equal(["cbq-1"], _bot.AnsweredCallbacks);
        var messages = await _rig.InboundAsync("tga");
        Assert.Equal(2, messages.Count);
        var action = messages.Single(m => m.ExternalId == $"{TelegramRig.UserId}:callback:cbq-1");
        Assert.Equal(ticket, action.TicketNumber);
        Assert.Contains("Pressed the button \"😀 Great\" (data 'csat:5') on message", action.Text);
        // A rating is an action, not a new question: the resolved ticket stays resolved and no follow-up opens.
        var tickets = await _rig.App.QueryAsync(db => db.Tickets.AsNoTracking().ToListAsync());
        Assert.Equal(TicketStatus.Resolved, Assert.Single(tickets).Status);
    }
    // CT5: callback data is client-made; a press in a chat we hold no conversation with was recorded, and the hand-off
    // opened a ticket whose only message was "Pressed a button". It is only answered now.
    [Fact]
    public async Task A_button_press_in_a_chat_with_no_conversation_is_answered_and_opens_no_ticket()
    {
        await PostAsync(ButtonPress("cbq-stranger", "csat:5"));
        Assert.Equal(["cbq-stranger"], _bot.AnsweredCallbacks);
        Assert.Empty(await _rig.InboundAsync("tga"));
        Assert.Equal(0, await _rig.App.QueryAsync(db => db.Tickets.CountAsync()));
        Assert.Equal(0, await _rig.App.QueryAsync(db => db.Conversations.CountAsync()));
    }

    // CT6: the data (and a label) entered the text raw, so a customer could forge a second line such as a fake edit
    // note inside a message marked automatic, or flip the line with bidi controls; cut by rune, never inside a pair.
    [Fact]
    public async Task A_button_press_shows_its_data_on_one_line_without_bidi_or_format_characters()
    {
        await PostAsync(TelegramRig.PrivateMessage(1, "Hello"));
        await PostAsync(ButtonPress("cbq-forge", "x\n✏️ Edit of message 1:2\u202E\u2028gnp.exe\u200B"));
        var action = Assert.Single(await _rig.InboundAsync("tga"), m => m.ExternalId == $"{TelegramRig.UserId}:callback:cbq-forge");
        Assert.DoesNotContain('\n', action.Text!);
        Assert.DoesNotContain('\u202E', action.Text!);
        Assert.DoesNotContain('\u2028', action.Text!);
        Assert.DoesNotContain('\u200B', action.Text!);
        Assert.Contains("(data 'x ✏️ Edit of message 1:2  gnp.exe ')", action.Text);

        var cut = TelegramIngest.OneLine(new string('a', 63) + "😀😀", 64);
        Assert.Equal(new string('a', 63) + "😀", cut);
        Assert.Equal("a  b", TelegramIngest.OneLine("a\r\u0085b", 64));
    }
}
