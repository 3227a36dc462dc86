using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Crm.Connectors.Api.Http;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Tests.Api;

public sealed class ApiChannelTests : AppTest
{
    internal override IDictionary<string, string?> Settings => new Dictionary<string, string?> { ["Channels:Api:MaxBodyBytes"] = "65536" };

    private static object Message(string id, string text = "Where is my order?", string sender = "+15550102030") =>
        new { messageId = id, sender = new { id = sender, kind = "phone", name = "Alice" }, text };

    [Fact]
    public async Task A_signed_message_is_accepted_after_it_is_stored_and_shows_on_its_ticket()
    {
        var response = await App.PostMessageAsync(Message("wamid.1"));

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var accepted = await response.Content.ReadFromJsonAsync<JsonElement>();
        var ticket = accepted.GetProperty("ticketNumber").GetInt64();
        Assert.False(accepted.GetProperty("duplicate").GetBoolean());
        using var agent = await App.AgentAsync();
        var details = await agent.GetFromJsonAsync<JsonElement>($"/api/v1/tickets/{ticket}");
        var timeline = details.GetProperty("timeline");
        Assert.Equal("Where is my order?", timeline[0].GetProperty("text").GetString());
        Assert.Equal("inbound", timeline[0].GetProperty("direction").GetString());
        // The raw original is kept byte for byte.
        var raw = await agent.GetByteArrayAsync($"/api/v1/messages/{accepted.GetProperty("messageId").GetGuid()}/raw");
        Assert.Contains("wamid.1", Encoding.UTF8.GetString(raw), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_redelivered_message_is_answered_with_the_stored_one()
    {
        var first = await (await App.PostMessageAsync(Message("wamid.2"))).Content.ReadFromJsonAsync<JsonElement>();
        var second = await (await App.PostMessageAsync(Message("wamid.2"))).Content.ReadFromJsonAsync<JsonElement>();

        Assert.Equal(first.GetProperty("messageId").GetGuid(), second.GetProperty("messageId").GetGuid());
        Assert.True(second.GetProperty("duplicate").GetBoolean());
        Assert.Equal(1, await App.QueryAsync(db => db.Messages.CountAsync()));
    }

    [Fact]
    public async Task Spellings_of_one_phone_number_are_one_conversation()
    {
        var a = await (await App.PostMessageAsync(Message("p-1", sender: "+1 (555) 010-2030"))).Content.ReadFromJsonAsync<JsonElement>();
        var b = await (await App.PostMessageAsync(Message("p-2", sender: "+15550102030"))).Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(a.GetProperty("conversationId").GetGuid(), b.GetProperty("conversationId").GetGuid());
        Assert.Equal(a.GetProperty("ticketNumber").GetInt64(), b.GetProperty("ticketNumber").GetInt64());
    }

    public static TheoryData<string, string, HttpStatusCode, string> BadBodies => new()
    {
        { "truncated JSON", "{\"messageId\": \"x\"", HttpStatusCode.BadRequest, "body" },
        { "array instead of object", "[1,2]", HttpStatusCode.BadRequest, "body" },
        { "sender id of the wrong type", "{\"messageId\":\"x\",\"sender\":{\"id\":5},\"text\":\"hi\"}", HttpStatusCode.BadRequest, "sender.id" },
        { "sentAt not a date", "{\"messageId\":\"x\",\"sender\":{\"id\":\"a\"},\"text\":\"hi\",\"sentAt\":\"soon\"}", HttpStatusCode.BadRequest, "sentAt" },
        { "missing messageId", "{\"sender\":{\"id\":\"a\"},\"text\":\"hi\"}", HttpStatusCode.UnprocessableEntity, "messageId" },
        { "missing sender", "{\"messageId\":\"x\",\"text\":\"hi\"}", HttpStatusCode.UnprocessableEntity, "sender" },
        { "empty sender id", "{\"messageId\":\"x\",\"sender\":{\"id\":\" \"},\"text\":\"hi\"}", HttpStatusCode.UnprocessableEntity, "sender.id" },
        { "unknown sender kind", "{\"messageId\":\"x\",\"sender\":{\"id\":\"a\",\"kind\":\"fax\"},\"text\":\"hi\"}", HttpStatusCode.UnprocessableEntity, "sender.kind" },
        { "invalid email", "{\"messageId\":\"x\",\"sender\":{\"id\":\"not-an-address\",\"kind\":\"email\"},\"text\":\"hi\"}", HttpStatusCode.UnprocessableEntity, "sender.id" },
        { "no content", "{\"messageId\":\"x\",\"sender\":{\"id\":\"a\"}}", HttpStatusCode.UnprocessableEntity, "text" },
        { "bad base64", "{\"messageId\":\"x\",\"sender\":{\"id\":\"a\"},\"attachments\":[{\"fileName\":\"a.txt\",\"contentBase64\":\"!!!\"}]}", HttpStatusCode.UnprocessableEntity, "attachments[0].contentBase64" },
        { "null attachment", "{\"messageId\":\"x\",\"sender\":{\"id\":\"a\"},\"text\":\"t\",\"attachments\":[null]}", HttpStatusCode.UnprocessableEntity, "attachments[0]" },
    };

    [Theory]
    [MemberData(nameof(BadBodies))]
    public async Task Bad_input_gets_a_problem_naming_the_field_and_nothing_is_stored(string why, string body, HttpStatusCode status, string field)
    {
        using var client = App.CreateClient();
        var response = await client.SendAsync(Signing.SignedPost("/api/v1/channels/bridge/messages", CrmApp.ChannelSecret, body));

        Assert.True(status == response.StatusCode, $"{why}: expected {status}, got {response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(field, problem.GetProperty("field").GetString());
        Assert.Equal(0, await App.QueryAsync(db => db.Messages.CountAsync()));
        Assert.Equal(0, await App.QueryAsync(db => db.Conversations.CountAsync()));
        Assert.Equal(0, await App.QueryAsync(db => db.Tickets.CountAsync()));
    }

    [Fact]
    public async Task Invalid_utf8_is_refused()
    {
        using var client = App.CreateClient();
        byte[] body = [.. "{\"messageId\":\"x\",\"sender\":{\"id\":\"a\"},\"text\":\""u8, 0xC3, 0x28, .. "\"}"u8];
        var response = await client.SendAsync(Signing.SignedPost("/api/v1/channels/bridge/messages", CrmApp.ChannelSecret, body));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("body", (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("field").GetString());
        Assert.Equal(0, await App.QueryAsync(db => db.Messages.CountAsync()));
    }

    [Fact]
    public async Task An_oversized_body_is_refused_with_413()
    {
        var response = await App.PostMessageAsync(Message("big", new string('x', 70_000)));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Equal(0, await App.QueryAsync(db => db.Messages.CountAsync()));
    }

    [Fact]
    public async Task Unsigned_badly_signed_stale_and_unknown_channel_requests_are_refused()
    {
        using var client = App.CreateClient();
        var json = JsonSerializer.Serialize(Message("sig-1"));

        var unsigned = await client.PostAsync("/api/v1/channels/bridge/messages", new StringContent(json, Encoding.UTF8, "application/json"));
        var wrongSecret = await client.SendAsync(Signing.SignedPost("/api/v1/channels/bridge/messages", "not-the-secret-000000", json));
        var stale = await client.SendAsync(Signing.SignedPost("/api/v1/channels/bridge/messages", CrmApp.ChannelSecret, json, DateTimeOffset.UtcNow.AddMinutes(-10)));
        var unknown = await client.SendAsync(Signing.SignedPost("/api/v1/channels/nope/messages", CrmApp.ChannelSecret, json));

        Assert.Equal(HttpStatusCode.Unauthorized, unsigned.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, wrongSecret.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, stale.StatusCode);
        Assert.Equal(RequestSignature.TimestampHeader, (await stale.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("field").GetString());
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Equal("channelId", (await unknown.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("field").GetString());
        Assert.Equal(0, await App.QueryAsync(db => db.Messages.CountAsync()));
    }

    [Fact]
    public async Task A_disabled_channel_refuses_messages()
    {
        using var admin = App.Admin();
        (await admin.PutAsJsonAsync("/api/v1/admin/channels/bridge", new { kind = "api", name = "off", enabled = false })).EnsureSuccessStatusCode();
        var response = await App.PostMessageAsync(Message("off-1"));
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
    }

    // Review IN2: the API channel stores the caller's own message id; one shaped like a Telegram edit id
    // ("{chat}:{message}:edit:{16 hex}") must not be shown as an edit of the caller's earlier message "1:2".
    [Fact]
    public async Task An_api_message_whose_id_has_the_telegram_edit_shape_is_no_edit()
    {
        var first = await (await App.PostMessageAsync(Message("1:2", "Original"))).Content.ReadFromJsonAsync<JsonElement>();
        await (await App.PostMessageAsync(Message("1:2:edit:0123456789abcdef", "Spoofed edit"))).Content.ReadFromJsonAsync<JsonElement>();

        using var agent = await App.AgentAsync();
        var details = await agent.GetFromJsonAsync<JsonElement>($"/api/v1/tickets/{first.GetProperty("ticketNumber").GetInt64()}");
        var timeline = details.GetProperty("timeline").EnumerateArray().ToList();
        Assert.Equal(2, timeline.Count);
        Assert.All(timeline, e => Assert.Equal(JsonValueKind.Null, e.GetProperty("editOf").ValueKind));
    }
}
